package testpeers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

// RTSPCamera is a camera stand-in: an RTSP server (gortsplib) into which
// ffmpeg publishes a real H.264 or H.265 test pattern, and from which any
// RTSP client can pull, over TCP or UDP, as from an IP camera.
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
// path "cam", 640x360 at 25 fps, a keyframe every 50 frames, H.264.
type RTSPOptions struct {
	Path  string
	Size  string
	FPS   int
	GOP   int
	Codec string // "h264" or "h265"
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
	rtpPort := freeUDPPair(t)
	h := &relay{}
	srv := &gortsplib.Server{
		Handler:        h,
		RTSPAddress:    FreeAddr(t),
		UDPRTPAddress:  "127.0.0.1:" + strconv.Itoa(rtpPort),
		UDPRTCPAddress: "127.0.0.1:" + strconv.Itoa(rtpPort+1),
	}
	h.server = srv
	if err := srv.Start(); err != nil {
		t.Fatalf("rtsp server: %v", err)
	}
	c := &RTSPCamera{URL: "rtsp://" + srv.RTSPAddress + "/" + opts.Path, t: t, opts: opts, srv: srv, h: h, bin: bin}
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
	encoder := []string{"-c:v", "libx264", "-profile:v", "baseline", "-tune", "zerolatency"}
	if c.opts.Codec == "h265" {
		encoder = []string{"-c:v", "libx265", "-x265-params", "log-level=error"}
	}
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-re",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc=size=%s:rate=%d", c.opts.Size, c.opts.FPS)}
	args = append(args, encoder...)
	args = append(args, "-pix_fmt", "yuv420p", "-preset", "ultrafast",
		"-g", strconv.Itoa(c.opts.GOP), "-keyint_min", strconv.Itoa(c.opts.GOP), "-sc_threshold", "0",
		"-f", "rtsp", "-rtsp_transport", "tcp", c.URL)
	before := c.h.packetCount()
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

// Stop ends the publisher, as a camera that drops off the network.
func (c *RTSPCamera) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc != nil {
		c.proc.stop(5 * time.Second)
	}
	c.h.closeStream()
}

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

// relay is a one-path RTSP server: one publisher, any number of readers.
type relay struct {
	server *gortsplib.Server

	mu        sync.RWMutex
	stream    *gortsplib.ServerStream
	publisher *gortsplib.ServerSession
	packets   int64
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

func (r *relay) OnDescribe(*gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
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
		if stream != nil {
			_ = stream.WritePacketRTP(medi, pkt)
		}
	})
	return &base.Response{StatusCode: base.StatusOK}, nil
}
