package bwe

import (
	"testing"

	"github.com/pion/rtcp"
)

// FuzzFeedback: whatever a subscriber sends as transport-wide feedback
// (once pion's RTCP parser accepts it), the estimator neither panics nor
// leaves its bounds.
func FuzzFeedback(f *testing.F) {
	for _, n := range []int{1, 7, 20, 200} {
		raw, err := reportOf(f, n).Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		pkts, err := rtcp.Unmarshal(raw)
		if err != nil {
			return
		}
		e := New(testConfig)
		for i := range 300 {
			e.Sent(1200, int64(i)*1e6)
		}
		for i, p := range pkts {
			if fb, ok := p.(*rtcp.TransportLayerCC); ok {
				e.Feedback(fb, int64(300+i)*1e6)
			}
		}
		s := e.State()
		if s.Estimate < testConfig.Min || s.Estimate > testConfig.Max || s.Loss < 0 || s.Loss > 1 {
			t.Fatalf("state out of bounds: %+v", s)
		}
	})
}
