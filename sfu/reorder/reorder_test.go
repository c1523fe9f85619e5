package reorder

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

type pkt struct {
	seq  uint16
	data []byte
}

func copyPkt(dst, src *pkt) {
	data := append(dst.data[:0], src.data...)
	*dst = *src
	dst.data = data
}

func TestBuffer(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type in struct {
		seq  uint16
		ssrc uint32
		at   time.Duration
	}
	tests := []struct {
		name  string
		in    []in
		drain time.Duration // Drain at this time after the packets, when not 0
		want  string        // emitted sequence numbers, "-N" for N lost, "-0" for a restart
	}{
		{"in order", []in{{1, 1, 0}, {2, 1, 0}, {3, 1, 0}}, 0, "1 2 3"},
		{"swapped", []in{{1, 1, 0}, {3, 1, 0}, {2, 1, 0}, {4, 1, 0}}, 0, "1 2 3 4"},
		{"wraps", []in{{65534, 1, 0}, {0, 1, 0}, {65535, 1, 0}, {1, 1, 0}}, 0, "65534 65535 0 1"},
		{"duplicate and late", []in{{1, 1, 0}, {2, 1, 0}, {2, 1, 0}, {1, 1, 0}, {3, 1, 0}}, 0, "1 2 3"},
		{"lost after the wait", []in{{1, 1, 0}, {3, 1, 0}, {4, 1, 400 * time.Millisecond}, {5, 1, 600 * time.Millisecond}}, 0, "1 -1 3 4 5"},
		{"given up by a drain", []in{{1, 1, 0}, {3, 1, 0}}, 600 * time.Millisecond, "1 -1 3 (drained)"},
		{"held through a drain within the wait", []in{{1, 1, 0}, {3, 1, 0}}, 400 * time.Millisecond, "1 (drained) -1 3"},
		{"new ssrc", []in{{1, 1, 0}, {3, 1, 0}, {500, 2, 0}, {501, 2, 0}}, 0, "1 -1 3 -0 500 501"},
		{"far ahead", []in{{1, 1, 0}, {30000, 1, 0}, {30001, 1, 0}}, 0, "1 -0 30000 30001"},
		{"window full", []in{{1, 1, 0}, {3, 1, 0}, {3 + 64, 1, 0}}, 0, "1 -1 3 -63 67"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := New(64, 500*time.Millisecond, copyPkt)
			var got []string
			r.Emit = func(p *pkt) { got = append(got, strconv.Itoa(int(p.seq))) }
			r.Lose = func(n int) { got = append(got, "-"+strconv.Itoa(n)) }
			for _, i := range tc.in {
				r.Push(base.Add(i.at), i.seq, i.ssrc, &pkt{seq: i.seq, data: []byte{1}})
			}
			if tc.drain != 0 {
				r.Drain(base.Add(tc.drain))
				got = append(got, "(drained)")
			}
			r.Flush()
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("got %q, want %q", g, tc.want)
			}
		})
	}
}

// The packets' copies reuse their slots: nothing allocated per packet.
func TestNoAllocationPerPacket(t *testing.T) {
	r := New(64, 500*time.Millisecond, copyPkt)
	r.Emit = func(*pkt) {}
	r.Lose = func(int) {}
	p := pkt{data: make([]byte, 1200)}
	at := time.Now()
	for i := range 200 { // every slot's buffer grown
		p.seq = uint16(i)
		r.Push(at, p.seq, 1, &p)
	}
	seq := uint16(200)
	if n := testing.AllocsPerRun(1000, func() {
		// One late by a place: held, then both emitted.
		p.seq = seq + 1
		r.Push(at, p.seq, 1, &p)
		p.seq = seq
		r.Push(at, p.seq, 1, &p)
		seq += 2
	}); n != 0 {
		t.Fatalf("%.1f allocations per pair of packets", n)
	}
}
