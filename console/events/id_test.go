package events

import (
	"math"
	"strconv"
	"testing"
)

func TestParseID(t *testing.T) {
	tests := []struct {
		in    string
		ok    bool
		epoch int64
		seq   uint64
	}{
		{in: "1767323045006-1", ok: true, epoch: 1767323045006, seq: 1},
		{in: "1767323045006-0", ok: true, epoch: 1767323045006},
		{in: "0-0", ok: true},
		{in: "9223372036854775807-18446744073709551615", ok: true, epoch: math.MaxInt64, seq: math.MaxUint64},
		{in: "9223372036854775808-1"},   // epoch overflows
		{in: "1-18446744073709551616"},  // seq overflows
		{in: "1-000000000000000000001"}, // too long, and a leading zero
		{in: ""},
		{in: "-"},
		{in: "1-"},
		{in: "-1"},
		{in: "1"},
		{in: "-1-1"},
		{in: "1--1"},
		{in: "1-+1"},
		{in: "+1-1"},
		{in: "01-1"},
		{in: "1-01"},
		{in: "1-1-1"},
		{in: " 1-1"},
		{in: "1-1\n"},
		{in: "1_000-1"},
		{in: "0x10-1"},
		{in: "１-1"}, // a full-width digit
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			epoch, seq, ok := parseID(tt.in)
			if ok != tt.ok || epoch != tt.epoch || seq != tt.seq {
				t.Fatalf("parseID = %d, %d, %v; want %d, %d, %v", epoch, seq, ok, tt.epoch, tt.seq, tt.ok)
			}
			if ok && formatID(epoch, seq) != tt.in {
				t.Fatalf("formatID(%d, %d) = %q", epoch, seq, formatID(epoch, seq))
			}
		})
	}
}

// Any Last-Event-ID header is safe: parseID accepts exactly the ids
// formatID spells, and Subscribe either replays a run of events strictly
// after the id or reports a gap.
func FuzzParseID(f *testing.F) {
	b := NewBus(Params{ReplaySize: 4, Now: newClock(epoch0).Now})
	defer b.Close()
	for i := range 6 {
		if _, err := b.Publish(TypeAlert, "qj", payload{N: i}); err != nil {
			f.Fatal(err)
		}
	}
	for _, seed := range []string{
		formatID(b.epoch, 3), formatID(b.epoch, 0), formatID(b.epoch, 6), formatID(b.epoch, 7),
		"1-1", "0-0", "01-1", "1--1", "-", "", "9223372036854775808-1", "1-18446744073709551616",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		epoch, seq, ok := parseID(s)
		if ok && formatID(epoch, seq) != s {
			t.Fatalf("parseID(%q) = %d, %d, which formats as %q", s, epoch, seq, formatID(epoch, seq))
		}
		if !ok && (epoch != 0 || seq != 0) {
			t.Fatalf("parseID(%q) failed but returned %d, %d", s, epoch, seq)
		}
		sub := b.Subscribe(nil, s)
		defer sub.Close()
		if s == "" {
			if sub.Gap || len(sub.Missed) > 0 {
				t.Fatal("no id must mean only new events")
			}
			return
		}
		if sub.Gap {
			if len(sub.Missed) > 0 || sub.gapReason == "" {
				t.Fatalf("gap with %d missed events, reason %q", len(sub.Missed), sub.gapReason)
			}
			return
		}
		if !ok || epoch != b.epoch {
			t.Fatalf("served %q, which this bus did not issue", s)
		}
		for i, ev := range sub.Missed {
			if ev.Seq != seq+1+uint64(i) {
				t.Fatalf("after %q, missed event %d is %s", s, i, ev.ID)
			}
		}
		if n := len(sub.Missed); seq+uint64(n) != 6 {
			t.Fatalf("after %q, %d missed events do not reach the newest", s, n)
		}
	})
}
