package telemetry

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
)

// Decode never panics; what it accepts is a set of well-formed points, and
// what it refuses it refuses with a reason.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"water_level_m": 1712.4, "battery_v": 3.9}`,
		`{"ts": 1763800000000, "values": {"water_level_m": 1712.5}}`,
		`{"ts": "2026-11-23T07:59:00+08:00", "values": {"level": 1}}`,
		`[{"a": 1}, {"b": true, "c": "x"}]`,
		`{"a": 1e999}`, `{"a": {"b": 1}}`, `[[]]`, `{"ts": -1e30, "a": 1}`, `"str"`, `{"a": null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		ps, err := Decode("dev", payload, now, nil)
		if err != nil {
			var rej *Rejection
			if !errors.As(err, &rej) || rej.Reason == "" {
				t.Fatalf("refusal without a reason: %v", err)
			}
			if len(ps) != 0 {
				t.Fatalf("refusal with points: %+v", ps)
			}
			return
		}
		if !json.Valid(payload) || len(ps) == 0 {
			t.Fatalf("accepted %q as %d points", payload, len(ps))
		}
		for _, p := range ps {
			if p.Device != "dev" || !metricPattern.MatchString(p.Metric) || math.IsNaN(p.Value) || math.IsInf(p.Value, 0) ||
				p.TS < minTS || p.TS > now.Add(maxAhead).UnixMilli() || len(p.Text) > MaxTextBytes {
				t.Fatalf("bad point %+v from %q", p, payload)
			}
		}
	})
}
