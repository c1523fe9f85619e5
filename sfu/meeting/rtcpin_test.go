package meeting

import (
	"testing"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"

	"github.com/lookout-cc/lookout/sfu/bwe"
)

// feedbackFor is a transport-wide feedback packet that says, of packets
// 0..n-1, the even ones arrived (2 ms apart) and the odd ones were lost,
// in its wire form.
func feedbackFor(t testing.TB, n int) []byte {
	rec := twcc.NewRecorder(1)
	for i := 0; i < n; i += 2 {
		rec.Record(1, uint16(i), int64(i)*1000)
	}
	b, err := rec.BuildFeedbackPacket()[0].Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// What the direct sender hands over: a lone feedback packet reaches the
// estimator, as does one in a compound with other packets (which are
// parsed for their streams); what does not hold together is dropped and
// counted, and changes nothing.
func TestTakeSubscriberRTCP(t *testing.T) {
	fb := feedbackFor(t, 20)
	pli, err := (&rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 99}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cut := append([]byte(nil), fb...)
	cut[3] += 10 // says longer than it is
	for _, tc := range []struct {
		name string
		buf  []byte
		read bool // the estimator read the feedback (its loss)
		bad  uint64
	}{
		{"feedback alone", fb, true, 0},
		{"feedback and a PLI for no stream", append(append([]byte(nil), fb...), pli...), true, 0},
		{"a PLI, then the feedback", append(append([]byte(nil), pli...), fb...), true, 0},
		{"a length beyond the datagram", cut, false, 1},
		{"not RTCP", []byte{0x16, 0xfe, 0xfd, 0}, false, 1},
		{"three bytes", fb[:3], false, 1},
		{"feedback with its chunks cut", append(append([]byte(nil), fb[:16]...), 0, 0, 0, 0), false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "feedback with its chunks cut" {
				tc.buf[3] = 4 // 20 bytes: the fixed fields, no chunk for its 20 packets
			}
			p := &participant{bwe: bwe.New(linkConfig), downs: map[*upTrack]*downTrack{}}
			for range 20 {
				p.bwe.Sent(1200, nanotime())
			}
			p.takeSubscriberRTCP(tc.buf)
			if got := p.bwe.State().Loss > 0; got != tc.read {
				t.Errorf("the estimator read the feedback: %v", got)
			}
			if got := p.rtcpBad.Load(); got != tc.bad {
				t.Errorf("%d dropped as malformed, want %d", got, tc.bad)
			}
		})
	}
	p := &participant{bwe: bwe.New(linkConfig), downs: map[*upTrack]*downTrack{}}
	if a := testing.AllocsPerRun(100, func() { p.takeSubscriberRTCP(fb) }); a != 0 {
		t.Errorf("%.1f allocations for a lone feedback packet", a)
	}
}

// FuzzTakeSubscriberRTCP: whatever the subscriber sends, once it is
// decrypted, the split and the estimator hold.
func FuzzTakeSubscriberRTCP(f *testing.F) {
	fb := feedbackFor(f, 7)
	rr, err := (&rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 2}}}).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fb)
	f.Add(append(append([]byte(nil), rr...), fb...))
	f.Add([]byte{0x80, 205, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		p := &participant{bwe: bwe.New(linkConfig), downs: map[*upTrack]*downTrack{}}
		for range 10 {
			p.bwe.Sent(1200, nanotime())
		}
		p.takeSubscriberRTCP(b)
		if s := p.bwe.State(); s.Estimate < linkConfig.Min || s.Estimate > linkConfig.Max {
			t.Fatalf("estimate %d out of bounds", s.Estimate)
		}
	})
}
