package rtc

import (
	"errors"
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// The pacer sends each stream's packets through its own writer, a
// stream's RTX packets through the stream's, and refuses an SSRC it does
// not know.
func TestPassPacer(t *testing.T) {
	p := newPassPacer()
	got := map[string][]uint32{}
	writer := func(name string) interceptor.RTPWriter {
		return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, _ interceptor.Attributes) (int, error) {
			got[name] = append(got[name], h.SSRC)
			return len(payload), nil
		})
	}
	p.alias(11, 1) // the RTX SSRC may be told before the stream is added
	p.AddStream(1, writer("video"))
	p.AddStream(2, writer("audio"))
	p.AddStream(3, writer("screen"))
	p.alias(33, 3) // or after
	for _, ssrc := range []uint32{1, 2, 11, 33, 3} {
		if _, err := p.Write(&rtp.Header{SSRC: ssrc}, []byte{1}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if len(got["video"]) != 2 || got["video"][1] != 11 || len(got["audio"]) != 1 || len(got["screen"]) != 2 || got["screen"][0] != 33 {
		t.Fatalf("written: %v", got)
	}
	if _, err := p.Write(&rtp.Header{SSRC: 77}, nil, nil); !errors.Is(err, errUnknownStream) {
		t.Fatalf("unknown ssrc: %v", err)
	}
	n := 0
	p.AddStream(4, interceptor.RTPWriterFunc(func(*rtp.Header, []byte, interceptor.Attributes) (int, error) { n++; return 0, nil }))
	h := &rtp.Header{SSRC: 4}
	if a := testing.AllocsPerRun(100, func() { _, _ = p.Write(h, nil, nil) }); a != 0 || n != 101 {
		t.Fatalf("%.0f allocations per packet, %d written", a, n)
	}
}
