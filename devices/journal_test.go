package devices

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/internal/audit"
	"github.com/lookout-cc/lookout/internal/sqldb"
)

// newJournal is Commands on a new state database, with no registry,
// presence or broker: enough for the journal writer (writeJournal, flush)
// and its audit entries.
func newJournal(tb testing.TB) (*Commands, *sql.DB) {
	tb.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := sqldb.Open(ctx, tb.TempDir(), log)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	auditLog, err := audit.Open(ctx, db)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := NewCommands(ctx, db, nil, nil, nil, auditLog, log)
	if err != nil {
		tb.Fatal(err)
	}
	return c, db
}

// Steps nobody waits for are stored within the gather window, and those
// still waiting when the writer is told to stop are stored before it ends.
func TestJournalStoresGatheredStepsAndAllAtClose(t *testing.T) {
	c, db := newJournal(t)
	now := time.Now().Truncate(time.Millisecond).UTC()
	var cmds []Command
	for i := range 300 {
		cmd := Command{ID: newID("cmd_"), DeviceID: ID(fmt.Sprintf("lamp-%d", i)), OrgID: "qj", Name: "set_brightness", Params: json.RawMessage(`{"level":30}`),
			State: CommandPending, TimeoutMS: 10000, CreatedBy: "admin", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
		cmds = append(cmds, cmd)
	}
	go c.writeJournal()
	var ws []write
	for _, cmd := range cmds {
		ws = append(ws, write{cmd: cmd, insert: true})
	}
	if err := c.store(ws); err != nil {
		t.Fatal(err)
	}
	acked := func(n int) {
		t.Helper()
		var got int
		if err := db.QueryRow(`SELECT count(*) FROM commands WHERE state = 'acked'`).Scan(&got); err != nil || got != n {
			t.Fatalf("%d commands acked in the database, want %d: %v", got, n, err)
		}
	}
	step := func(cmd Command) write {
		cmd.State, cmd.SentAt, cmd.DoneAt = CommandAcked, &now, &now
		return write{cmd: cmd, rec: audit.Rec{Actor: "device:" + string(cmd.DeviceID), OrgID: cmd.OrgID, Action: "command.acked",
			Target: string(cmd.DeviceID), Result: "acked", Detail: map[string]any{"command": cmd.ID}}}
	}
	// One ack alone is stored once the window has passed.
	c.writes <- step(cmds[0])
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM commands WHERE state = 'acked'`).Scan(&n); err == nil && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a lone ack was not stored")
		}
		time.Sleep(time.Millisecond)
	}
	// The rest, handed over just before the writer is told to stop, are
	// all stored before it ends.
	for _, cmd := range cmds[1:] {
		c.writes <- step(cmd)
	}
	close(c.writerStop)
	<-c.writerDone
	acked(len(cmds))
	if n, err := audit.Verify(context.Background(), db); err != nil || n != int64(len(cmds)) {
		t.Fatalf("audit log: %d entries, %v", n, err)
	}
}
