package record

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// durationSlack is how far the file's duration may be from the media's.
const durationSlack = 200 * time.Millisecond

// start starts a track recording m into a test directory, on a fake clock
// of its own, counting the keyframes it asks for.
func start(t *testing.T, m *testMedia) (tr *Track, clk *fakeClock, requests *atomic.Int32, dir string) {
	t.Helper()
	clk, requests, dir = newFakeClock(), new(atomic.Int32), t.TempDir()
	tr, err := Start(Params{
		Dir: dir, Name: "rec", MimeType: m.mime, ClockRate: m.clock,
		RequestKeyframe: func() { requests.Add(1) },
		Now:             clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tr, clk, requests, dir
}

// checkFile checks the finished file against the summary and ffprobe.
func checkFile(t *testing.T, s Summary, m *testMedia, wantDur time.Duration) {
	t.Helper()
	want := map[string]string{webrtc.MimeTypeVP8: CodecVP8, webrtc.MimeTypeH264: CodecH264, webrtc.MimeTypeOpus: CodecOpus}[m.mime]
	if s.Codec != want {
		t.Errorf("Summary.Codec = %q, want %q", s.Codec, want)
	}
	raw, err := os.ReadFile(s.Path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if s.SHA256 != hex.EncodeToString(sum[:]) || s.Bytes != int64(len(raw)) {
		t.Errorf("Summary says %d bytes, sha256 %s; the file has %d, %x", s.Bytes, s.SHA256, len(raw), sum)
	}
	if _, err := os.Stat(s.Path + ".part"); !os.IsNotExist(err) {
		t.Errorf("%s.part is left behind", s.Path)
	}
	if d := s.Duration - wantDur; d < -durationSlack || d > durationSlack {
		t.Errorf("Summary.Duration = %v, want %v", s.Duration, wantDur)
	}
	p := ffprobe(t, s.Path)
	if p.Streams[0].CodecName != want {
		t.Errorf("ffprobe codec %q, want %q", p.Streams[0].CodecName, want)
	}
	if p.Streams[0].Width != m.width || p.Streams[0].Height != m.height {
		t.Errorf("ffprobe size %dx%d, want %dx%d", p.Streams[0].Width, p.Streams[0].Height, m.width, m.height)
	}
	if s.Width != m.width || s.Height != m.height {
		t.Errorf("Summary size %dx%d, want %dx%d", s.Width, s.Height, m.width, m.height)
	}
	if d := p.duration(t) - wantDur; d < -durationSlack || d > durationSlack {
		t.Errorf("ffprobe duration %v, want %v", p.duration(t), wantDur)
	}
	if e := decodeErrors(t, s.Path); e != "" {
		t.Errorf("decoding %s: %s", filepath.Base(s.Path), e)
	}
}

var allMedia = []string{"vp8", "h264", "opus"}
var videoMedia = []string{"vp8", "h264"}

// A clean stream is recorded whole: codec, size and duration as sent.
func TestRecord(t *testing.T) {
	for _, name := range allMedia {
		t.Run(name, func(t *testing.T) {
			m := loadMedia(t, name)
			tr, clk, req, dir := start(t, m)
			feed(tr, clk, m.packetize(1200, 0x1234, 65000, 4294000000)) // both wrap
			s, err := tr.Close()
			if err != nil {
				t.Fatal(err)
			}
			wantExt := map[string]string{"vp8": ".webm", "h264": ".mp4", "opus": ".webm"}[name]
			if s.Path != filepath.Join(dir, "rec"+wantExt) {
				t.Errorf("Summary.Path = %q", s.Path)
			}
			checkFile(t, s, m, m.duration)
			if s.Frames != len(m.frames) || s.Skipped != 0 || s.Lost != 0 || s.Dropped != 0 {
				t.Errorf("frames %d (want %d), skipped %d, lost %d, dropped %d", s.Frames, len(m.frames), s.Skipped, s.Lost, s.Dropped)
			}
			if req.Load() != 0 || len(s.Pauses) != 0 {
				t.Errorf("%d keyframe requests, pauses %v; want none", req.Load(), s.Pauses)
			}
			if !s.Started.Equal(clk.at(0)) || s.Ended.Sub(clk.at(m.duration)).Abs() > durationSlack {
				t.Errorf("Started %v, Ended %v; want %v, %v", s.Started, s.Ended, clk.at(0), clk.at(m.duration))
			}
		})
	}
}

// A stream that stops for 2 s in the middle is a pause in the summary and
// a gap in the file's timeline.
func TestRecordGap(t *testing.T) {
	const gap = 2 * time.Second
	for _, name := range allMedia {
		t.Run(name, func(t *testing.T) {
			m := loadMedia(t, name)
			tr, clk, _, _ := start(t, m)
			pkts := m.packetize(1200, 1, 1, 1)
			half := m.duration / 2
			var resumed time.Duration
			for i := range pkts {
				if pkts[i].at >= half {
					if resumed == 0 {
						resumed = pkts[i].at + gap
					}
					pkts[i].at += gap
					pkts[i].pkt.Timestamp += uint32(gap.Seconds() * float64(m.clock))
				}
			}
			feed(tr, clk, pkts)
			s, err := tr.Close()
			if err != nil {
				t.Fatal(err)
			}
			checkFile(t, s, m, m.duration+gap)
			if len(s.Pauses) != 1 {
				t.Fatalf("pauses %v, want one", s.Pauses)
			}
			p := s.Pauses[0]
			if p.Reason != ReasonGap || !p.To.Equal(clk.at(resumed)) || p.To.Sub(p.From) < gap {
				t.Errorf("pause %+v, want a gap of %v ending at %v", p, gap, clk.at(resumed))
			}
		})
	}
}

// Reordered packets are put back in order: nothing is lost and no
// keyframe is needed. A lost packet breaks its frame: the recording skips
// to the next keyframe, asks for one, and the file still decodes cleanly.
func TestRecordReorderAndLoss(t *testing.T) {
	for _, name := range videoMedia {
		m := loadMedia(t, name)
		// Small packets, so that frames span several.
		pkts := func() []sent { return m.packetize(200, 7, 100, 100) }
		tests := []struct {
			name   string
			change func([]sent) []sent
			lost   int
			// frames skipped: from the broken one to the next keyframe
			skipped int
			gone    int // frames of which no packet came
		}{
			{"reordered", func(p []sent) []sent {
				for i := 10; i+1 < len(p); i += 7 {
					p[i], p[i+1] = p[i+1], p[i]
				}
				return p
			}, 0, 0, 0},
			{"duplicated", func(p []sent) []sent {
				return append(p[:20:20], append([]sent{p[19], p[15]}, p[20:]...)...)
			}, 0, 0, 0},
			{"lost inside a frame", func(p []sent) []sent {
				i := middleOf(m, p, 10) // a packet inside frame 10 (not its first nor last)
				return append(p[:i:i], p[i+1:]...)
			}, 1, 15, 0},
			{"lost whole frame", func(p []sent) []sent {
				first, last := framePackets(m, p, 30)
				return append(p[:first:first], p[last+1:]...)
			}, -1, 19, 1},
		}
		for _, tc := range tests {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				tr, clk, req, _ := start(t, m)
				feed(tr, clk, tc.change(pkts()))
				s, err := tr.Close()
				if err != nil {
					t.Fatal(err)
				}
				checkFile(t, s, m, m.duration)
				if tc.lost >= 0 && s.Lost != tc.lost || tc.lost < 0 && s.Lost == 0 {
					t.Errorf("lost %d, want %d", s.Lost, tc.lost)
				}
				if s.Skipped != tc.skipped || s.Frames+s.Skipped+tc.gone != len(m.frames) {
					t.Errorf("skipped %d frames, want %d (written %d of %d)", s.Skipped, tc.skipped, s.Frames, len(m.frames))
				}
				if wantReq := tc.skipped > 0; (req.Load() > 0) != wantReq || int(req.Load()) != s.KeyframeRequests {
					t.Errorf("%d keyframe requests (summary %d), want some: %v", req.Load(), s.KeyframeRequests, wantReq)
				}
				if tc.skipped > 0 && req.Load() > 1 {
					// 15 or 19 frames at 25 fps: under a second, one request.
					t.Errorf("%d keyframe requests within a second", req.Load())
				}
			})
		}
	}
}

// framePackets is the first and last index in p of frame n's packets.
func framePackets(m *testMedia, p []sent, n int) (first, last int) {
	first = -1
	for i := range p {
		if p[i].pkt.Timestamp == 100+m.frames[n].ts {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	return first, last
}

func middleOf(m *testMedia, p []sent, n int) int {
	first, last := framePackets(m, p, n)
	if last-first < 2 {
		panic("frame has fewer than 3 packets")
	}
	return (first + last) / 2
}

// A recording that joins a stream between keyframes starts at the next
// one, asking for it.
func TestRecordStartsOnKeyframe(t *testing.T) {
	for _, name := range videoMedia {
		t.Run(name, func(t *testing.T) {
			m := loadMedia(t, name)
			tr, clk, req, _ := start(t, m)
			pkts := m.packetize(1200, 7, 100, 100)
			first, _ := framePackets(m, pkts, 10)
			feed(tr, clk, pkts[first:])
			s, err := tr.Close()
			if err != nil {
				t.Fatal(err)
			}
			// Frames 25..74: the file's timeline starts at the keyframe.
			wantDur := m.duration - time.Second
			checkFile(t, s, m, wantDur)
			if s.Frames != len(m.frames)-25 || s.Skipped != 15 || req.Load() != 1 {
				t.Errorf("frames %d, skipped %d, requests %d; want %d, 15, 1", s.Frames, s.Skipped, req.Load(), len(m.frames)-25)
			}
			if !s.Started.Equal(clk.at(time.Second)) {
				t.Errorf("Started %v, want %v", s.Started, clk.at(time.Second))
			}
		})
	}
}

// Pause and Resume: packets in between are ignored, the pause is kept with
// its times, video goes on from a keyframe and the file's timeline keeps
// the time that passed.
func TestRecordPauseResume(t *testing.T) {
	for _, name := range allMedia {
		t.Run(name, func(t *testing.T) {
			m := loadMedia(t, name)
			tr, clk, req, _ := start(t, m)
			pkts := m.packetize(1200, 7, 100, 100)
			var before, during, after []sent
			for _, p := range pkts {
				switch {
				case p.at < time.Second:
					before = append(before, p)
				case p.at < 2*time.Second-20*time.Millisecond:
					during = append(during, p)
				default:
					after = append(after, p)
				}
			}
			feed(tr, clk, before)
			clk.set(time.Second)
			tr.Pause()
			feed(tr, clk, during)
			clk.set(2*time.Second - 20*time.Millisecond)
			tr.Resume()
			feed(tr, clk, after)
			s, err := tr.Close()
			if err != nil {
				t.Fatal(err)
			}
			checkFile(t, s, m, m.duration)
			want := []Pause{{From: clk.at(time.Second), To: clk.at(2*time.Second - 20*time.Millisecond), Reason: ReasonCaller}}
			if len(s.Pauses) != 1 || s.Pauses[0] != want[0] {
				t.Errorf("pauses %v, want %v", s.Pauses, want)
			}
			if m.clock == 90000 && req.Load() != 0 {
				// The stream has a keyframe at 2 s: none is needed.
				t.Errorf("%d keyframe requests", req.Load())
			}
		})
	}
}

// A publisher that reconnects sends a new SSRC with new sequence numbers
// and timestamps: the timeline follows the wall clock across it.
func TestRecordReconnect(t *testing.T) {
	for _, name := range allMedia {
		t.Run(name, func(t *testing.T) {
			m := loadMedia(t, name)
			tr, clk, _, _ := start(t, m)
			first := m.packetize(1200, 1, 100, 100)
			second := m.packetize(1200, 2, 40000, 3000000000)
			var pkts []sent
			for _, p := range first {
				if p.at < time.Second {
					pkts = append(pkts, p)
				}
			}
			for _, p := range second {
				if p.at >= time.Second { // from the keyframe at 1 s
					p.at += 2 * time.Second
					pkts = append(pkts, p)
				}
			}
			feed(tr, clk, pkts)
			s, err := tr.Close()
			if err != nil {
				t.Fatal(err)
			}
			checkFile(t, s, m, m.duration+2*time.Second)
			if len(s.Pauses) != 1 || s.Pauses[0].Reason != ReasonGap {
				t.Errorf("pauses %v, want one gap", s.Pauses)
			}
			if s.Lost != 0 {
				t.Errorf("lost %d across the SSRC change", s.Lost)
			}
		})
	}
}

// A simulcast layer switch hands the recording a new SSRC whose keyframe
// can arrive in the same instant as the old layer's last frame. The
// timeline then moves by a tick, less than WebM's millisecond: two blocks
// must still not share a timestamp (ffmpeg refuses "non monotonically
// increasing dts").
func TestRecordLayerSwitchSameInstant(t *testing.T) {
	for _, name := range allMedia {
		t.Run(name, func(t *testing.T) {
			m := loadMedia(t, name)
			tr, clk, _, _ := start(t, m)
			first := m.packetize(1200, 1, 100, 100)
			second := m.packetize(1200, 2, 40000, 3000000000)
			var pkts []sent
			var lastAt time.Duration
			for _, p := range first {
				if p.at < time.Second {
					pkts = append(pkts, p)
					lastAt = p.at
				}
			}
			for _, p := range second {
				if p.at >= time.Second { // from the keyframe at 1 s, at once
					p.at -= time.Second - lastAt
					pkts = append(pkts, p)
				}
			}
			feed(tr, clk, pkts)
			s, err := tr.Close()
			if err != nil {
				t.Fatal(err)
			}
			checkFile(t, s, m, m.duration-(time.Second-lastAt))
		})
	}
}

// A recording that moves to a layer of another size (the SFU moves it
// down when the recorded layer trickles and back up when it recovers)
// stays one file that decodes whole: its frames at the first size, then,
// from the new layer's keyframe, at the second, and back.
func TestRecordResolutionChange(t *testing.T) {
	for _, name := range videoMedia {
		t.Run(name, func(t *testing.T) {
			small, large := loadMedia(t, name), loadMedia(t, name+"-480p")
			tr, clk, _, _ := start(t, large)
			// A second of the large layer, a second of the small one
			// from its keyframe at 1 s, and the large one from its
			// keyframe at 2 s.
			frame := time.Second / 25
			var pkts []sent
			for _, p := range large.packetize(1200, 1, 100, 100) {
				if p.at < time.Second || p.at >= 2*time.Second {
					pkts = append(pkts, p)
				}
			}
			var mid []sent
			for _, p := range small.packetize(1200, 2, 40000, 3000000000) {
				if p.at >= time.Second && p.at < 2*time.Second {
					mid = append(mid, p)
				}
			}
			// In time order: the large layer's first second, the small
			// one's, then the large one's last.
			var ordered []sent
			for _, p := range pkts {
				if p.at < time.Second {
					ordered = append(ordered, p)
				}
			}
			ordered = append(ordered, mid...)
			for _, p := range pkts {
				if p.at >= 2*time.Second {
					ordered = append(ordered, p)
				}
			}
			// Rewritten into one stream, as the meeting's recording
			// hands its sink a layer switch: one SSRC, the sequence
			// numbers following on, the timestamps going on with the
			// time (both layers' frames are 3,600 ticks apart).
			for i := range ordered {
				h := &ordered[i].pkt.Header
				base := uint32(100)
				if h.SSRC == 2 {
					base = 3000000000
				}
				h.SSRC, h.SequenceNumber, h.Timestamp = 1, uint16(100+i), h.Timestamp-base+100
			}
			feed(tr, clk, ordered)
			s, err := tr.Close()
			if err != nil {
				t.Fatal(err)
			}
			if e := decodeErrors(t, s.Path); e != "" {
				t.Fatalf("decoding %s: %s", filepath.Base(s.Path), e)
			}
			sizes := frameSizes(t, s.Path)
			want := map[int]string{}
			for i, size := range sizes {
				switch at := time.Duration(i) * frame; {
				case at < time.Second-frame, at >= 2*time.Second+frame:
					want[i] = "640x480"
				case at >= time.Second+frame && at < 2*time.Second-frame:
					want[i] = "320x240"
				default:
					continue // at a move: either
				}
				if size != want[i] {
					t.Errorf("frame %d (of %d) is %s, want %s", i, len(sizes), size, want[i])
				}
			}
			if len(sizes) < 70 {
				t.Errorf("%d frames decoded of 75", len(sizes))
			}
		})
	}
}

// A full queue drops packets and counts them; WriteRTP does not wait for
// the recorder.
func TestQueueFullDrops(t *testing.T) {
	m := loadMedia(t, "vp8")
	clk := newFakeClock()
	stall := make(chan struct{})
	stalled := make(chan struct{})
	var once atomic.Bool
	tr, err := Start(Params{
		Dir: t.TempDir(), Name: "rec", MimeType: m.mime, QueueSize: 16, Now: clk.Now,
		RequestKeyframe: func() {
			// The first request stalls the recorder's goroutine.
			if once.CompareAndSwap(false, true) {
				close(stalled)
				<-stall
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	pkts := m.packetize(200, 7, 100, 100)
	// Frame 1 is not a keyframe: the recorder asks for one, and stalls
	// there holding the slot of the frame's last packet.
	first, last := framePackets(m, pkts, 1)
	for i := first; i <= last; i++ {
		tr.WriteRTP(&pkts[i].pkt)
	}
	<-stalled
	const n = 116
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			tr.WriteRTP(&pkts[last+1+i].pkt)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("WriteRTP blocked on a full queue")
	}
	close(stall)
	s, _ := tr.Close()
	if want := n - (16 - 1); s.Dropped != want {
		t.Errorf("dropped %d, want %d", s.Dropped, want)
	}
}

func TestCloseWithoutMedia(t *testing.T) {
	for _, name := range []string{"vp8", "opus"} {
		t.Run(name, func(t *testing.T) {
			m := loadMedia(t, name)
			dir := t.TempDir()
			tr, err := Start(Params{Dir: dir, Name: "rec", MimeType: m.mime})
			if err != nil {
				t.Fatal(err)
			}
			if name == "vp8" {
				// Packets, but never a keyframe.
				pkts := m.packetize(1200, 7, 100, 100)
				first, _ := framePackets(m, pkts, 1)
				last, _ := framePackets(m, pkts, 20)
				for i := first; i < last; i++ {
					tr.WriteRTP(&pkts[i].pkt)
				}
			}
			s, err := tr.Close()
			if !errors.Is(err, ErrNoMedia) || s.Path != "" {
				t.Errorf("Close: %+v, %v; want ErrNoMedia", s, err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("left behind: %v", entries)
			}
		})
	}
}

func TestStartErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "taken.webm"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "partial.mp4.part"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		p    Params
		want error
	}{
		{"unsupported codec", Params{Dir: dir, Name: "a", MimeType: webrtc.MimeTypeVP9}, ErrUnsupportedCodec},
		{"existing file", Params{Dir: dir, Name: "taken", MimeType: webrtc.MimeTypeVP8}, ErrExists},
		{"existing part", Params{Dir: dir, Name: "partial", MimeType: webrtc.MimeTypeH264}, ErrExists},
		{"name with a directory", Params{Dir: dir, Name: "../a", MimeType: webrtc.MimeTypeOpus}, nil},
		{"empty name", Params{Dir: dir, MimeType: webrtc.MimeTypeOpus}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := Start(tc.p)
			if err == nil {
				_, _ = tr.Close()
				t.Fatal("Start succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Start: %v, want %v", err, tc.want)
			}
		})
	}
	// Case does not matter, and the extension follows the codec.
	for mime, want := range map[string]string{"VIDEO/vp8": ".webm", "video/H264": ".mp4", "audio/OPUS": ".webm"} {
		if ext, err := Ext(mime); err != nil || ext != want {
			t.Errorf("Ext(%q) = %q, %v; want %q", mime, ext, err, want)
		}
	}
}

// After Close, WriteRTP, Pause and Resume are ignored and Close returns
// the same again.
func TestUseAfterClose(t *testing.T) {
	m := loadMedia(t, "opus")
	tr, clk, _, _ := start(t, m)
	pkts := m.packetize(1200, 7, 100, 100)
	feed(tr, clk, pkts[:50])
	s1, err1 := tr.Close()
	tr.WriteRTP(&pkts[50].pkt)
	tr.Pause()
	tr.Resume()
	s2, err2 := tr.Close()
	if err1 != nil || err2 != nil || s1.SHA256 != s2.SHA256 || s2.Frames != 50 || len(s2.Pauses) != 0 {
		t.Errorf("Close twice: %+v, %v; %+v, %v", s1, err1, s2, err2)
	}
}

// WriteRTP makes no allocation, whether the packet is queued or dropped.
func TestWriteRTPAllocs(t *testing.T) {
	c, _ := codecOf(webrtc.MimeTypeVP8)
	tr := newTrack(Params{QueueSize: 4096, Log: discard(), Now: time.Now}, c)
	p := &rtp.Packet{Header: rtp.Header{SequenceNumber: 1, Timestamp: 1}, Payload: make([]byte, 1100)}
	if n := testing.AllocsPerRun(1000, func() { p.SequenceNumber++; tr.WriteRTP(p) }); n != 0 {
		t.Errorf("WriteRTP queued: %v allocations", n)
	}
	tr.q.head.Store(tr.q.tail.Load() + uint64(len(tr.q.slots))) // full
	if n := testing.AllocsPerRun(1000, func() { tr.WriteRTP(p) }); n != 0 {
		t.Errorf("WriteRTP dropped: %v allocations", n)
	}
}

func TestTimeline(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		ts   uint32
		ssrc uint32
		at   time.Duration
		want int64
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"wraps", []step{{4294967000, 1, 0, 0}, {2704, 1, 120 * time.Millisecond, 3000}, {5704, 1, 160 * time.Millisecond, 6000}}},
		{"gap by timestamps", []step{{0, 1, 0, 0}, {180000, 1, 2 * time.Second, 180000}}},
		{"new ssrc follows the wall clock", []step{{0, 1, 0, 0}, {123456789, 2, 3 * time.Second, 270000}}},
		{"timestamps jump but the wall clock does not", []step{{0, 1, 0, 0}, {900000, 1, 40 * time.Millisecond, 3600}}},
		{"timestamps go back", []step{{90000, 1, 0, 0}, {0, 1, time.Second, 90000}}},
		{"new ssrc in the same instant: the frame before keeps its duration", []step{{0, 1, 0, 0}, {3000, 1, 33 * time.Millisecond, 3000}, {777, 2, 33 * time.Millisecond, 6000}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tl := timeline{clock: 90000}
			for i, s := range tc.steps {
				if got := tl.place(s.ts, s.ssrc, base.Add(s.at), 3000); got != s.want {
					t.Errorf("step %d: %d, want %d", i, got, s.want)
				}
			}
		})
	}
}

// The .part of a recording that never finished (the process died) plays
// up to its last cluster or fragment: no more than a few seconds are lost.
func TestPartPlays(t *testing.T) {
	for _, name := range allMedia {
		t.Run(name, func(t *testing.T) {
			m := loadMedia(t, name)
			clk := newFakeClock()
			c, _ := codecOf(m.mime)
			path := filepath.Join(t.TempDir(), "rec"+c.ext)
			f, err := os.OpenFile(path+".part", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			// The writer without its goroutine, and never finished.
			w := newWriter(Params{ClockRate: m.clock, Now: clk.Now}, c, f, path, discard())
			for _, p := range m.packetize(1200, 1, 1, 1) {
				w.packet(&slot{at: clk.at(p.at), seq: p.pkt.SequenceNumber, ts: p.pkt.Timestamp, ssrc: p.pkt.SSRC,
					marker: p.pkt.Marker, buf: p.pkt.Payload, n: len(p.pkt.Payload)})
			}
			if w.err != nil {
				t.Fatal(w.err)
			}
			p := ffprobe(t, path+".part")
			if p.Streams[0].CodecName != c.name {
				t.Errorf("ffprobe codec %q, want %q", p.Streams[0].CodecName, c.name)
			}
			if e := decodeErrors(t, path+".part"); e != "" {
				t.Errorf("decoding the .part: %s", e)
			}
			// 3 s sent: the clusters or fragments up to 2 s are on disk.
			out, err := exec.Command("ffprobe", "-v", "error", "-count_packets", "-show_entries", "stream=nb_read_packets",
				"-of", "csv=p=0", path+".part").Output()
			if err != nil {
				t.Fatal(err)
			}
			n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
			if want := len(m.frames) * 2 / 3; n < want-1 || n >= len(m.frames) {
				t.Errorf("the .part has %d frames, want the first %d", n, want)
			}
		})
	}
}

// A pause still open at Close ends at Close.
func TestCloseWhilePaused(t *testing.T) {
	m := loadMedia(t, "opus")
	tr, clk, _, _ := start(t, m)
	pkts := m.packetize(1200, 7, 100, 100)
	feed(tr, clk, pkts[:50])
	clk.set(time.Second)
	tr.Pause()
	clk.set(3 * time.Second)
	s, err := tr.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := Pause{From: clk.at(time.Second), To: clk.at(3 * time.Second), Reason: ReasonCaller}
	if len(s.Pauses) != 1 || s.Pauses[0] != want {
		t.Errorf("pauses %v, want %v", s.Pauses, []Pause{want})
	}
}
