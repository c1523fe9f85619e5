package whep

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/lookout-cc/lookout/internal/testpeers"
	"github.com/lookout-cc/lookout/sfu/rtc"
	"github.com/lookout-cc/lookout/sfu/source"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	sps = []byte{0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8}
	pps = []byte{0x68, 0xce, 0x3c, 0x80}
)

// feed plays a synthetic H.264 camera into src at 25 frames/s with a
// keyframe every 50 frames, until ctx ends.
func feed(ctx context.Context, src *source.Source) {
	src.Start(source.H264, [][]byte{nil, sps, pps})
	t := time.NewTicker(40 * time.Millisecond)
	defer t.Stop()
	var seq uint16
	var ts uint32
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		nal := byte(0x61) // a P slice
		if i%50 == 0 {
			nal = 0x65 // IDR
		}
		payload := make([]byte, 800)
		payload[0], payload[1] = nal, 0x88 // first_mb_in_slice 0
		seq++
		ts += 3600
		src.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, SSRC: 1, Marker: true}, Payload: payload})
	}
}

func newServer(t *testing.T) (*Server, *rtc.Engine) {
	t.Helper()
	eng, err := rtc.New(rtc.Params{UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Params{Peers: eng, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() {
		s.Close()
		eng.Close()
	})
	return s, eng
}

func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
	}
}

// A viewer joins mid-group-of-pictures: its first packet is the cached
// keyframe's parameter sets, long before the camera's next keyframe; it
// hangs up and is gone from the source.
func TestViewerStartsAtTheCachedKeyframe(t *testing.T) {
	s, _ := newServer(t)
	src := source.New()
	defer src.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); feed(ctx, src) }()
	defer func() { cancel(); <-done }()
	waitUntil(t, 5*time.Second, "a keyframe cached", func() bool { return src.Stats().CachedPackets > 5 })

	c := testpeers.NewViewer(t)
	began := time.Now()
	answer, sess, err := s.Offer("cam-1", "alice", src, c.Offer(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Answer(t, answer)
	waitUntil(t, 5*time.Second, "video", func() bool { return len(c.Packets()) > 0 })
	got := c.Packets()
	if first := got[0].Payload[0] & 0x1f; first != 24 { // STAP-A: SPS and PPS
		t.Fatalf("first packet NAL type %d, want the cached parameter sets", first)
	}
	if wait := c.First().Sub(began); wait > time.Second {
		t.Fatalf("first packet after %s", wait)
	}
	if s.CameraSessions("cam-1") != 1 || src.Viewers() != 1 {
		t.Fatalf("sessions %d, viewers %d", s.CameraSessions("cam-1"), src.Viewers())
	}
	if err := s.Hangup(sess.ID); err != nil {
		t.Fatal(err)
	}
	if src.Viewers() != 0 || s.CameraSessions("cam-1") != 0 {
		t.Fatal("the session stayed after hangup")
	}
	if err := s.Hangup(sess.ID); !errors.Is(err, ErrSessionNotFound) {
		t.Fatalf("second hangup: %v", err)
	}
}

// A viewer that vanishes without DELETE (its socket gone) is dropped when
// its ICE times out.
func TestVanishedViewerIsDropped(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the ICE timeout")
	}
	s, _ := newServer(t)
	src := source.New()
	defer src.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); feed(ctx, src) }()
	defer func() { cancel(); <-done }()
	c := testpeers.NewViewer(t)
	answer, _, err := s.Offer("cam-1", "bob", src, c.Offer(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Answer(t, answer)
	waitUntil(t, 5*time.Second, "video", func() bool { return len(c.Packets()) > 0 })
	c.Vanish() // gone: no goodbye, no more ICE
	waitUntil(t, 25*time.Second, "the session dropped", func() bool { return s.CameraSessions("cam-1") == 0 && src.Viewers() == 0 })
}

func TestBadOffers(t *testing.T) {
	s, _ := newServer(t)
	src := source.New()
	defer src.Close()
	for _, tc := range []struct {
		name  string
		offer string
		want  error
	}{
		{"not SDP", "hello", ErrBadOffer},
		{"broken SDP", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=video broken\r\n", ErrBadOffer},
	} {
		if _, _, err := s.Offer("cam", "x", src, tc.offer, nil); !errors.Is(err, tc.want) && !errors.Is(err, ErrNoCodec) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	vp8 := testpeers.NewViewer(t, webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96})
	if _, _, err := s.Offer("cam", "x", src, vp8.Offer(t), nil); !errors.Is(err, ErrNoCodec) {
		t.Fatalf("VP8 only: %v", err)
	}
	if len(s.Sessions()) != 0 {
		t.Fatal("a refused offer left a session")
	}
}

// A camera removed (its source closed) ends the sessions watching it,
// rather than leave them connected with a frozen picture.
func TestSourceGoneEndsTheSession(t *testing.T) {
	s, _ := newServer(t)
	src := source.New()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); feed(ctx, src) }()
	c := testpeers.NewViewer(t)
	released := make(chan struct{})
	answer, _, err := s.Offer("cam-1", "carol", src, c.Offer(t), func() { close(released) })
	if err != nil {
		t.Fatal(err)
	}
	c.Answer(t, answer)
	waitUntil(t, 5*time.Second, "video", func() bool { return len(c.Packets()) > 0 })
	cancel()
	<-done
	src.Close()
	waitUntil(t, 5*time.Second, "the session ended", func() bool { return s.CameraSessions("cam-1") == 0 })
	select {
	case <-released:
	case <-time.After(5 * time.Second):
		t.Fatal("the session's claim on the camera was not released")
	}
}

// A switch gives back what it was handed when it cannot take it: a source
// of another codec (a camera's H.265 main stream for an H.264 session),
// and any source once the session has ended.
func TestSwitchReleasesWhatItCannotTake(t *testing.T) {
	s, _ := newServer(t)
	src := source.New()
	defer src.Close()
	src.Start(source.H264, nil)
	c := testpeers.NewViewer(t)
	_, sess, err := s.Offer("cam-1", "alice", src, c.Offer(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	h265 := source.New()
	defer h265.Close()
	h265.Start(source.H265, nil)
	released := 0
	release := func() { released++ }
	if err := sess.Switch(h265, release); !errors.Is(err, ErrCodecMismatch) || released != 1 {
		t.Fatalf("switch to H.265: %v, released %d", err, released)
	}
	if err := sess.SwitchCamera("cam-2", h265, release); !errors.Is(err, ErrCodecMismatch) || released != 2 || sess.Camera() != "cam-1" {
		t.Fatalf("switch to an H.265 camera: %v, released %d, camera %s", err, released, sess.Camera())
	}
	if err := s.Hangup(sess.ID); err != nil {
		t.Fatal(err)
	}
	other := source.New()
	defer other.Close()
	other.Start(source.H264, nil)
	if err := sess.SwitchCamera("cam-3", other, release); !errors.Is(err, ErrSessionNotFound) || released != 3 {
		t.Fatalf("switch of an ended session: %v, released %d", err, released)
	}
}
