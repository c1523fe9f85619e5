package cameras

import (
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"go.uber.org/goleak"

	"github.com/lookout-cc/lookout/ingest/rtsp"
	"github.com/lookout-cc/lookout/internal/testpeers"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
	}
}

type states struct {
	mu  sync.Mutex
	log map[string][]rtsp.State
}

func (s *states) on(id string, st rtsp.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log[id] = append(s.log[id], st.State)
}

// An always-on camera is live before anyone watches; a viewer gets its
// cached keyframe at once. An on-demand one is idle until a viewer comes,
// and idle again a while after the last one leaves.
func TestAlwaysOnAndOnDemand(t *testing.T) {
	cam := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{})
	st := &states{log: map[string][]rtsp.State{}}
	h, err := New(Params{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Linger: 300 * time.Millisecond, OnStatus: st.on, Transport: "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Set(Spec{ID: "dam", URL: cam.URL}); err != nil {
		t.Fatal(err)
	}
	if err := h.Set(Spec{ID: "gate", URL: cam.URL, Mode: OnDemand}); err != nil {
		t.Fatal(err)
	}
	if err := h.Set(Spec{ID: "bad", URL: cam.URL, Mode: "sometimes"}); err == nil {
		t.Fatal("a bad mode was taken")
	}
	waitFor(t, 10*time.Second, "dam live", func() bool { s, _ := h.Status("dam"); return s.State == rtsp.StateLive })
	if s, _ := h.Status("gate"); s.State != StateIdle {
		t.Fatalf("on-demand camera before a viewer: %s", s.State)
	}
	waitFor(t, 10*time.Second, "a keyframe cached", func() bool { s, _ := h.Status("dam"); return s.Source.CachedPackets > 0 })

	src, _, release, err := h.Acquire("dam", Main)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []byte
	began := time.Now()
	var first time.Duration
	v, err := src.AddViewer(func(p *rtp.Packet) error {
		mu.Lock()
		defer mu.Unlock()
		if len(got) == 0 {
			first = time.Since(began)
		}
		got = append(got, p.Payload[0]&0x1f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "packets", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) > 10 })
	mu.Lock()
	if got[0] != 24 || first > 200*time.Millisecond {
		t.Fatalf("first packet NAL type %d after %s: want the cached parameter sets at once", got[0], first)
	}
	mu.Unlock()
	v.Close()
	release()

	_, _, releaseGate, err := h.Acquire("gate", Main)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "gate live once watched", func() bool { s, _ := h.Status("gate"); return s.State == rtsp.StateLive && s.Viewers == 1 })
	releaseGate()
	releaseGate() // twice is once
	waitFor(t, 5*time.Second, "gate idle after the linger", func() bool { s, _ := h.Status("gate"); return s.State == StateIdle })
	if s, _ := h.Status("dam"); s.State != rtsp.StateLive || s.Viewers != 0 {
		t.Fatalf("dam: %+v", s)
	}
	if _, _, _, err := h.Acquire("nope", Main); err != ErrNotFound {
		t.Fatalf("unknown camera: %v", err)
	}

	// The camera drops and comes back: offline, then live, and the viewer
	// that stayed resumes without a new offer.
	src, _, release, _ = h.Acquire("dam", Main)
	defer release()
	var n int
	v2, _ := src.AddViewer(func(*rtp.Packet) error { mu.Lock(); n++; mu.Unlock(); return nil })
	defer v2.Close()
	cam.Stop()
	waitFor(t, 20*time.Second, "dam offline", func() bool { s, _ := h.Status("dam"); return s.State == rtsp.StateOffline })
	mu.Lock()
	before := n
	mu.Unlock()
	cam.Start()
	waitFor(t, 40*time.Second, "dam live again", func() bool { s, _ := h.Status("dam"); return s.State == rtsp.StateLive })
	waitFor(t, 10*time.Second, "the viewer resumes", func() bool { mu.Lock(); defer mu.Unlock(); return n > before+10 })

	h.Remove("gate")
	if _, ok := h.Status("gate"); ok {
		t.Fatal("removed camera still there")
	}
}

// Always-on cameras keep a pre-alert buffer beside their source; on-demand
// ones do not, nor any when the prebuffer is off.
func TestPrebufferOnlyForAlwaysOn(t *testing.T) {
	cam := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{GOP: 10})
	h, err := New(Params{Log: slog.New(slog.DiscardHandler), Transport: "tcp", Prebuffer: 2 * time.Second, PrebufferMaxBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Set(Spec{ID: "dam", URL: cam.URL}); err != nil {
		t.Fatal(err)
	}
	if err := h.Set(Spec{ID: "gate", URL: cam.URL, Mode: OnDemand}); err != nil {
		t.Fatal(err)
	}
	if h.Buffer("gate") != nil || h.Buffer("nope") != nil {
		t.Fatal("a buffer for an on-demand or unknown camera")
	}
	b := h.Buffer("dam")
	if b == nil {
		t.Fatal("no buffer for an always-on camera")
	}
	waitFor(t, 15*time.Second, "1.5 s buffered", func() bool {
		st, _ := h.Status("dam")
		return st.Prebuffer != nil && st.Prebuffer.To.Sub(st.Prebuffer.From) > 1500*time.Millisecond
	})
	// The source is fed all the same.
	if st, _ := h.Status("dam"); st.Source.Keyframes == 0 || st.Prebuffer.MaxBytes != 8<<20 || st.Prebuffer.Codec != "H264" {
		t.Fatalf("status %+v", st)
	}
	if st, _ := h.Status("gate"); st.Prebuffer != nil {
		t.Fatal("an on-demand camera reports a buffer")
	}
	// A new URL keeps the buffer; on demand drops it; always again makes
	// a new one.
	if err := h.Set(Spec{ID: "dam", URL: cam.URL + "?again"}); err != nil || h.Buffer("dam") != b {
		t.Fatalf("the buffer after a new URL: %v", err)
	}
	if err := h.Set(Spec{ID: "dam", URL: cam.URL, Mode: OnDemand}); err != nil || h.Buffer("dam") != nil {
		t.Fatalf("the buffer after on demand: %v", err)
	}
	if err := h.Set(Spec{ID: "dam", URL: cam.URL}); err != nil || h.Buffer("dam") == nil || h.Buffer("dam") == b {
		t.Fatalf("the buffer after always again: %v", err)
	}

	off, err := New(Params{Log: slog.New(slog.DiscardHandler), Transport: "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	if err := off.Set(Spec{ID: "dam", URL: cam.URL}); err != nil || off.Buffer("dam") != nil {
		t.Fatalf("a buffer with the prebuffer off: %v", err)
	}
}
