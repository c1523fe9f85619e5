package meeting

import (
	"slices"
	"testing"
	"time"
)

// The NACK log asks for a gap once it is older than a reordering, again
// while it has not come, and no more once it came, it was asked for
// nackMaxAsks times, or it is too old.
func TestNackLog(t *testing.T) {
	ms := func(d int) int64 { return int64(time.Duration(d) * time.Millisecond) }
	type step struct {
		at   int      // ms
		seq  uint16   // the packet arriving
		asks []uint16 // the NACK due then (nil: none)
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"a gap is asked for after a reordering's time", []step{
			{0, 100, nil}, {1, 102, nil}, {5, 103, nil}, {12, 104, []uint16{101}}, {20, 105, nil},
		}},
		{"a reordered packet is not asked for", []step{
			{0, 100, nil}, {1, 102, nil}, {3, 101, nil}, {20, 103, nil},
		}},
		{"asked again until it comes", []step{
			{0, 100, nil}, {1, 102, nil}, {12, 103, []uint16{101}}, {60, 104, nil}, {113, 105, []uint16{101}}, {120, 101, nil}, {300, 106, nil},
		}},
		{"at most nackMaxAsks times", []step{
			{0, 100, nil}, {1, 102, nil}, {12, 103, []uint16{101}}, {113, 104, []uint16{101}}, {214, 105, []uint16{101}}, {315, 106, nil}, {420, 107, nil},
		}},
		{"several gaps in one NACK, across the wrap", []step{
			{0, 65533, nil}, {1, 65535, nil}, {2, 2, nil}, {15, 3, []uint16{65534, 0, 1}},
		}},
		{"a jump is not asked for", []step{
			{0, 100, nil}, {1, 100 + nackMaxGap + 1, nil}, {20, 100 + nackMaxGap + 2, nil},
		}},
		{"given up after nackGiveUpAfter", []step{
			{0, 100, nil}, {1, 102, nil}, {1002, 103, nil}, {1200, 104, nil},
		}},
		{"an old packet again is not a gap", []step{
			{0, 100, nil}, {1, 101, nil}, {2, 99, nil}, {20, 102, nil},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l nackLog
			for _, s := range tc.steps {
				n := l.received(s.seq, ms(s.at)+1, 7, nackRetry(0))
				var got []uint16
				if n != nil {
					if n.MediaSSRC != 7 {
						t.Fatalf("at %d ms: NACK for SSRC %d", s.at, n.MediaSSRC)
					}
					for _, p := range n.Nacks {
						got = append(got, p.PacketList()...)
					}
				}
				if !slices.Equal(got, s.asks) {
					t.Fatalf("at %d ms, packet %d: asked for %v, want %v", s.at, s.seq, got, s.asks)
				}
			}
		})
	}
}

// Between packets (a layer at a frame a second), the read deadline set to
// nextDue has the asks made on time; the retry waits a round trip and a
// half when that is longer than nackRetryAfter.
func TestNackLogBetweenPackets(t *testing.T) {
	ms := func(d int) int64 { return int64(time.Duration(d) * time.Millisecond) }
	var l nackLog
	retry := nackRetry(200 * time.Millisecond)
	if retry != ms(300) || nackRetry(0) != ms(100) {
		t.Fatalf("retry %d ns for a 200 ms round trip, %d for none", retry, nackRetry(0))
	}
	l.received(10, ms(0), 7, retry)
	if n := l.received(12, ms(1), 7, retry); n != nil || l.nextDue(retry) != ms(11) {
		t.Fatalf("the gap: NACK %v, next due %d", n, l.nextDue(retry))
	}
	for i, want := range []int{11, 311, 611} {
		at := l.nextDue(retry)
		if at != ms(want) {
			t.Fatalf("ask %d due at %d, want %d ms", i+1, at, want)
		}
		n := l.due(at, 7, retry)
		if n == nil || len(n.Nacks) != 1 || n.Nacks[0].PacketID != 11 {
			t.Fatalf("ask %d: %v", i+1, n)
		}
	}
	// After the last ask, a round trip and a half to come, then given up.
	if at := l.nextDue(retry); at != ms(911) || l.due(at, 7, retry) != nil || len(l.missing) != 0 || l.nextDue(retry) != 0 {
		t.Fatalf("after the asks: due at %d, %d missing", at, len(l.missing))
	}
	// A gap older than nackGiveUpAfter before its asks end is given up.
	l.received(20, ms(2000), 7, nackRetry(2*time.Second))
	if at := l.nextDue(nackRetry(2 * time.Second)); at != ms(2000)+int64(nackFirstAfter) {
		t.Fatalf("the second gap due at %d", at)
	}
	l.due(ms(2011), 7, nackRetry(2*time.Second))
	if at := l.nextDue(nackRetry(2 * time.Second)); at != ms(2000)+int64(nackGiveUpAfter)+1 {
		t.Fatalf("the second gap's give-up due at %d", at)
	}
}

// More missing at once than the log holds keeps the newest.
func TestNackLogBounded(t *testing.T) {
	var l nackLog
	now := int64(1)
	seq := uint16(0)
	l.received(seq, now, 1, nackRetry(0))
	for range 3 {
		seq += nackMaxGap // a gap of nackMaxGap-1, asked for
		l.received(seq, now, 1, nackRetry(0))
	}
	if len(l.missing) != nackMaxMissing || l.missing[len(l.missing)-1].seq != seq-1 {
		t.Fatalf("%d missing, the newest %d", len(l.missing), l.missing[len(l.missing)-1].seq)
	}
	n := l.received(seq+1, now+int64(nackFirstAfter), 1, nackRetry(0))
	asked := 0
	if n != nil {
		for _, p := range n.Nacks {
			asked += len(p.PacketList())
		}
	}
	if asked != nackMaxMissing {
		t.Fatalf("asked for %d of the %d missing", asked, nackMaxMissing)
	}
}

// A packet in order costs no allocation.
func TestNackLogAllocations(t *testing.T) {
	var l nackLog
	seq := uint16(0)
	now := int64(1)
	if a := testing.AllocsPerRun(1000, func() {
		seq++
		now += int64(time.Millisecond)
		l.received(seq, now, 1, nackRetry(0))
	}); a != 0 {
		t.Fatalf("%v allocations a packet", a)
	}
}
