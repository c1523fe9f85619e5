package demo

import (
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
	"go.uber.org/goleak"
)

// Every stream, reader and gortsplib goroutine ends with its test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// shortClip is the first frames of a demo clip: a loop of 0.6 s, so a
// test sees loop boundaries soon.
func shortClip(t *testing.T, name string) *Clip {
	t.Helper()
	c, err := LoadClip(name)
	if err != nil {
		t.Fatal(err)
	}
	short := *c
	short.Frames = c.Frames[:15]
	return &short
}

// gotFrame is an access unit a reader decoded, with its RTP timestamp.
type gotFrame struct {
	ts  uint32
	idr bool
	at  time.Time
}

// readFrames plays url over the transport and returns the first n access
// units, decoded from RTP as a camera puller would.
func readFrames(t *testing.T, url string, transport gortsplib.Transport, n int) (*format.H264, []gotFrame) {
	t.Helper()
	u, err := base.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &transport, ReadTimeout: 5 * time.Second}
	if err := c.Start2(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	if err != nil {
		t.Fatal(err)
	}
	var forma *format.H264
	medi := desc.FindFormat(&forma)
	if medi == nil {
		t.Fatalf("no H.264 in %+v", desc)
	}
	dec, err := forma.CreateDecoder()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetupAll(desc.BaseURL, []*description.Media{medi}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []gotFrame
	done := make(chan struct{})
	c.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		au, err := dec.Decode(pkt)
		if errors.Is(err, rtph264.ErrMorePacketsNeeded) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil || len(got) >= n {
			return
		}
		got = append(got, gotFrame{ts: pkt.Timestamp, idr: h264.IsRandomAccess(au), at: time.Now()})
		if len(got) == n {
			close(done)
		}
	})
	if _, err := c.Play(nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%d of %d frames in 10 s", len(got), n)
	}
	mu.Lock()
	defer mu.Unlock()
	return forma, got
}

// The server plays each path's clip in a loop over TCP and UDP: the SDP
// has the clip's parameter sets, a keyframe comes, and frames run on
// across loop boundaries at the clip's pace, with timestamps that keep
// rising by one frame's 3600 ticks (90 kHz at 25 fps).
func TestCameraServerLoopsClips(t *testing.T) {
	clips := map[string]*Clip{"bht-dam": shortClip(t, "bht-dam.h264"), "xld-dam": shortClip(t, "xld-dam.h264")}
	s := NewCameraServer(CameraServerParams{Streams: clips})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close) // after the parallel subtests
	if !strings.HasPrefix(s.URL("bht-dam"), "rtsp://127.0.0.1:") || !strings.HasSuffix(s.URL("/bht-dam"), "/bht-dam") {
		t.Fatalf("URL %q", s.URL("bht-dam"))
	}
	const frames = 40 // more than two passes of 15
	for _, tt := range []struct {
		path      string
		transport gortsplib.Transport
	}{
		{"bht-dam", gortsplib.TransportTCP},
		{"xld-dam", gortsplib.TransportUDP},
	} {
		t.Run(tt.transport.String(), func(t *testing.T) {
			t.Parallel()
			clip := clips[tt.path]
			forma, got := readFrames(t, s.URL(tt.path), tt.transport, frames)
			if string(forma.SPS) != string(clip.SPS) || string(forma.PPS) != string(clip.PPS) || forma.PacketizationMode != 1 {
				t.Fatalf("SDP format %+v", forma)
			}
			idrs := 0
			for i, f := range got {
				if f.idr {
					idrs++
				}
				if i == 0 {
					continue
				}
				// UDP may drop a frame; none is ever late or repeated.
				if d := f.ts - got[i-1].ts; d == 0 || d%3600 != 0 || d > 3*3600 {
					t.Fatalf("frame %d: timestamp %d after %d", i, f.ts, got[i-1].ts)
				}
			}
			if idrs < 2 {
				t.Fatalf("%d keyframes in %d frames of a 15-frame loop", idrs, frames)
			}
			// Real time: 39 frame intervals of 40 ms, give or take.
			if took := got[frames-1].at.Sub(got[0].at); took < 1300*time.Millisecond || took > 4*time.Second {
				t.Fatalf("%d frames took %s", frames, took)
			}
		})
	}
}

// A path with no camera is 404; the server refuses publishing.
func TestCameraServerRefuses(t *testing.T) {
	s := NewCameraServer(CameraServerParams{Streams: map[string]*Clip{"bht-dam": shortClip(t, "bht-dam.h264")}})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, _ := base.ParseURL(s.URL("nothing-here"))
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host}
	if err := c.Start2(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _, err := c.Describe(u)
	var bad liberrors.ErrClientBadStatusCode
	if !errors.As(err, &bad) || bad.Code != base.StatusNotFound {
		t.Fatalf("describe of an unknown path: %v", err)
	}
	desc := &description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H264{PayloadTyp: 96, PacketizationMode: 1}}}}}
	pub := &gortsplib.Client{}
	err = pub.StartRecording(s.URL("bht-dam"), desc)
	if err == nil {
		pub.Close()
	}
	if !errors.As(err, &bad) || bad.Code != base.StatusNotImplemented {
		t.Fatalf("publishing: %v", err)
	}
}

// A configured port is used, and Close frees it again.
func TestCameraServerAddr(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	for range 2 {
		s := NewCameraServer(CameraServerParams{Addr: addr, Streams: map[string]*Clip{"a": shortClip(t, "xld-dam.h264")}})
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		if s.Addr() != addr || s.URL("a") != "rtsp://"+addr+"/a" {
			t.Fatalf("addr %s, url %s; want %s", s.Addr(), s.URL("a"), addr)
		}
		s.Close()
	}
	s := NewCameraServer(CameraServerParams{Addr: "0.0.0.0:0", Streams: map[string]*Clip{"a": shortClip(t, "xld-dam.h264")}})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.URL("a"), "rtsp://127.0.0.1:") {
		t.Fatalf("URL of a server on every address: %s", s.URL("a"))
	}
}
