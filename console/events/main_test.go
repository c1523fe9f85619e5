package events

import (
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The bus runs no goroutines and ServeSSE none beyond its caller's: every
// test must leave none behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// epoch0 is the start of the test clock: 2026-01-02 03:04:05.006 UTC.
var epoch0 = time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)

// clock is a fake Now that advances by one millisecond per call.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(start time.Time) *clock { return &clock{t: start} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.t
	c.t = c.t.Add(time.Millisecond)
	return t
}

// payload is a typical event's data.
type payload struct {
	N    int    `json:"n"`
	Name string `json:"name,omitempty"`
}

// recv returns the next event on s, failing the test if none comes soon or
// the channel is closed.
func recv(t testing.TB, s *Subscription) Event {
	t.Helper()
	select {
	case ev, ok := <-s.C():
		if !ok {
			t.Fatalf("subscription closed: %v", s.Err())
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
	}
	return Event{}
}

// quiet fails the test if s has an event or is closed right now. Events
// are handed over inside Publish, so nothing can still be on its way.
func quiet(t testing.TB, s *Subscription) {
	t.Helper()
	select {
	case ev, ok := <-s.C():
		if ok {
			t.Fatalf("unexpected event %s", ev.ID)
		}
		t.Fatalf("subscription closed: %v", s.Err())
	default:
	}
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// seqs returns the sequence numbers of evs.
func seqs(evs []Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Seq
	}
	return out
}
