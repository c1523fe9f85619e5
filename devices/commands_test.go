package devices

import (
	"context"
	"database/sql"
	"encoding/json"
	"testing"
	"time"
)

// ackingBroker is a device on a broker that acks each command before the
// broker's PUBACK reaches the publisher: PublishCommand returns only after
// the ack has been taken.
type ackingBroker struct {
	c  *Commands
	ok bool
}

func (b *ackingBroker) PublishCommand(device ID, payload []byte) error {
	var p struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return err
	}
	ack, _ := json.Marshal(map[string]any{"id": p.ID, "ok": b.ok, "error": "busy"})
	b.c.HandleAck(device, ack)
	return nil
}

// An ack that overtakes the step to sent still ends the command with the
// time it was handed to the broker as its sent_at, whether queued or not.
func TestAckBeforeSentStepKeepsSentAt(t *testing.T) {
	for _, tc := range []struct {
		name  string
		queue bool
		ok    bool
		want  CommandState
	}{
		{"acked", false, true, CommandAcked},
		{"queued and acked", true, true, CommandAcked},
		{"refused", false, false, CommandFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, db := newJournal(t)
			ctx := context.Background()
			presence, err := NewPresence(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			if err := presence.Set(ctx, "lamp-1", "online"); err != nil {
				t.Fatal(err)
			}
			c.presence, c.pub = presence, &ackingBroker{c: c, ok: tc.ok}
			go c.writeJournal()

			now := time.Now().Truncate(time.Millisecond).UTC()
			cmd := &Command{ID: newID("cmd_"), DeviceID: "lamp-1", OrgID: "qj", Name: "set_power", Params: json.RawMessage(`{"on":true}`),
				State: CommandPending, Queue: tc.queue, TimeoutMS: 10000, CreatedBy: "admin", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
			if err := c.store([]write{{cmd: *cmd, insert: true}}); err != nil {
				t.Fatal(err)
			}
			c.activate([]*Command{cmd})
			c.publish(cmd.ID)

			c.mu.Lock()
			got, ok := c.inMemory(cmd.ID)
			c.mu.Unlock()
			if !ok {
				t.Fatal("the command is not in memory")
			}
			if got.State != tc.want || got.SentAt == nil || got.DoneAt == nil || got.SentAt.After(*got.DoneAt) || got.SentAt.Before(now) {
				t.Fatalf("state %s, sent_at %v, done_at %v; want %s with now <= sent_at <= done_at", got.State, got.SentAt, got.DoneAt, tc.want)
			}
			// And so it is stored.
			close(c.writerStop)
			<-c.writerDone
			var state string
			var sent sql.NullInt64
			if err := db.QueryRow(`SELECT state, sent_at FROM commands WHERE id = ?`, cmd.ID).Scan(&state, &sent); err != nil ||
				state != string(tc.want) || sent.Int64 != got.SentAt.UnixMilli() {
				t.Fatalf("stored: %s, sent_at %v (%v); want %s, %d", state, sent, err, tc.want, got.SentAt.UnixMilli())
			}
		})
	}
}
