package rtc

import (
	"errors"
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// The pacer sends each stream's packets through its own writer, and a
// packet of an SSRC never bound (a retransmission stream's) through a
// bound one; nothing before the first stream.
func TestPassPacer(t *testing.T) {
	p := newPassPacer()
	if _, err := p.Write(&rtp.Header{SSRC: 1}, nil, nil); !errors.Is(err, errNoStream) {
		t.Fatalf("no stream: %v", err)
	}
	got := map[string][]uint32{}
	writer := func(name string) interceptor.RTPWriter {
		return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, _ interceptor.Attributes) (int, error) {
			got[name] = append(got[name], h.SSRC)
			return len(payload), nil
		})
	}
	p.AddStream(1, writer("video"))
	p.AddStream(2, writer("audio"))
	for _, ssrc := range []uint32{1, 2, 1, 77} {
		if _, err := p.Write(&rtp.Header{SSRC: ssrc}, []byte{1}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if len(got["video"]) != 2 || len(got["audio"]) != 2 || got["audio"][1] != 77 {
		t.Fatalf("written: %v", got)
	}
	n := 0
	p.AddStream(3, interceptor.RTPWriterFunc(func(*rtp.Header, []byte, interceptor.Attributes) (int, error) { n++; return 0, nil }))
	h := &rtp.Header{SSRC: 3}
	if a := testing.AllocsPerRun(100, func() { _, _ = p.Write(h, nil, nil) }); a != 0 || n != 101 {
		t.Fatalf("%.0f allocations per packet, %d written", a, n)
	}
}
