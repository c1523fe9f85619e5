package demo

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

// CameraServer is the demo cameras' RTSP server (RFC 2326, gortsplib): each
// path plays its clip in a loop, for ever, at the clip's frame rate, as an
// IP camera would its live picture. RTP timestamps and sequence numbers run
// on across loops, so a player sees one continuous stream whose keyframes
// come as often as in the clip. Readers take RTP over TCP (interleaved) or
// UDP; there is no authentication and no publishing.
//
// Lifecycle: NewCameraServer, Start once, Close once. Start binds the
// ports and starts one goroutine per path (and gortsplib's own); Close
// stops them all and waits for them, dropping every reader.
type CameraServer struct {
	p      CameraServerParams
	srv    *gortsplib.Server
	h      *cameraHandler
	addr   string // the RTSP listener's, once started
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// CameraServerParams configure a CameraServer.
type CameraServerParams struct {
	// Addr is the RTSP listen address, host:port. An empty one, or port 0,
	// takes a free port (on 127.0.0.1 when the host is empty too). RTP and
	// RTCP over UDP take a free pair of ports on the same host.
	Addr string
	// Streams maps each path, without its leading '/', to the clip played
	// there. Paths are fixed at Start.
	Streams map[string]*Clip
	Log     *slog.Logger
}

// NewCameraServer returns a server that has not started.
func NewCameraServer(p CameraServerParams) *CameraServer {
	if p.Addr == "" {
		p.Addr = "127.0.0.1:0"
	}
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	return &CameraServer{p: p, h: &cameraHandler{}}
}

// Start binds the RTSP port and the UDP pair and starts playing every path.
func (s *CameraServer) Start() error {
	host, _, err := net.SplitHostPort(s.p.Addr)
	if err != nil {
		return fmt.Errorf("demo rtsp address: %w", err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	rtpConn, rtcpConn, err := listenUDPPair(host)
	if err != nil {
		return fmt.Errorf("demo rtsp udp: %w", err)
	}
	rtpAddr, rtcpAddr := rtpConn.LocalAddr().String(), rtcpConn.LocalAddr().String()
	s.srv = &gortsplib.Server{
		Handler:        s.h,
		RTSPAddress:    s.p.Addr,
		UDPRTPAddress:  rtpAddr,
		UDPRTCPAddress: rtcpAddr,
		// The TCP listener is gortsplib's own, on the port asked for; its
		// address is kept, for a port 0.
		Listen: func(network, address string) (net.Listener, error) {
			ln, err := net.Listen(network, address)
			if err == nil {
				s.addr = ln.Addr().String()
			}
			return ln, err
		},
		// The UDP pair is bound already: searching for it here, the ports
		// could be taken between the search and gortsplib's bind.
		ListenPacket: func(network, address string) (net.PacketConn, error) {
			switch address {
			case rtpAddr:
				return rtpConn, nil
			case rtcpAddr:
				return rtcpConn, nil
			}
			return net.ListenPacket(network, address)
		},
	}
	if err := s.srv.Start(); err != nil {
		rtpConn.Close() // gortsplib closes them on some failures; a second Close is harmless
		rtcpConn.Close()
		return fmt.Errorf("demo rtsp: %w", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	streams := make(map[string]*cameraStream, len(s.p.Streams))
	for _, path := range slices.Sorted(maps.Keys(s.p.Streams)) {
		clip := s.p.Streams[path]
		st, err := newCameraStream(s.srv, clip)
		if err != nil {
			for _, st := range streams {
				st.stream.Close()
			}
			cancel()
			s.srv.Close()
			return fmt.Errorf("demo rtsp path %s: %w", path, err)
		}
		streams["/"+strings.TrimPrefix(path, "/")] = st
	}
	s.h.set(streams)
	for _, st := range streams {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			st.run(ctx)
		}()
	}
	s.p.Log.Info("demo cameras serving", "rtsp", s.addr, "udp_rtp", rtpAddr, "paths", len(streams))
	return nil
}

// Close stops playing, drops every reader and closes the ports. It waits
// for every goroutine it started.
func (s *CameraServer) Close() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	s.wg.Wait()
	for _, st := range s.h.set(nil) {
		st.stream.Close()
	}
	s.srv.Close()
}

// Addr is the RTSP listen address, "" before Start.
func (s *CameraServer) Addr() string { return s.addr }

// URL is where a player finds a path, e.g. rtsp://127.0.0.1:40123/bht-dam.
// An unspecified listen host (0.0.0.0, ::) is given as 127.0.0.1.
func (s *CameraServer) URL(path string) string {
	host, port, _ := net.SplitHostPort(s.addr)
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "rtsp://" + net.JoinHostPort(host, port) + "/" + strings.TrimPrefix(path, "/")
}

// listenUDPPair binds an even UDP port for RTP and the next one for RTCP,
// as RTP over UDP wants (RFC 3550, 11).
func listenUDPPair(host string) (*net.UDPConn, *net.UDPConn, error) {
	var lastErr error
	for range 50 {
		probe, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, nil, err
		}
		port := probe.LocalAddr().(*net.UDPAddr).Port
		var rtp, rtcp net.PacketConn
		if port%2 == 0 {
			rtp = probe
			rtcp, lastErr = net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port+1)))
		} else {
			rtcp = probe
			rtp, lastErr = net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port-1)))
		}
		if lastErr == nil {
			return rtp.(*net.UDPConn), rtcp.(*net.UDPConn), nil
		}
		probe.Close()
	}
	return nil, nil, fmt.Errorf("no free pair of UDP ports: %w", lastErr)
}

// cameraStream plays one clip into one gortsplib stream.
type cameraStream struct {
	clip   *Clip
	stream *gortsplib.ServerStream
	media  *description.Media
}

func newCameraStream(srv *gortsplib.Server, clip *Clip) (*cameraStream, error) {
	if clip == nil || len(clip.Frames) == 0 {
		return nil, errNoFrames
	}
	media := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H264{
		PayloadTyp: 96, SPS: clip.SPS, PPS: clip.PPS, PacketizationMode: 1,
	}}}
	st := &gortsplib.ServerStream{Server: srv, Desc: &description.Session{Medias: []*description.Media{media}}}
	if err := st.Initialize(); err != nil {
		return nil, err
	}
	return &cameraStream{clip: clip, stream: st, media: media}, nil
}

// maxLate is how far behind its schedule a stream may fall (the machine
// suspended, the process stopped) before it plays on from now rather than
// sending the missed frames at once.
const maxLate = time.Second

// run sends the clip's frames in a loop, each at its time, until ctx ends.
// Frame n of the stream (counting across loops) has RTP timestamp
// base + n*90000/fps.
func (cs *cameraStream) run(ctx context.Context) {
	frameDur := cs.clip.FrameDuration()
	seq, base := uint16(rand.Uint32()), rand.Uint32() // RFC 3550, 5.1: random initial values
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96}}
	origin := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for n := uint64(0); ; n++ {
		due := origin.Add(time.Duration(n) * frameDur)
		if late := time.Since(due); late > maxLate {
			origin = origin.Add(late)
			due = due.Add(late)
		}
		timer.Reset(time.Until(due))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		f := cs.clip.Frames[n%uint64(len(cs.clip.Frames))]
		pkt.Timestamp = base + uint32(n*90000/uint64(cs.clip.FPS))
		for i, payload := range f.Payloads {
			pkt.SequenceNumber = seq
			pkt.Marker = i == len(f.Payloads)-1
			pkt.Payload = payload
			seq++
			// It fails only once the stream is closed, which is after run.
			_ = cs.stream.WritePacketRTPWithNTP(cs.media, pkt, due)
		}
	}
}

// cameraHandler answers readers from the streams by path.
type cameraHandler struct {
	mu      sync.RWMutex
	streams map[string]*cameraStream // by path with its leading '/'
}

// set replaces the streams and returns the ones it had.
func (h *cameraHandler) set(streams map[string]*cameraStream) map[string]*cameraStream {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.streams
	h.streams = streams
	return old
}

func (h *cameraHandler) lookup(path string) (*base.Response, *gortsplib.ServerStream, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	st := h.streams[path]
	if st == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, st.stream, nil
}

// OnDescribe answers DESCRIBE with the path's stream.
func (h *cameraHandler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return h.lookup(ctx.Path)
}

// OnSetup answers SETUP with the path's stream. (Publishing never gets
// this far: with no OnAnnounce, gortsplib refuses ANNOUNCE.)
func (h *cameraHandler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return h.lookup(ctx.Path)
}

// OnPlay lets a reader play.
func (h *cameraHandler) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}
