package devices

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"sort"
)

// Desired is what the operators last set one reported metric of a device
// to, and the command that set it, in whatever state it is: the console
// shows "set to 30%, the lamp reports 30%" or the difference, and whether
// the lamp has acked.
type Desired struct {
	Metric string  `json:"metric"`
	Value  float64 `json:"value"` // booleans as 1 and 0, as telemetry stores them
	// Command is the newest command that set the metric.
	Command Command `json:"command"`
}

// Desired returns the desired value of each metric the device's kind
// reports and its commands set, from the newest such command; metrics no
// command has set yet are left out.
func (c *Commands) Desired(ctx context.Context, d Device) ([]Desired, error) {
	var out []Desired
	for name, spec := range Catalogue[d.Kind] {
		for param, ps := range spec {
			if ps.reports == "" {
				continue
			}
			cmd, err := scanCommand(c.db.QueryRowContext(ctx, `SELECT `+commandColumns+` FROM commands
				WHERE id = (SELECT command_id FROM command_latest WHERE device_id = ? AND name = ?)`, d.ID, name))
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return nil, err
			}
			c.mu.Lock()
			if a, ok := c.inMemory(cmd.ID); ok {
				cmd = *a
			}
			c.mu.Unlock()
			var params map[string]json.RawMessage
			if json.Unmarshal(cmd.Params, &params) != nil {
				continue
			}
			var v any
			if json.Unmarshal(params[param], &v) != nil {
				continue
			}
			want := Desired{Metric: ps.reports, Command: cmd}
			switch v := v.(type) {
			case bool:
				if v {
					want.Value = 1
				}
			case float64:
				want.Value = v
			default:
				continue
			}
			out = append(out, want)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Metric < out[j].Metric })
	return out, nil
}
