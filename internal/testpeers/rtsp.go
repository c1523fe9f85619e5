package testpeers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/auth"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"
)

// RTSPCamera is a camera stand-in: an RTSP server (gortsplib) into which
// ffmpeg publishes a real H.264 or H.265 test pattern (or, for tests of
// what a puller refuses, M-JPEG or audio alone), and from which any RTSP
// client can pull, over TCP or UDP, as from an IP camera. It serves only its
// own path (others get 404) and, when RTSPOptions.User is set, only readers
// that authenticate.
type RTSPCamera struct {
	// URL is what a client pulls, e.g. rtsp://127.0.0.1:40123/cam.
	URL string

	t    testing.TB
	opts RTSPOptions
	srv  *gortsplib.Server
	h    *relay
	bin  string
	mu   sync.Mutex
	proc *process
}

// RTSPOptions describe the published stream. Zero values take defaults:
// path "cam", 640x360 at 25 fps, a keyframe every 50 frames, H.264, a free
// loopback port, no authentication.
type RTSPOptions struct {
	Path string
	Size string
	FPS  int
	GOP  int
	// Codec is "h264", "h265", "mjpeg" (M-JPEG video, RFC 2435) or "audio"
	// (AAC audio and no video at all).
	Codec string
	// Addr is the RTSP listen address (host:port). Set it to start a camera
	// where a client is already looking; empty picks a free loopback port.
	Addr string
	// User and Password, when User is set, are demanded from readers
	// (DESCRIBE and SETUP answer 401 without them); publishing stays open.
	User     string
	Password string
	// BasicAuth asks readers for basic authentication instead of digest
	// (MD5). gortsplib's server cannot read a basic password holding ':'.
	BasicAuth bool
}

func (o *RTSPOptions) defaults() {
	if o.Path == "" {
		o.Path = "cam"
	}
	if o.Size == "" {
		o.Size = "640x360"
	}
	if o.FPS == 0 {
		o.FPS = 25
	}
	if o.GOP == 0 {
		o.GOP = 2 * o.FPS
	}
	if o.Codec == "" {
		o.Codec = "h264"
	}
}

// StartRTSPCamera starts the server and ffmpeg, waits until the stream is
// live, and stops both when the test ends.
func StartRTSPCamera(t testing.TB, opts RTSPOptions) *RTSPCamera {
	t.Helper()
	opts.defaults()
	bin, err := FindBinary("ffmpeg", "LOOKOUT_FFMPEG")
	if err != nil {
		t.Fatal(err)
	}
	switch opts.Codec {
	case "h264", "h265", "mjpeg", "audio":
	default:
		t.Fatalf("RTSPOptions.Codec %q: want h264, h265, mjpeg or audio", opts.Codec)
	}
	h := &relay{path: "/" + strings.TrimPrefix(opts.Path, "/"), user: opts.User, pass: opts.Password}
	var srv *gortsplib.Server
	// The free ports are found before the server binds them: another
	// test's socket may take one in between (the suite runs packages at
	// once), so a bind that finds its port taken tries new ones.
	for attempt := 1; ; attempt++ {
		addr := opts.Addr
		if addr == "" {
			addr = FreeAddr(t)
		}
		rtpPort := freeUDPPair(t)
		srv = &gortsplib.Server{
			Handler:        h,
			RTSPAddress:    addr,
			UDPRTPAddress:  "127.0.0.1:" + strconv.Itoa(rtpPort),
			UDPRTCPAddress: "127.0.0.1:" + strconv.Itoa(rtpPort+1),
			AuthMethods:    []auth.VerifyMethod{auth.VerifyMethodDigestMD5},
		}
		if opts.BasicAuth {
			srv.AuthMethods = []auth.VerifyMethod{auth.VerifyMethodBasic}
		}
		h.server = srv
		err := srv.Start()
		if err == nil {
			break
		}
		inUse := errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")
		if !inUse || attempt == 5 {
			t.Fatalf("rtsp server: %v", err)
		}
	}
	c := &RTSPCamera{URL: "rtsp://" + srv.RTSPAddress + h.path, t: t, opts: opts, srv: srv, h: h, bin: bin}
	t.Cleanup(func() {
		c.Stop()
		srv.Close()
	})
	c.Start()
	return c
}

// Start (re)starts the ffmpeg publisher and waits until packets flow.
func (c *RTSPCamera) Start() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc != nil {
		if ok, _ := c.proc.exited(); !ok {
			return
		}
	}
	before := c.h.packetCount()
	args := append([]string{"-hide_banner", "-loglevel", "error", "-nostdin", "-re"}, c.encoderArgs()...)
	args = append(args, "-f", "rtsp", "-rtsp_transport", "tcp", c.URL)
	p, err := startProcess("ffmpeg", c.bin, args...)
	if err != nil {
		c.t.Fatal(err)
	}
	err = p.waitFor(15*time.Second, func(context.Context) error {
		if c.h.packetCount() > before+10 {
			return nil
		}
		return errors.New("no RTP packets published yet")
	})
	if err != nil {
		p.stop(time.Second)
		c.t.Fatal(err)
	}
	c.proc = p
}

// encoderArgs are ffmpeg's input and encoder arguments for the codec.
func (c *RTSPCamera) encoderArgs() []string {
	video := []string{"-f", "lavfi", "-i", fmt.Sprintf("testsrc=size=%s:rate=%d", c.opts.Size, c.opts.FPS)}
	gop := []string{"-g", strconv.Itoa(c.opts.GOP), "-keyint_min", strconv.Itoa(c.opts.GOP), "-sc_threshold", "0"}
	switch c.opts.Codec {
	case "h265":
		video = append(video, "-c:v", "libx265", "-x265-params", "log-level=error", "-pix_fmt", "yuv420p", "-preset", "ultrafast")
		return append(video, gop...)
	case "mjpeg":
		// RFC 2435 carries only full-range 4:2:0 or 4:2:2 baseline JPEG with
		// the standard Huffman tables.
		return append(video, "-c:v", "mjpeg", "-pix_fmt", "yuvj420p", "-huffman", "default", "-q:v", "8")
	case "audio":
		return []string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-c:a", "aac", "-b:a", "64k"}
	default:
		video = append(video, "-c:v", "libx264", "-profile:v", "baseline", "-tune", "zerolatency", "-pix_fmt", "yuv420p", "-preset", "ultrafast")
		return append(video, gop...)
	}
}

// CredentialURL is URL with the given user name and password in it, each
// percent-encoded as a URL needs.
func (c *RTSPCamera) CredentialURL(user, password string) string {
	u, err := url.Parse(c.URL)
	if err != nil {
		c.t.Fatal(err)
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}

// Stop ends the publisher, as a camera that drops off the network.
func (c *RTSPCamera) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc != nil {
		c.proc.stop(5 * time.Second)
	}
	c.h.closeStream()
}

// Freeze stops passing the publisher's packets to readers while every
// connection stays open, as a camera that hangs or whose network drops
// silently: a reader notices only by its read timeout. Thaw undoes it.
func (c *RTSPCamera) Freeze() { c.h.frozen.Store(true) }

// Thaw passes packets to readers again after Freeze.
func (c *RTSPCamera) Thaw() { c.h.frozen.Store(false) }

// Packets is how many RTP packets the publisher has sent so far.
func (c *RTSPCamera) Packets() int64 { return c.h.packetCount() }

// freeUDPPair finds an even UDP port whose successor is free too, as RTP
// over UDP wants (RTP on the even port, RTCP on the next).
func freeUDPPair(t testing.TB) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		a, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := a.LocalAddr().(*net.UDPAddr).Port
		a.Close()
		if port%2 == 1 {
			port--
		}
		a, err = net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		b, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port+1))
		a.Close()
		if err != nil {
			continue
		}
		b.Close()
		return port
	}
	t.Fatal("no free UDP port pair")
	return 0
}

// relay is a one-path RTSP server: one publisher, any number of readers,
// who must authenticate when user is set.
type relay struct {
	server *gortsplib.Server
	path   string // with its leading '/'
	user   string
	pass   string

	mu        sync.RWMutex
	stream    *gortsplib.ServerStream
	publisher *gortsplib.ServerSession
	packets   int64
	frozen    atomic.Bool
}

func (r *relay) packetCount() int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.packets
}

func (r *relay) closeStream() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stream != nil {
		r.stream.Close()
		r.stream = nil
	}
}

func (r *relay) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stream != nil && ctx.Session == r.publisher {
		r.stream.Close()
		r.stream = nil
	}
}

// admits tells whether a reader's request carries the credentials asked
// for. A wrong answer is a 401 with gortsplib's ErrServerAuth, on which the
// server adds the WWW-Authenticate challenge (no credentials yet) or closes
// the connection (wrong ones).
func (r *relay) admits(conn *gortsplib.ServerConn, req *base.Request) bool {
	return r.user == "" || conn.VerifyCredentials(req, r.user, r.pass)
}

func (r *relay) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if !r.admits(ctx.Conn, ctx.Request) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	if ctx.Path != r.path {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.stream == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, r.stream, nil
}

func (r *relay) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stream != nil {
		r.stream.Close()
		r.publisher.Close()
	}
	r.stream = &gortsplib.ServerStream{Server: r.server, Desc: ctx.Description}
	if err := r.stream.Initialize(); err != nil {
		r.stream = nil
		return &base.Response{StatusCode: base.StatusBadRequest}, err
	}
	r.publisher = ctx.Session
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (r *relay) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return &base.Response{StatusCode: base.StatusOK}, nil, nil
	}
	if !r.admits(ctx.Conn, ctx.Request) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.stream == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, r.stream, nil
}

func (r *relay) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (r *relay) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	ctx.Session.OnPacketRTPAny(func(medi *description.Media, _ format.Format, pkt *rtp.Packet) {
		r.mu.Lock()
		stream := r.stream
		r.packets++
		r.mu.Unlock()
		if stream != nil && !r.frozen.Load() {
			_ = stream.WritePacketRTP(medi, pkt)
		}
	})
	return &base.Response{StatusCode: base.StatusOK}, nil
}
