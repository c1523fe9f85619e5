package rtsp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/testpeers"
)

// recSink records what a puller hands it, and checks the call order.
type recSink struct {
	mu       sync.Mutex
	starts   int
	stops    int
	codec    string
	params   [][]byte
	active   bool
	packets  int
	keyframe bool // a keyframe's first packet arrived since the last Start
	misuse   []string
}

func (s *recSink) Start(codec string, paramSets [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active {
		s.misuse = append(s.misuse, "Start while started")
	}
	s.starts++
	s.active, s.codec, s.params, s.keyframe = true, codec, paramSets, false
}

func (s *recSink) WriteRTP(pkt *rtp.Packet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active {
		s.misuse = append(s.misuse, "WriteRTP outside Start/Stop")
	}
	s.packets++
	if startsKeyframe(s.codec, pkt.Payload) {
		s.keyframe = true
	}
}

func (s *recSink) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active {
		s.misuse = append(s.misuse, "Stop without Start")
	}
	s.stops++
	s.active = false
}

type sinkView struct {
	starts, stops, packets int
	codec                  string
	params                 [][]byte
	keyframe, active       bool
	misuse                 []string
}

func (s *recSink) view() sinkView {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sinkView{s.starts, s.stops, s.packets, s.codec, s.params, s.keyframe, s.active, slices.Clone(s.misuse)}
}

// startsKeyframe tells whether an RTP payload holds an IDR slice (H.264
// NAL type 5) or an IRAP picture (H.265 types 16-21), alone, in an
// aggregation packet, or as the first fragment of a fragmented unit.
func startsKeyframe(codec string, p []byte) bool {
	if codec == "H265" {
		if len(p) < 3 {
			return false
		}
		irap := func(typ byte) bool { return typ >= 16 && typ <= 21 }
		switch typ := (p[0] >> 1) & 0x3f; typ {
		case 49: // FU
			return p[2]&0x80 != 0 && irap(p[2]&0x3f)
		case 48: // AP
			for b := p[2:]; len(b) > 2; {
				n := int(b[0])<<8 | int(b[1])
				if n == 0 || len(b) < 2+n {
					return false
				}
				if irap((b[2] >> 1) & 0x3f) {
					return true
				}
				b = b[2+n:]
			}
			return false
		default:
			return irap(typ)
		}
	}
	if len(p) < 2 {
		return false
	}
	switch typ := p[0] & 0x1f; typ {
	case 28: // FU-A
		return p[1]&0x80 != 0 && p[1]&0x1f == 5
	case 24: // STAP-A
		for b := p[1:]; len(b) > 2; {
			n := int(b[0])<<8 | int(b[1])
			if n == 0 || len(b) < 2+n {
				return false
			}
			if b[2]&0x1f == 5 {
				return true
			}
			b = b[2+n:]
		}
		return false
	default:
		return typ == 5
	}
}

// statusLog keeps every status OnStatus reported.
type statusLog struct {
	mu  sync.Mutex
	all []Status
}

func (l *statusLog) add(s Status) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, s)
}

func (l *statusLog) offline() []Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Status
	for _, s := range l.all {
		if s.State == StateOffline {
			out = append(out, s)
		}
	}
	return out
}

// syncBuffer is a log sink safe for the puller's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// harness is one puller under test with what it reports.
type harness struct {
	*Puller
	sink     *recSink
	statuses *statusLog
	logs     *syncBuffer
}

func startPuller(t *testing.T, p Params) *harness {
	t.Helper()
	h := &harness{sink: &recSink{}, statuses: &statusLog{}, logs: &syncBuffer{}}
	p.Sink = h.sink
	p.OnStatus = h.statuses.add
	p.Log = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	pl, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	h.Puller = pl
	pl.Start()
	t.Cleanup(func() {
		pl.Close()
		if m := h.sink.view().misuse; len(m) > 0 {
			t.Errorf("sink misused: %v", m)
		}
		if t.Failed() {
			t.Logf("puller log:\n%s", h.logs.String())
		}
	})
	return h
}

// waitFor polls cond until it holds or timeout passes, and then fails
// with the last status.
func (h *harness) waitFor(t *testing.T, timeout time.Duration, what string, cond func(Status) bool) Status {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := h.Status()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; status %+v, sink %+v", what, timeout, st, h.sink.view())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) waitLive(t *testing.T, timeout time.Duration) Status {
	t.Helper()
	return h.waitFor(t, timeout, "live", func(s Status) bool { return s.State == StateLive })
}

func (h *harness) waitOffline(t *testing.T, timeout time.Duration, reasons ...string) Status {
	t.Helper()
	return h.waitFor(t, timeout, fmt.Sprintf("offline %v", reasons), func(s Status) bool {
		return s.State == StateOffline && slices.Contains(reasons, s.Reason)
	})
}

// waitSink polls the sink until cond holds.
func (h *harness) waitSink(t *testing.T, timeout time.Duration, what string, cond func(sinkView) bool) sinkView {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v := h.sink.view()
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; sink %+v, status %+v", what, timeout, v, h.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func nalTypes(codec string, params [][]byte) []int {
	var out []int
	for _, p := range params {
		switch {
		case len(p) == 0:
			out = append(out, -1)
		case codec == "H265":
			out = append(out, int(p[0]>>1)&0x3f)
		default:
			out = append(out, int(p[0]&0x1f))
		}
	}
	return out
}

// H.264 pulled over each transport: live with the codec, parameter sets
// from the SDP, a keyframe, and figures that match the 25 fps source.
func TestPullsH264(t *testing.T) {
	cam := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{Size: "320x180"})
	for _, tt := range []struct {
		transport, want string
	}{
		{"tcp", "tcp"},
		{"udp", "udp"},
		{"auto", "udp"},
	} {
		t.Run(tt.transport, func(t *testing.T) {
			h := startPuller(t, Params{URL: cam.URL, Transport: tt.transport})
			st := h.waitLive(t, 10*time.Second)
			if st.Codec != "H264" || st.Transport != tt.want || st.Reason != "" {
				t.Errorf("live status %+v, want codec H264 over %s", st, tt.want)
			}
			v := h.waitSink(t, 6*time.Second, "keyframe", func(v sinkView) bool { return v.keyframe })
			if v.codec != "H264" || v.starts != 1 {
				t.Errorf("sink started %d times with %q", v.starts, v.codec)
			}
			if got := nalTypes("H264", v.params); !slices.Equal(got, []int{7, 8}) {
				t.Errorf("parameter sets of NAL types %v, want SPS (7), PPS (8)", got)
			}
			st = h.waitFor(t, 8*time.Second, "fps near 25", func(s Status) bool { return s.FPS >= 22 && s.FPS <= 28 })
			if st.BitrateKbps <= 0 || time.Since(st.LastFrame) > time.Second {
				t.Errorf("bitrate %.1f kbit/s, last frame %s ago", st.BitrateKbps, time.Since(st.LastFrame))
			}
			h.Close()
			if v := h.sink.view(); v.stops != 1 || v.active {
				t.Errorf("after Close the sink was stopped %d times", v.stops)
			}
			if st := h.Status(); st.State != StateOffline || st.Reason != ReasonClosed || st.FPS != 0 {
				t.Errorf("after Close: %+v", st)
			}
		})
	}
}

func TestPullsH265(t *testing.T) {
	cam := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{Codec: "h265", Size: "320x180"})
	h := startPuller(t, Params{URL: cam.URL, Transport: "tcp"})
	if st := h.waitLive(t, 10*time.Second); st.Codec != "H265" {
		t.Fatalf("codec %q, want H265", st.Codec)
	}
	v := h.waitSink(t, 6*time.Second, "keyframe", func(v sinkView) bool { return v.keyframe })
	if got := nalTypes("H265", v.params); !slices.Equal(got, []int{32, 33, 34}) {
		t.Errorf("parameter sets of NAL types %v, want VPS (32), SPS (33), PPS (34)", got)
	}
}

// What the camera says no to, and what it does not serve: each is offline
// with its reason, and retried.
func TestOfflineReasons(t *testing.T) {
	t.Parallel()
	const pass, wrong = "Zq9-camera-secret", "Wr0ng-guess-77"
	secured := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{Size: "160x90", User: "admin", Password: pass})
	plain := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{Size: "160x90"})
	mjpeg := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{Codec: "mjpeg", Size: "160x96", FPS: 10})
	audio := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{Codec: "audio"})
	tests := []struct {
		name, url, reason, detail string
	}{
		{"wrong password", secured.CredentialURL("admin", wrong), ReasonUnauthorized, "refused the user name or password"},
		{"no credentials", secured.URL, ReasonUnauthorized, "has none"},
		{"unknown path", plain.URL + "-nope", ReasonNotFound, "404"},
		{"mjpeg", mjpeg.URL, ReasonUnsupportedCodec, "M-JPEG"},
		{"audio only", audio.URL, ReasonNoVideo, "audio"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := startPuller(t, Params{URL: tt.url, BackoffMin: 100 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
			st := h.waitOffline(t, 10*time.Second, tt.reason)
			if !strings.Contains(st.Detail, tt.detail) || st.NextRetry.IsZero() {
				t.Errorf("status %+v, want detail with %q and a next retry", st, tt.detail)
			}
			// Retried: the reason comes again on a later attempt.
			deadline := time.Now().Add(5 * time.Second)
			for len(h.statuses.offline()) < 3 {
				if time.Now().After(deadline) {
					t.Fatalf("not retried: %+v", h.statuses.offline())
				}
				time.Sleep(20 * time.Millisecond)
			}
			for _, s := range h.statuses.offline() {
				if s.Reason != tt.reason {
					t.Errorf("offline as %q (%s), want %q", s.Reason, s.Detail, tt.reason)
				}
			}
			if v := h.sink.view(); v.starts != 0 {
				t.Errorf("sink started %d times", v.starts)
			}
			checkNoSecret(t, h, pass, wrong)
		})
	}
}

// checkNoSecret fails if a secret shows in the puller's log or statuses.
func checkNoSecret(t *testing.T, h *harness, secrets ...string) {
	t.Helper()
	h.statuses.mu.Lock()
	reported, err := json.Marshal(append(h.statuses.all, h.Status()))
	h.statuses.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	logs := h.logs.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds the password %q:\n%s", s, logs)
		}
		if strings.Contains(string(reported), s) {
			t.Errorf("a status holds the password %q: %s", s, reported)
		}
	}
}

// The right credentials play, in digest and in basic; the password shows
// nowhere, though the log names the camera.
func TestRightCredentialsPlay(t *testing.T) {
	const pass = "Zq9-camera-secret/@:"
	for _, basic := range []bool{false, true} {
		name := map[bool]string{false: "digest", true: "basic"}[basic]
		t.Run(name, func(t *testing.T) {
			pw := pass
			if basic {
				pw = strings.TrimSuffix(pass, ":") // gortsplib's server cannot read ':' in a basic password
			}
			cam := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{Size: "160x90", User: "admin", Password: pw, BasicAuth: basic})
			h := startPuller(t, Params{URL: cam.CredentialURL("admin", pw), Transport: "tcp"})
			h.waitLive(t, 10*time.Second)
			h.Close()
			checkNoSecret(t, h, pw, strings.ReplaceAll(pw, "@", "%40"))
			if !strings.Contains(h.logs.String(), "admin:***@") {
				t.Errorf("the log does not name the camera by its redacted URL:\n%s", h.logs.String())
			}
		})
	}
}

// Nothing listens: refused, retried after about 1 s, then 2 s; a camera
// that appears there later is pulled.
func TestBackoffAndLateCamera(t *testing.T) {
	t.Parallel()
	addr, release := testpeers.ReserveAddr(t)
	h := startPuller(t, Params{URL: "rtsp://" + addr + "/cam", Transport: "tcp"})
	var offline []Status
	deadline := time.Now().Add(10 * time.Second)
	for offline = h.statuses.offline(); len(offline) < 2; offline = h.statuses.offline() {
		if time.Now().After(deadline) {
			t.Fatalf("not two failures within 10 s: %+v", offline)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i, want := range []time.Duration{time.Second, 2 * time.Second} {
		s := offline[i]
		wait := s.NextRetry.Sub(s.Since)
		if s.Reason != ReasonRefused || wait < want*9/10 || wait > want*11/10 { // ±10 % jitter
			t.Errorf("failure %d: %s (%s), retry in %s; want refused, retry in about %s", i+1, s.Reason, s.Detail, wait, want)
		}
	}
	if gap := offline[1].Since.Sub(offline[0].Since); gap < time.Second {
		t.Errorf("second attempt %s after the first, before its retry time", gap)
	}

	release()
	testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{Size: "160x90", Addr: addr})
	h.waitLive(t, 20*time.Second)
}

// The camera drops (its stream closed, or it goes silent): offline, the
// sink stopped; it comes back: live again, the sink started again.
func TestSourceDiesAndReturns(t *testing.T) {
	for _, tt := range []struct {
		name, transport string
		silent          bool
		reasons         []string
	}{
		{"closed/tcp", "tcp", false, []string{ReasonStreamEnded, ReasonTimeout}},
		{"closed/udp", "udp", false, []string{ReasonStreamEnded, ReasonTimeout}},
		{"silent/tcp", "tcp", true, []string{ReasonTimeout}},
		{"silent/udp", "udp", true, []string{ReasonTimeout}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cam := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{Size: "160x90"})
			h := startPuller(t, Params{URL: cam.URL, Transport: tt.transport, ReadTimeout: 2 * time.Second,
				BackoffMin: 200 * time.Millisecond, BackoffMax: 400 * time.Millisecond})
			h.waitLive(t, 10*time.Second)
			h.waitSink(t, 5*time.Second, "packets", func(v sinkView) bool { return v.packets > 0 })

			if tt.silent {
				cam.Freeze()
			} else {
				cam.Stop()
			}
			st := h.waitOffline(t, 8*time.Second, tt.reasons...)
			if v := h.sink.view(); v.stops != 1 || v.active {
				t.Errorf("sink: %+v, want stopped once", v)
			}
			if st.NextRetry.Before(st.Since) {
				t.Errorf("offline %+v without a next retry", st)
			}

			if tt.silent {
				cam.Thaw()
			} else {
				cam.Start()
			}
			h.waitLive(t, 15*time.Second)
			if v := h.waitSink(t, 5*time.Second, "packets", func(v sinkView) bool { return v.active }); v.starts != 2 || v.stops != 1 {
				t.Errorf("sink started %d, stopped %d times; want 2, 1", v.starts, v.stops)
			}
		})
	}
}

// Cameras that fail, fast and often, do not touch one that plays.
func TestFailureIsolated(t *testing.T) {
	cam := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{Size: "160x90", User: "admin", Password: "right"})
	good := startPuller(t, Params{URL: cam.CredentialURL("admin", "right"), Transport: "tcp"})
	good.waitLive(t, 10*time.Second)
	fast := Params{BackoffMin: 20 * time.Millisecond, BackoffMax: 20 * time.Millisecond}
	fast.URL = cam.CredentialURL("admin", "wrong")
	bad := startPuller(t, fast)
	refusing, _ := testpeers.ReserveAddr(t)
	fast.URL = "rtsp://" + refusing + "/cam"
	refused := startPuller(t, fast)
	for _, h := range []*harness{bad, refused} {
		deadline := time.Now().Add(5 * time.Second)
		for len(h.statuses.offline()) < 20 {
			if time.Now().After(deadline) {
				t.Fatalf("only %d failures in 5 s", len(h.statuses.offline()))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	st := good.waitFor(t, 5*time.Second, "fps", func(s Status) bool { return s.FPS > 0 })
	if st.State != StateLive || len(good.statuses.offline()) != 0 || good.sink.view().starts != 1 {
		t.Errorf("the good camera: %+v, %d times offline", st, len(good.statuses.offline()))
	}
}

// Close returns promptly at every step: mid-connect (the camera never
// answers), while waiting to retry, and while live.
func TestClosePromptly(t *testing.T) {
	t.Parallel()
	silent := silentServer(t)
	cam := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{Size: "160x90"})
	refusing, _ := testpeers.ReserveAddr(t)
	tests := []struct {
		name  string
		url   string
		ready func(*testing.T, *harness)
	}{
		{"connecting", "rtsp://" + silent.addr + "/cam", func(t *testing.T, h *harness) {
			silent.waitConnected(t)
			if st := h.Status(); st.State != StateConnecting {
				t.Fatalf("state %s, want connecting", st.State)
			}
		}},
		{"waiting to retry", "rtsp://" + refusing + "/cam", func(t *testing.T, h *harness) {
			h.waitOffline(t, 5*time.Second, ReasonRefused)
		}},
		{"live", cam.URL, func(t *testing.T, h *harness) {
			h.waitLive(t, 10*time.Second)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startPuller(t, Params{URL: tt.url, Transport: "tcp"})
			tt.ready(t, h)
			start := time.Now()
			h.Close()
			if d := time.Since(start); d > time.Second {
				t.Errorf("Close took %s", d)
			}
			v := h.sink.view()
			if v.starts != v.stops {
				t.Errorf("sink started %d, stopped %d times", v.starts, v.stops)
			}
			n := len(h.statuses.offline())
			h.Close() // again: no effect
			if st := h.Status(); st.State != StateOffline || st.Reason != ReasonClosed || len(h.statuses.offline()) != n {
				t.Errorf("after Close: %+v", st)
			}
		})
	}
}

// silent accepts RTSP connections and never answers, as a hung camera.
type silent struct {
	addr      string
	connected chan struct{}
}

func silentServer(t *testing.T) *silent {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silent{addr: l.Addr().String(), connected: make(chan struct{}, 16)}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case s.connected <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return s
}

func (s *silent) waitConnected(t *testing.T) {
	t.Helper()
	select {
	case <-s.connected:
	case <-time.After(5 * time.Second):
		t.Fatal("the puller did not connect")
	}
}

func TestNewValidates(t *testing.T) {
	sink := &recSink{}
	tests := []struct {
		name string
		p    Params
		want error
	}{
		{"no URL", Params{Sink: sink}, ErrInvalidURL},
		{"http", Params{URL: "http://cam/live", Sink: sink}, ErrInvalidURL},
		{"no host", Params{URL: "rtsp:///live", Sink: sink}, ErrInvalidURL},
		{"'@' after the host", Params{URL: "rtsp://admin:pa/ss@cam/live", Sink: sink}, ErrInvalidURL},
		{"transport", Params{URL: "rtsp://cam/live", Transport: "quic", Sink: sink}, ErrInvalidTransport},
		{"no sink", Params{URL: "rtsp://cam/live"}, ErrInvalidParams},
		{"negative timeout", Params{URL: "rtsp://cam/live", Sink: sink, ReadTimeout: -1}, ErrInvalidParams},
		{"max below min", Params{URL: "rtsp://cam/live", Sink: sink, BackoffMin: 5 * time.Second, BackoffMax: time.Second}, ErrInvalidParams},
		{"fine", Params{URL: "rtsps://admin:x@cam:322/live", Transport: "udp", Sink: sink}, nil},
		{"auto", Params{URL: "rtsp://cam/live", Transport: "auto", Sink: sink}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(tt.p)
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("New: %v, want %v", err, tt.want)
			}
			var ce *errclass.Error
			if err != nil && (!errors.As(err, &ce) || ce.Kind != errclass.Invalid || ce.Field == "") {
				t.Errorf("error %#v is not an Invalid errclass error naming its field", err)
			}
			if err != nil && strings.Contains(err.Error(), "pa/ss") {
				t.Errorf("error repeats the URL: %v", err)
			}
			if p != nil {
				p.Close() // never started: returns at once
			}
		})
	}
}

// The packet path allocates nothing once live.
func TestPacketPathAllocatesNothing(t *testing.T) {
	p, err := New(Params{URL: "rtsp://cam/live", Sink: nopSink{}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s := &session{p: p, codec: "H264"}
	pkt := &rtp.Packet{Header: rtp.Header{Marker: true}, Payload: make([]byte, 1200)}
	s.onRTP(pkt) // goes live: the one call that allocates
	if n := testing.AllocsPerRun(1000, func() { s.onRTP(pkt) }); n != 0 {
		t.Errorf("%v allocations per packet", n)
	}
	if st := p.Status(); st.State != StateLive || st.LastFrame.IsZero() {
		t.Errorf("status %+v", st)
	}
}

type nopSink struct{}

func (nopSink) Start(string, [][]byte) {}
func (nopSink) WriteRTP(*rtp.Packet)   {}
func (nopSink) Stop()                  {}

func BenchmarkPacketPath(b *testing.B) {
	p, err := New(Params{URL: "rtsp://cam/live", Sink: nopSink{}})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	s := &session{p: p, codec: "H264"}
	pkt := &rtp.Packet{Header: rtp.Header{Marker: true}, Payload: make([]byte, 1200)}
	b.ReportAllocs()
	for b.Loop() {
		s.onRTP(pkt)
	}
}

func TestRateWindow(t *testing.T) {
	var w rateWindow
	t0 := time.Unix(1000, 0)
	w.reset(sample{at: t0})
	if fps, _ := w.rates(sample{at: t0.Add(100 * time.Millisecond), frames: 5}); fps != 0 {
		t.Errorf("rate over 100 ms: %v, want none yet", fps)
	}
	for i := 1; i <= 8; i++ {
		w.push(sample{at: t0.Add(time.Duration(i) * time.Second), frames: uint64(25 * i), bytes: uint64(50_000 * i)})
	}
	// The window holds the last five samples: from t0+4s.
	fps, kbps := w.rates(sample{at: t0.Add(9 * time.Second), frames: 225, bytes: 450_000})
	if fps != 25 || kbps != 400 {
		t.Errorf("rates %v fps, %v kbit/s; want 25, 400", fps, kbps)
	}
}
