package devices

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/internal/audit"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// BenchmarkJournal stores what a group command to lamps costs the journal
// writer, per command: its row in commits of 256 (as a group is stored;
// the group's one audit entry lists them), then its ack and the ack's
// audit entry in commits of 256. The lamps number 1,000, as in
// lookout-bench commands.
func BenchmarkJournal(b *testing.B) {
	c, db := newJournal(b)
	const lamps, perCommit = 1000, 256
	params := json.RawMessage(`{"level":30}`)
	inserts, updates := make([]write, 0, perCommit), make([]write, 0, perCommit)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += perCommit {
		inserts, updates = inserts[:0], updates[:0]
		now := time.Now().Truncate(time.Millisecond).UTC()
		for j := range perCommit {
			d := Device{ID: ID(fmt.Sprintf("dev_%012x%012d", 42, (i+j)%lamps)), OrgID: orgs.ID("qj")}
			cmd := Command{ID: newID("cmd_"), DeviceID: d.ID, OrgID: d.OrgID, Name: "set_brightness", Params: params, State: CommandPending,
				TimeoutMS: 10000, CreatedBy: "usr_0123456789abcdef01234567", CreatedAt: now, ExpiresAt: now.Add(10 * time.Second), GroupID: "grp_0123456789abcdef01234567"}
			inserts = append(inserts, write{cmd: cmd, insert: true})
			acked := cmd
			acked.State, acked.SentAt, acked.DoneAt = CommandAcked, &now, &now
			updates = append(updates, write{cmd: acked, rec: audit.Rec{Actor: "device:" + string(d.ID), OrgID: d.OrgID, Action: "command.acked",
				Target: string(d.ID), Result: string(CommandAcked), Detail: map[string]any{"command": cmd.ID, "name": cmd.Name, "by": cmd.CreatedBy, "group": cmd.GroupID, "params": cmd.Params}}})
		}
		c.flush(inserts)
		c.flush(updates)
	}
	b.StopTimer()
	var acked int
	if err := db.QueryRow(`SELECT count(*) FROM commands WHERE state = 'acked'`).Scan(&acked); err != nil || acked < b.N {
		b.Fatalf("%d commands acked of %d: %v", acked, b.N, err)
	}
}
