package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
	"go.uber.org/goleak"
)

// Real media for the tests, made once by ffmpeg into a directory of the
// test binary's.
var mediaDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "record-media-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mediaDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	if code == 0 {
		// Every Track's goroutine must have ended with its Close.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// testFrame is one encoded frame, in decoding order.
type testFrame struct {
	data []byte
	ts   uint32 // RTP ticks from the stream's start
	key  bool
}

// testMedia is an encoded test stream.
type testMedia struct {
	mime          string
	clock         uint32
	frames        []testFrame
	width, height int
	duration      time.Duration
	frameDur      uint32 // ticks
}

var (
	mediaMu    sync.Mutex
	mediaCache = map[string]*testMedia{}
)

// The streams: 3 s of a test picture at 25 fps with a keyframe each
// second, or of a 440 Hz tone; and 2 s of 720p at 30 fps and 2.5 Mbit/s
// (noise keeps the encoder at its rate) for the throughput benchmark.
var mediaSpecs = map[string]struct {
	mime string
	args []string
	ext  string
}{
	"vp8": {webrtc.MimeTypeVP8, []string{"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "3",
		"-c:v", "libvpx", "-deadline", "realtime", "-g", "25", "-keyint_min", "25", "-b:v", "400k"}, ".ivf"},
	"h264": {webrtc.MimeTypeH264, []string{"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "3",
		"-pix_fmt", "yuv420p", "-c:v", "libx264", "-profile:v", "baseline", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0",
		"-b:v", "400k", "-bsf:v", "h264_mp4toannexb", "-f", "h264"}, ".h264"},
	// The same at another size, for a move between simulcast layers.
	"vp8-480p": {webrtc.MimeTypeVP8, []string{"-f", "lavfi", "-i", "testsrc=size=640x480:rate=25", "-t", "3",
		"-c:v", "libvpx", "-deadline", "realtime", "-g", "25", "-keyint_min", "25", "-b:v", "800k"}, ".ivf"},
	"h264-480p": {webrtc.MimeTypeH264, []string{"-f", "lavfi", "-i", "testsrc=size=640x480:rate=25", "-t", "3",
		"-pix_fmt", "yuv420p", "-c:v", "libx264", "-profile:v", "baseline", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0",
		"-b:v", "800k", "-bsf:v", "h264_mp4toannexb", "-f", "h264"}, ".h264"},
	"opus": {webrtc.MimeTypeOpus, []string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "3",
		"-c:a", "libopus", "-b:a", "32k", "-frame_duration", "20", "-page_duration", "20000"}, ".ogg"},
	"vp8-720p": {webrtc.MimeTypeVP8, []string{"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30", "-t", "2",
		"-vf", "noise=alls=12:allf=t", "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-g", "60",
		"-b:v", "2500k", "-minrate", "2500k", "-maxrate", "2500k"}, ".ivf"},
}

// loadMedia encodes (once) and reads one of mediaSpecs.
func loadMedia(tb testing.TB, name string) *testMedia {
	tb.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		tb.Skip("ffmpeg is not installed: the recordings cannot be made or checked")
	}
	mediaMu.Lock()
	defer mediaMu.Unlock()
	if m := mediaCache[name]; m != nil {
		return m
	}
	spec := mediaSpecs[name]
	path := filepath.Join(mediaDir, name+spec.ext)
	args := append([]string{"-v", "error", "-y"}, spec.args...)
	if out, err := exec.Command("ffmpeg", append(args, path)...).CombinedOutput(); err != nil {
		tb.Fatalf("ffmpeg %s: %v\n%s", name, err, out)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	m := &testMedia{mime: spec.mime}
	switch spec.ext {
	case ".ivf":
		err = m.readIVF(raw)
	case ".h264":
		err = m.readH264(raw)
		// The size asked of ffmpeg (the SPS is not parsed here).
		for _, a := range spec.args {
			if _, size, ok := strings.Cut(a, "size="); ok {
				_, _ = fmt.Sscanf(size, "%dx%d", &m.width, &m.height)
			}
		}
	case ".ogg":
		err = m.readOgg(raw)
	}
	if err != nil {
		tb.Fatalf("reading %s: %v", name, err)
	}
	last := m.frames[len(m.frames)-1]
	m.duration = time.Duration(int64(last.ts+m.frameDur) * int64(time.Second) / int64(m.clock))
	mediaCache[name] = m
	return m
}

func (m *testMedia) readIVF(raw []byte) error {
	r, h, err := ivfreader.NewWith(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	m.clock, m.width, m.height = 90000, int(h.Width), int(h.Height)
	m.frameDur = 90000 * h.TimebaseNumerator / h.TimebaseDenominator
	for i := 0; ; i++ {
		data, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		m.frames = append(m.frames, testFrame{data: data, ts: uint32(i) * m.frameDur, key: data[0]&1 == 0})
	}
}

// readH264 groups the NAL units into access units: the parameter sets
// go with the picture that follows them (one slice a picture).
func (m *testMedia) readH264(raw []byte) error {
	r, err := h264reader.NewReader(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	m.clock, m.frameDur = 90000, 90000/25 // the size: loadMedia's
	var au []byte
	key := false
	for {
		nal, err := r.NextNAL()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		au = append(au, 0, 0, 0, 1)
		au = append(au, nal.Data...)
		switch nal.UnitType {
		case h264reader.NalUnitTypeCodedSliceIdr:
			key = true
			fallthrough
		case h264reader.NalUnitTypeCodedSliceNonIdr:
			m.frames = append(m.frames, testFrame{data: au, ts: uint32(len(m.frames)) * m.frameDur, key: key})
			au, key = nil, false
		}
	}
}

func (m *testMedia) readOgg(raw []byte) error {
	r, _, err := oggreader.NewWith(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	m.clock, m.frameDur = 48000, 960
	var ts uint32
	for {
		data, _, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if bytes.HasPrefix(data, []byte("OpusTags")) {
			continue
		}
		m.frames = append(m.frames, testFrame{data: data, ts: ts, key: true})
		ts += 960
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// sent is a packet and when it arrives, from the stream's start.
type sent struct {
	pkt rtp.Packet
	at  time.Duration
}

// packetize makes RTP packets of the frames as a WebRTC sender would:
// each arriving when its frame is due.
func (m *testMedia) packetize(mtu uint16, ssrc uint32, seq uint16, ts uint32) []sent {
	var out []sent
	var pay rtp.Payloader
	switch m.mime {
	case webrtc.MimeTypeVP8:
		pay = &codecs.VP8Payloader{EnablePictureID: true}
	case webrtc.MimeTypeH264:
		pay = &codecs.H264Payloader{}
	default:
		pay = &codecs.OpusPayloader{}
	}
	for _, f := range m.frames {
		payloads := pay.Payload(mtu, f.data)
		at := time.Duration(int64(f.ts) * int64(time.Second) / int64(m.clock))
		for i, p := range payloads {
			out = append(out, sent{at: at, pkt: rtp.Packet{
				Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts + f.ts, SSRC: ssrc,
					Marker: i == len(payloads)-1, PayloadType: 96},
				Payload: p,
			}})
			seq++
		}
	}
	return out
}

// fakeClock is the recorder's clock in the tests: it reads what the feed
// set, so that packets arrive on the media's own time however fast the
// test runs.
type fakeClock struct {
	base time.Time
	off  atomic.Int64
}

func newFakeClock() *fakeClock {
	return &fakeClock{base: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time               { return c.base.Add(time.Duration(c.off.Load())) }
func (c *fakeClock) set(d time.Duration)          { c.off.Store(int64(d)) }
func (c *fakeClock) at(d time.Duration) time.Time { return c.base.Add(d) }

// feed writes the packets at their arrival times, waiting for room in the
// queue so that nothing is dropped (the tests of loss drop on purpose).
func feed(tr *Track, clk *fakeClock, pkts []sent) {
	for i := range pkts {
		clk.set(pkts[i].at)
		deadline := time.Now().Add(10 * time.Second)
		for tr.q.head.Load()-tr.q.tail.Load() >= uint64(len(tr.q.slots))/2 {
			if time.Now().After(deadline) {
				panic("the recording's queue did not drain in 10 s")
			}
			time.Sleep(50 * time.Microsecond)
		}
		tr.WriteRTP(&pkts[i].pkt)
	}
}

// probe is what ffprobe reads of a file.
type probe struct {
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
	Streams []struct {
		CodecName string `json:"codec_name"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
	} `json:"streams"`
}

func (p probe) duration(tb testing.TB) time.Duration {
	s, err := strconv.ParseFloat(p.Format.Duration, 64)
	if err != nil {
		tb.Fatalf("ffprobe duration %q: %v", p.Format.Duration, err)
	}
	return time.Duration(s * float64(time.Second))
}

func ffprobe(tb testing.TB, path string) probe {
	tb.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries",
		"format=duration:stream=codec_name,width,height", "-of", "json", path).Output()
	if err != nil {
		tb.Fatalf("ffprobe %s: %v", path, err)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		tb.Fatalf("ffprobe output %s: %v", out, err)
	}
	if len(p.Streams) != 1 {
		tb.Fatalf("ffprobe %s: %d streams, want 1: %s", path, len(p.Streams), out)
	}
	return p
}

// decodeErrors decodes the whole file and returns what the decoder
// complained of (nothing for a clean file).
// decodeArgs has ffmpeg decode every frame of path, keeping the file's own
// time base: ffmpeg's default for video is one frame at the guessed rate,
// where two frames closer than that (a browser's, after a pause) collide,
// though the file is valid. Two frames at one time in the file itself are
// still reported.
func decodeArgs(path string) []string {
	return []string{"-v", "error", "-i", path, "-enc_time_base", "-1", "-f", "null", "-"}
}

// frameSizes is the size of each decoded frame of a file's video, in
// order ("640x480").
func frameSizes(tb testing.TB, path string) []string {
	tb.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
		"frame=width,height", "-of", "csv=p=0:s=x", path).Output()
	if err != nil {
		tb.Fatalf("ffprobe %s: %v", path, err)
	}
	return strings.Fields(string(out))
}

func decodeErrors(tb testing.TB, path string) string {
	tb.Helper()
	out, err := exec.Command("ffmpeg", decodeArgs(path)...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%v: %s", err, out)
	}
	return string(out)
}
