package clips

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/pion/rtp"

	"github.com/lookout-cc/lookout/internal/errclass"
)

// A real SPS (1920x1080, baseline) and a PPS, as a camera's SDP carries
// them.
var (
	testSPS = []byte{0x67, 0x42, 0xc0, 0x28, 0xd9, 0x00, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04,
		0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc9, 0x20}
	testPPS = []byte{0x68, 0xce, 0x3c, 0x80}
)

// synth is a synthetic H.264 camera on a fake clock: frames of a given
// size, a keyframe every gop frames, packetized by gortsplib's encoder. The
// payload of every packet is scribbled over once WriteRTP returns, as a
// puller reusing its read buffer would.
type synth struct {
	t        testing.TB
	b        *Buffer
	enc      *rtph264.Encoder
	now      time.Time
	ts       uint32
	fps, gop int
	size     int
	sent     int
	inband   bool // parameter sets before each keyframe, in-band
	noMarker bool // the camera never sets the marker bit
	lag      int  // frames received before each is given out
	packets  int
}

func newSynth(t testing.TB, p Params, fps, gop, size int) *synth {
	s := &synth{t: t, now: time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC), ts: 4_000_000_000, fps: fps, gop: gop, size: size}
	p.Now = func() time.Time { return s.now }
	s.b = New(p)
	s.enc = &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1}
	if err := s.enc.Init(); err != nil {
		t.Fatal(err)
	}
	return s
}

// nalu is frame i's coded picture: its type, then i, then filler, with
// no two zero bytes in a row (which would read as a start code).
func (s *synth) nalu(i int, key bool) []byte {
	n := make([]byte, s.size)
	n[0] = 0x41
	if key {
		n[0] = 0x65
	}
	for k := range 4 {
		n[1+k] = 0x80 | byte(i>>(7*k))&0x7f
	}
	for j := 5; j < len(n); j++ {
		n[j] = byte(i + j)
	}
	return n
}

func (s *synth) frames(n int) {
	for range n {
		i := s.sent
		key := i%s.gop == 0
		au := [][]byte{s.nalu(i, key)}
		if key && s.inband {
			au = append([][]byte{testSPS, testPPS}, au...)
		}
		pkts, err := s.enc.Encode(au)
		if err != nil {
			s.t.Fatal(err)
		}
		for _, p := range pkts {
			p.Timestamp = s.ts
			if s.noMarker {
				p.Marker = false
			}
			s.b.WriteRTP(p)
			for j := range p.Payload {
				p.Payload[j] = 0xee
			}
			s.packets++
		}
		s.sent++
		s.ts += 90000 / uint32(s.fps)
		s.now = s.now.Add(time.Second / time.Duration(s.fps))
	}
}

// frameAt is when frame i was received.
func (s *synth) frameAt(i int) time.Time {
	return time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second / time.Duration(s.fps))
}

// check that a segment's frames are frames first.. of the stream, whole.
func (s *synth) check(seg *Segment, first int) {
	s.t.Helper()
	for k, f := range seg.Frames {
		i := first + k
		want := s.nalu(i, i%s.gop == 0)
		if len(f.Data) != 4+len(want) || binary.BigEndian.Uint32(f.Data) != uint32(len(want)) || !bytes.Equal(f.Data[4:], want) {
			s.t.Fatalf("frame %d (of the stream) is not what was sent", i)
		}
		if f.Key != (i%s.gop == 0) || !f.At.Equal(s.frameAt(i+s.lag)) || f.PTS-seg.Frames[0].PTS != int64(k)*int64(90000/s.fps) {
			s.t.Fatalf("frame %d: key %v at %s pts %d", i, f.Key, f.At, f.PTS)
		}
	}
}

func TestBufferKeepsTheLastSecondsFromAKeyframe(t *testing.T) {
	s := newSynth(t, Params{Duration: 2 * time.Second}, 25, 25, 3000)
	s.b.Start(H264, [][]byte{testSPS, testPPS})
	s.frames(250) // 10 s
	st := s.b.Stats()
	span := st.To.Sub(st.From)
	// At least the last 2 s, at most 2 s and a keyframe interval (1 s).
	if span < 2*time.Second || span > 3*time.Second {
		t.Fatalf("the buffer spans %s", span)
	}
	if st.Frames != int(span/(40*time.Millisecond))+1 || st.Bytes != int64(st.Frames*(4+3000)) || st.Bytes > st.Allocated {
		t.Fatalf("stats %+v", st)
	}
	if st.DroppedNoKeyframe+st.DroppedTooLarge+st.EvictedForBytes+st.DecodeErrors != 0 {
		t.Fatalf("drops %+v", st)
	}
	// The oldest frame is a keyframe.
	first := int(st.From.Sub(s.frameAt(0)) / (40 * time.Millisecond))
	if first%25 != 0 {
		t.Fatalf("the buffer starts at frame %d", first)
	}
	seg, err := s.b.Snapshot(st.From, st.To)
	if err != nil {
		t.Fatal(err)
	}
	s.check(seg, first)
	if len(seg.Frames) != st.Frames || !bytes.Equal(seg.Params[1], testSPS) || !bytes.Equal(seg.Params[2], testPPS) {
		t.Fatalf("snapshot of everything: %d frames", len(seg.Frames))
	}
}

func TestSnapshotStartsAtTheKeyframeBeforeFrom(t *testing.T) {
	s := newSynth(t, Params{Duration: 3 * time.Second}, 25, 10, 500)
	s.b.Start(H264, [][]byte{testSPS, testPPS})
	s.frames(200) // 8 s: frames 0-199
	avail, _ := s.b.Available()
	if !avail.From.Equal(s.frameAt(120)) || !avail.To.Equal(s.frameAt(199)) { // 3 s, from a keyframe
		t.Fatalf("available: %s", avail)
	}

	// From frame 187 (after the keyframe 180) to frame 195.
	seg, err := s.b.Snapshot(s.frameAt(187).Add(time.Millisecond), s.frameAt(195).Add(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if len(seg.Frames) != 16 || !seg.Frames[0].Key {
		t.Fatalf("%d frames", len(seg.Frames))
	}
	s.check(seg, 180)
	if sp := seg.Span(); !sp.From.Equal(s.frameAt(180)) || !sp.To.Equal(s.frameAt(195)) {
		t.Fatalf("span %s", sp)
	}

	// A to after the newest frame ends at it (within the clock's skew).
	seg, err = s.b.Snapshot(s.frameAt(190), s.now.Add(2*time.Second))
	if err != nil || len(seg.Frames) != 10 {
		t.Fatalf("to after the newest: %v", err)
	}

	for _, tc := range []struct {
		name     string
		from, to time.Time
		want     error
		msg      string
	}{
		{"from before the buffer", avail.From.Add(-time.Millisecond), avail.To, ErrSpanNotBuffered, "from is before the oldest frame buffered: the pre-alert buffer holds 2025-06-01T08:00:04.800Z to 2025-06-01T08:00:07.960Z (3.2 s)"},
		{"from after it", avail.To.Add(time.Millisecond), avail.To.Add(time.Second), ErrSpanNotBuffered, "from is after the newest frame buffered"},
		{"to before from", avail.To, avail.From, ErrInvalidSpan, "must be after from"},
		{"to in the future", avail.From, s.now.Add(MaxFutureSkew + time.Second), ErrInvalidSpan, "is in the future"},
	} {
		_, err := s.b.Snapshot(tc.from, tc.to)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v", tc.name, err)
		}
		var e *errclass.Error
		if !errors.As(err, &e) || e.Kind == errclass.Internal {
			t.Errorf("%s: unclassified %v", tc.name, err)
		}
	}
	if _, err := New(Params{}).Snapshot(avail.From, avail.To); !errors.Is(err, ErrNothingBuffered) {
		t.Fatalf("empty buffer: %v", err)
	}
}

// Past MaxBytes the oldest frames go early, a keyframe interval at a time,
// and are counted; the buffer never allocates beyond MaxBytes.
func TestBufferBoundedByBytes(t *testing.T) {
	const max = 300 << 10
	s := newSynth(t, Params{Duration: 30 * time.Second, MaxBytes: max}, 25, 25, 10_000)
	s.b.Start(H264, [][]byte{testSPS, testPPS})
	for range 20 {
		s.frames(25)
		st := s.b.Stats()
		if st.Bytes > max || st.Allocated > max {
			t.Fatalf("over the bound: %+v", st)
		}
	}
	st := s.b.Stats()
	if st.EvictedForBytes == 0 || st.To.Sub(st.From) > 2*time.Second || st.Frames < 25 {
		t.Fatalf("stats %+v", st)
	}
	seg, err := s.b.Snapshot(st.From, st.To)
	if err != nil || !seg.Frames[0].Key {
		t.Fatal(err)
	}
	s.check(seg, int(st.From.Sub(s.frameAt(0))/(40*time.Millisecond)))

	// A frame larger than the whole buffer is refused, and counted.
	big := newSynth(t, Params{MaxBytes: 4096}, 25, 25, 5000)
	big.b.Start(H264, [][]byte{testSPS, testPPS})
	big.frames(3)
	if st := big.b.Stats(); st.DroppedTooLarge != 1 || st.DroppedNoKeyframe != 2 || st.Frames != 0 {
		t.Fatalf("too large: %+v", st)
	}
}

// Frames before the first keyframe cannot be decoded: not kept, counted.
// Parameter sets may come in-band only; a camera that never sets the
// marker bit has its access units split by timestamp.
func TestBufferStartsAtAKeyframe(t *testing.T) {
	for _, tc := range []struct {
		name             string
		inband, noMarker bool
	}{{"sdp", false, false}, {"in-band", true, false}, {"no marker", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSynth(t, Params{Duration: 10 * time.Second}, 25, 25, 2000)
			s.inband, s.noMarker = tc.inband, tc.noMarker
			s.sent = 5 // the stream is joined mid-interval
			s.now = s.frameAt(5)
			var sdp [][]byte
			if !tc.inband {
				sdp = [][]byte{testSPS, testPPS}
			}
			s.b.Start(H264, sdp)
			s.frames(70)
			st := s.b.Stats()
			last := 74
			if tc.noMarker {
				// Each frame is given out by the next one's first
				// packet: the newest is not yet.
				last, s.lag = 73, 1
			}
			if st.DroppedNoKeyframe != 20 || st.Frames != last-25+1 || !st.From.Equal(s.frameAt(25+s.lag)) || !st.To.Equal(s.frameAt(last+s.lag)) {
				t.Fatalf("stats %+v", st)
			}
			seg, err := s.b.Snapshot(st.From, st.To)
			if err != nil {
				t.Fatal(err)
			}
			s.check(seg, 25)
			if !bytes.Equal(seg.Params[1], testSPS) {
				t.Fatal("no SPS")
			}
		})
	}
}

// A camera that comes back with another timestamp base goes on on one
// timeline; one with new parameter sets starts a stretch that clips do
// not cross; one with another codec empties the buffer.
func TestBufferAcrossSessions(t *testing.T) {
	s := newSynth(t, Params{Duration: 20 * time.Second}, 25, 25, 1000)
	s.b.Start(H264, [][]byte{testSPS, testPPS})
	s.frames(50)
	s.b.Stop()
	s.now = s.now.Add(3 * time.Second) // away for 3 s
	s.ts = 12345                       // and back with a timestamp of its own
	s.b.Start(H264, [][]byte{testSPS, testPPS})
	s.frames(50)
	seg, err := s.b.Snapshot(s.frameAt(0), s.now)
	if err != nil {
		t.Fatal(err)
	}
	if len(seg.Frames) != 100 {
		t.Fatalf("%d frames", len(seg.Frames))
	}
	gap := seg.Frames[50].PTS - seg.Frames[49].PTS
	if gap < 3*90000 || gap > 3*90000+2*3600 {
		t.Fatalf("the timeline jumps by %d over the 3 s away", gap)
	}

	// New parameter sets from frame 100 on: a clip from before stops there.
	sps2 := append([]byte{}, testSPS...)
	sps2[len(sps2)-1] ^= 1
	s.b.Start(H264, [][]byte{sps2, testPPS})
	s.frames(50)
	away := 3 * time.Second
	seg, err = s.b.Snapshot(s.frameAt(60).Add(away), s.now)
	if err != nil || len(seg.Frames) != 50 || !bytes.Equal(seg.Params[1], testSPS) {
		t.Fatalf("a clip across new parameter sets: %v", err)
	}
	s.b.Stop()
	seg, err = s.b.Snapshot(s.frameAt(120).Add(away), s.now)
	if err != nil || len(seg.Frames) != 50 || !bytes.Equal(seg.Params[1], sps2) {
		t.Fatalf("a clip after new parameter sets: %v", err)
	}

	s.b.Start(H265, nil)
	if st := s.b.Stats(); st.Frames != 0 || st.Codec != H265 {
		t.Fatalf("after a codec change: %+v", st)
	}
}

// Lost packets are counted, and the buffer goes on from the next keyframe.
func TestBufferSurvivesLoss(t *testing.T) {
	s := newSynth(t, Params{Duration: 10 * time.Second}, 25, 25, 5000)
	s.b.Start(H264, [][]byte{testSPS, testPPS})
	s.frames(30)
	// Frame 30's middle packet is lost.
	pkts, _ := s.enc.Encode([][]byte{s.nalu(30, false)})
	for i, p := range pkts {
		if i != 1 {
			p.Timestamp = s.ts
			s.b.WriteRTP(p)
		}
	}
	s.sent++
	s.ts += 3600
	s.now = s.now.Add(40 * time.Millisecond)
	s.frames(30)
	st := s.b.Stats()
	if st.DecodeErrors == 0 || st.Frames != 60 { // 0-29 and 31-60
		t.Fatalf("stats %+v", st)
	}
}

// Once the buffer has grown, a packet costs no allocation but the
// decoder's: four per fragmented access unit.
func TestBufferAllocations(t *testing.T) {
	s := newSynth(t, Params{Duration: 2 * time.Second}, 25, 25, 6000) // 5 packets a frame
	s.b.Start(H264, [][]byte{testSPS, testPPS})
	s.frames(200)
	var pkts [][]*rtp.Packet
	for i := range 100 {
		p, _ := s.enc.Encode([][]byte{s.nalu(200+i, i%25 == 0)})
		for _, q := range p {
			q.Timestamp = s.ts + uint32(i)*3600
		}
		pkts = append(pkts, p)
	}
	i := 0
	allocs := testing.AllocsPerRun(100, func() {
		for _, p := range pkts[i%100] {
			s.b.WriteRTP(p)
		}
		s.now = s.now.Add(40 * time.Millisecond)
		i++
	})
	if allocs > 4 {
		t.Fatalf("%.1f allocations per access unit", allocs)
	}
}

// A 4 Mbit/s camera at 25 fps: 20 kB frames, 14 packets each.
func BenchmarkBufferWriteRTP(b *testing.B) {
	s := newSynth(b, Params{Duration: 5 * time.Second}, 25, 50, 20_000)
	s.b.Start(H264, [][]byte{testSPS, testPPS})
	s.frames(300)
	var pkts [][]*rtp.Packet
	for i := range 50 {
		p, _ := s.enc.Encode([][]byte{s.nalu(300+i, i == 0)})
		pkts = append(pkts, p)
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for i := 0; b.Loop(); i++ {
		for _, p := range pkts[i%50] {
			p.Timestamp = s.ts
			s.b.WriteRTP(p)
			n++
		}
		s.ts += 3600
		s.now = s.now.Add(40 * time.Millisecond)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/packet")
}
