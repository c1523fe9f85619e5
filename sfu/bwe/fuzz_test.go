package bwe

import (
	"testing"

	"github.com/pion/rtcp"
)

// FuzzFeedback: whatever a subscriber sends as transport-wide feedback,
// the estimator reading its wire form (FeedbackRaw) neither panics nor
// leaves its bounds; and where pion's RTCP parser reads it as one
// feedback packet too, the estimate from pion's parse (Feedback) is the
// same.
func FuzzFeedback(f *testing.F) {
	for _, n := range []int{1, 7, 20, 200} {
		raw, err := reportOf(f, n).Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		sent := func() *Estimator {
			e := New(testConfig)
			for i := range 300 {
				e.Sent(1200, int64(i)*1e6)
			}
			return e
		}
		direct, parsed := sent(), sent()
		errRaw := direct.FeedbackRaw(raw, 300e6)
		s := direct.State()
		if s.Estimate < testConfig.Min || s.Estimate > testConfig.Max || s.Loss < 0 || s.Loss > 1 {
			t.Fatalf("state out of bounds: %+v", s)
		}
		pkts, err := rtcp.Unmarshal(raw)
		if err != nil || len(pkts) != 1 || errRaw != nil {
			return
		}
		fb, ok := pkts[0].(*rtcp.TransportLayerCC)
		if !ok || fb.Header.Padding {
			return
		}
		parsed.Feedback(fb, 300e6)
		if p := parsed.State(); p != s {
			t.Fatalf("from the wire %+v, from pion's parse %+v", s, p)
		}
	})
}
