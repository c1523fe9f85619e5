package clips

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lookout-cc/lookout/ingest/rtsp"
	"github.com/lookout-cc/lookout/internal/testpeers"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
	}
}

// pull plays a real camera into sink until the test ends.
func pull(t *testing.T, url string, sink rtsp.Sink) {
	p, err := rtsp.New(rtsp.Params{URL: url, Transport: "tcp", Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	t.Cleanup(p.Close)
}

// probed is what ffprobe says of a file.
type probed struct {
	Streams []struct {
		CodecName string `json:"codec_name"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
	} `json:"streams"`
	Format struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
	} `json:"format"`
	Frames []struct {
		KeyFrame int    `json:"key_frame"`
		PictType string `json:"pict_type"`
	} `json:"frames"`
}

// ffprobe decodes every frame of the file: it must do so without a word
// of complaint.
func ffprobe(t *testing.T, path string) probed {
	t.Helper()
	bin, err := testpeers.FindBinary("ffprobe", "LOOKOUT_FFPROBE")
	if err != nil {
		t.Skip(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "-v", "error", "-of", "json", "-show_streams", "-show_format", "-show_frames", "-select_streams", "v:0", path)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("ffprobe: %v: %s", err, stderr.String())
	}
	var p probed
	if err := json.Unmarshal(stdout.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeClip writes the last d of the buffer to a file, as ffprobe sees it.
func writeClip(t *testing.T, b *Buffer, d time.Duration) (*Segment, MP4Info, probed) {
	t.Helper()
	now := time.Now()
	seg, err := b.Snapshot(now.Add(-d), now)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "clip.mp4")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := seg.WriteMP4(f)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if st, _ := os.Stat(path); st.Size() != info.Bytes {
		t.Fatalf("%d bytes written, %d said", st.Size(), info.Bytes)
	}
	return seg, info, ffprobe(t, path)
}

// A real ffmpeg H.264 camera, pulled over RTSP into a tee of three buffers:
// the last 3 s make an MP4 that ffprobe decodes whole, from a keyframe; a
// span outside the buffer is refused, saying what it holds; a buffer of
// 1 s and one of a few hundred kilobytes stay within their bounds while
// the stream runs longer.
func TestRealCamera(t *testing.T) {
	cam := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{GOP: 10}) // 640x360, 25 fps, a keyframe every 0.4 s
	const gop = 400 * time.Millisecond
	clip := New(Params{Duration: 10 * time.Second})
	short := New(Params{Duration: time.Second})
	const maxBytes = 96 << 10
	small := New(Params{Duration: 30 * time.Second, MaxBytes: maxBytes})
	pull(t, cam.URL, rtsp.Tee{clip, short, small})

	// Both bounds hold at every moment, while the stream runs 4.5 s.
	began := time.Now()
	for time.Since(began) < 4500*time.Millisecond {
		st := short.Stats()
		if span := st.To.Sub(st.From); span > time.Second+gop+100*time.Millisecond {
			t.Fatalf("a 1 s buffer spans %s", span)
		}
		if st := small.Stats(); st.Bytes > maxBytes || st.Allocated > maxBytes {
			t.Fatalf("a %d-byte buffer holds %d (%d allocated)", maxBytes, st.Bytes, st.Allocated)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := short.Stats(); st.To.Sub(st.From) < time.Second || st.EvictedForBytes != 0 {
		t.Fatalf("the 1 s buffer: %+v", st)
	}
	if st := small.Stats(); st.EvictedForBytes == 0 || st.To.Sub(st.From) > 4*time.Second {
		t.Fatalf("the small buffer evicted nothing: %+v", st)
	}
	t.Logf("after 4.5 s: %+v", clip.Stats())

	seg, info, p := writeClip(t, clip, 3*time.Second)
	if len(p.Streams) != 1 || p.Streams[0].CodecName != "h264" || p.Streams[0].Width != 640 || p.Streams[0].Height != 360 ||
		!strings.Contains(p.Format.FormatName, "mp4") {
		t.Fatalf("ffprobe: %+v", p)
	}
	d, _ := strconv.ParseFloat(p.Format.Duration, 64)
	// From the keyframe at or before 3 s ago: 3 s, and up to one
	// keyframe interval more.
	if d < 2.9 || d > 3.0+gop.Seconds()+0.1 || info.Duration.Seconds()-d > 0.05 || d-info.Duration.Seconds() > 0.05 {
		t.Fatalf("duration %.3f s (written %s)", d, info.Duration)
	}
	if len(p.Frames) != len(seg.Frames) || p.Frames[0].KeyFrame != 1 || p.Frames[0].PictType != "I" {
		t.Fatalf("%d frames decoded of %d; the first %+v", len(p.Frames), len(seg.Frames), p.Frames[0])
	}
	if info.Width != 640 || info.Height != 360 {
		t.Fatalf("info %+v", info)
	}

	avail, _ := clip.Available()
	_, err := clip.Snapshot(avail.From.Add(-time.Minute), avail.From.Add(time.Second))
	if !errors.Is(err, ErrSpanNotBuffered) || !strings.Contains(err.Error(), "the pre-alert buffer holds "+avail.From.UTC().Format("2006-01-02T15:04:05.000Z")) {
		t.Fatalf("a span before the buffer: %v", err)
	}
}

// H.265 too.
func TestRealCameraH265(t *testing.T) {
	cam := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{Codec: "h265", GOP: 10})
	b := New(Params{Duration: 5 * time.Second})
	pull(t, cam.URL, b)
	waitFor(t, 15*time.Second, "2.5 s buffered", func() bool { st := b.Stats(); return st.To.Sub(st.From) > 2500*time.Millisecond })
	seg, _, p := writeClip(t, b, 2*time.Second)
	if len(p.Streams) != 1 || p.Streams[0].CodecName != "hevc" || p.Streams[0].Width != 640 || p.Streams[0].Height != 360 {
		t.Fatalf("ffprobe: %+v", p)
	}
	if len(p.Frames) != len(seg.Frames) || p.Frames[0].KeyFrame != 1 {
		t.Fatalf("%d frames decoded of %d; the first %+v", len(p.Frames), len(seg.Frames), p.Frames[0])
	}
}
