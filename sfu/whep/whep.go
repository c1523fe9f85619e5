// Package whep plays a source to browsers over WebRTC by WHEP (the
// WebRTC-HTTP Egress Protocol, RFC 9725 style): an SDP offer in, an answer
// out, one peer connection per viewer on the engine's shared ICE ports. A
// viewer that leaves without saying so is dropped when its ICE times out.
package whep

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/lookout-cc/lookout/sfu/source"
)

// PeerMaker makes peer connections (sfu/rtc's Engine).
type PeerMaker interface {
	NewPeerConnection() (*webrtc.PeerConnection, error)
}

// Errors of the WHEP server.
var (
	// ErrBadOffer: the offer is not an SDP offer this server can answer.
	ErrBadOffer = errors.New("bad offer")
	// ErrNoCodec: the offer has no video codec the camera sends.
	ErrNoCodec = errors.New("the offer has no video codec the camera sends")
	// ErrSessionNotFound: no such session.
	ErrSessionNotFound = errors.New("no such session")
	// ErrCodecMismatch: the new source sends another codec than the one
	// the session negotiated; the viewer needs a new offer for it.
	ErrCodecMismatch = errors.New("the camera sends another codec than the session plays")
)

// Params configure the server.
type Params struct {
	Peers PeerMaker
	Log   *slog.Logger
	// GatherTimeout bounds waiting for the answer's ICE candidates.
	GatherTimeout time.Duration
	// ConnectTimeout is how long a session may take to connect.
	ConnectTimeout time.Duration
}

// Server holds the WHEP sessions.
//
// Lifecycle: New, then Offer and Hangup at any time; Close ends every
// session.
type Server struct {
	p        Params
	mu       sync.Mutex
	sessions map[string]*Session
	closed   bool
	wg       sync.WaitGroup
}

// New makes a server.
func New(p Params) *Server {
	if p.GatherTimeout == 0 {
		p.GatherTimeout = 5 * time.Second
	}
	if p.ConnectTimeout == 0 {
		p.ConnectTimeout = 30 * time.Second
	}
	return &Server{p: p, sessions: map[string]*Session{}}
}

// Session is one viewer's peer connection.
type Session struct {
	ID string
	// Owner is who opened it (a user id), for the API's checks.
	Owner   string
	Created time.Time

	srv    *Server
	codec  string // the negotiated video codec (source.H264, source.H265)
	camera string // under mu: SwitchCamera changes it
	// Under mu: the wall tile the session plays, when its viewer said
	// (SetTile), and the camera stream it plays (SetStream).
	wall    string
	tile    int
	stream  string
	src     *source.Source
	pc      *webrtc.PeerConnection
	track   *webrtc.TrackLocalStaticRTP
	mu      sync.Mutex
	viewer  *source.Viewer
	closed  bool
	done    chan struct{}
	onClose func()
	// switchMu orders Switch and the viewer's start (pion calls that from
	// a goroutine of its own); it is never held by close.
	switchMu sync.Mutex

	// The session's own numbering, so that switching between a camera's
	// streams (main, sub) leaves the browser one continuous stream. Used
	// by one viewer goroutine at a time.
	seq     uint16
	lastTS  uint32
	tsOff   uint32
	started bool
	rebase  bool
}

func newSessionID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// mimeOf is the WebRTC codec of a source's codec.
func mimeOf(codec string) string {
	switch codec {
	case source.H265:
		return webrtc.MimeTypeH265
	case source.VP8:
		return webrtc.MimeTypeVP8
	}
	return webrtc.MimeTypeH264
}

// offers says whether an offer has a video media that may receive the
// codec (by its rtpmap name).
func offers(d *sdp.SessionDescription, codec string) bool {
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media != "video" {
			continue
		}
		for _, a := range m.Attributes {
			if a.Key == "rtpmap" && strings.Contains(strings.ToUpper(a.Value), " "+strings.ToUpper(codec)+"/90000") {
				return true
			}
		}
	}
	return false
}

// Offer answers a viewer's offer for src: the answer SDP (with every ICE
// candidate, as WHEP has no trickle here) and the new session. The viewer
// starts getting video (the cached keyframe first) once it is connected.
// onClose (if not nil) is called once when the session ends, however it
// ends; not when Offer fails.
func (s *Server) Offer(camera, owner string, src *source.Source, offer string, onClose func()) (string, *Session, error) {
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(offer); err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	codec := src.Codec()
	if codec == "" {
		codec = source.H264 // not seen yet: what nearly every camera sends
	}
	if !offers(&parsed, strings.TrimPrefix(mimeOf(codec), "video/")) {
		return "", nil, ErrNoCodec
	}
	pc, err := s.p.Peers.NewPeerConnection()
	if err != nil {
		return "", nil, err
	}
	sess := &Session{ID: newSessionID(), camera: camera, codec: codec, Owner: owner, Created: time.Now(), srv: s, src: src, pc: pc, done: make(chan struct{}), onClose: onClose}
	fail := func(err error) (string, *Session, error) {
		_ = pc.Close()
		return "", nil, err
	}
	fmtp := ""
	if codec == source.H264 {
		fmtp = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
	}
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: mimeOf(codec), ClockRate: 90000, SDPFmtpLine: fmtp}, "video", "lookout-"+camera)
	if err != nil {
		return fail(err)
	}
	sender, err := pc.AddTrack(track)
	if err != nil {
		return fail(err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(fmt.Errorf("%w: %v", ErrBadOffer, err))
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(fmt.Errorf("%w: %v", ErrBadOffer, err))
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail(fmt.Errorf("%w: %v", ErrBadOffer, err))
	}
	select {
	case <-gathered:
	case <-time.After(s.p.GatherTimeout):
		return fail(errors.New("ICE gathering did not complete"))
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fail(errors.New("whep server closed"))
	}
	if s.p.Log != nil {
		s.p.Log.Info("whep session opened", "camera", camera, "session", sess.ID, "user", owner, "codec", codec)
	}
	s.sessions[sess.ID] = sess
	s.wg.Add(1)
	s.mu.Unlock()

	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			sess.startViewer(track)
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			// ICE timed out (a viewer gone without DELETE), or closed.
			go sess.close()
		}
	})
	go sess.readRTCP(sender)
	// A viewer whose ICE never connects (its candidates unreachable, or
	// it went away before it did) does not linger.
	time.AfterFunc(s.p.ConnectTimeout, func() {
		if st := pc.ConnectionState(); st != webrtc.PeerConnectionStateConnected {
			sess.close()
		}
	})
	return pc.LocalDescription().SDP, sess, nil
}

// startViewer adds the session as a viewer of its source: the cached
// keyframe at once, then the live packets.
func (sess *Session) startViewer(track *webrtc.TrackLocalStaticRTP) {
	sess.switchMu.Lock() // not while a switch is under way
	defer sess.switchMu.Unlock()
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.closed || sess.viewer != nil {
		return
	}
	sess.track = track
	v, err := sess.src.AddViewer(sess.write)
	if err != nil {
		sess.srv.p.Log.Warn("whep viewer not started", "camera", sess.camera, "err", err)
		go sess.close()
		return
	}
	sess.setViewer(v)
}

// setViewer makes v the session's viewer; sess.mu held. Should v end by
// itself (the camera removed, or its stream gone, or a write failed),
// the session ends too, rather than stay connected with a frozen picture.
func (sess *Session) setViewer(v *source.Viewer) {
	sess.viewer = v
	go func() {
		<-v.Done()
		sess.mu.Lock()
		ended := sess.viewer == v && !sess.closed // not replaced by a switch, nor closed already
		sess.mu.Unlock()
		if ended {
			sess.close()
		}
	}()
}

// write sends one packet to the browser with the session's sequence
// numbers, and timestamps that run on across a switch of streams.
func (sess *Session) write(p *rtp.Packet) error {
	if sess.rebase {
		sess.tsOff = sess.lastTS + 3000 - p.Timestamp // a frame's time after the last one sent
		sess.rebase = false
	}
	p.Timestamp += sess.tsOff
	p.SequenceNumber = sess.seq
	sess.seq++
	sess.lastTS, sess.started = p.Timestamp, true
	return sess.track.WriteRTP(p)
}

// SetTile notes that the session plays tile index of wall: the server may
// then switch it when the tile changes (TileSessions).
func (sess *Session) SetTile(wall string, index int) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	sess.wall, sess.tile = wall, index
}

// SetStream notes which of its camera's streams the session plays.
func (sess *Session) SetStream(stream string) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	sess.stream = stream
}

// Stream is the camera stream the session plays ("" when not said).
func (sess *Session) Stream() string {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.stream
}

// Plays says whether the session plays src now.
func (sess *Session) Plays(src *source.Source) bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.src == src && !sess.closed
}

// Camera is the camera the session plays.
func (sess *Session) Camera() string {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.camera
}

// Switch moves the session to another source of its camera (the other
// stream) without a new offer: the viewer on the old source ends, one on
// the new source starts from its cached keyframe. release (if not nil) is
// called when the session no longer uses src; the old source's release is
// called now.
//
// A stream of another codec than the session's (H.265 main and H.264 sub
// streams are common) is refused with ErrCodecMismatch, as by
// SwitchCamera.
func (sess *Session) Switch(src *source.Source, release func()) error {
	return sess.SwitchCamera("", src, release)
}

// SwitchCamera moves the session to another camera's source, as Switch
// does: a wall tile given another camera keeps its peer connection, so the
// new picture needs no offer, ICE or DTLS, only the new camera's cached
// keyframe. A source of another codec than the session's is refused with
// ErrCodecMismatch (and release called); a source whose codec is not known
// yet is taken as H.264, as Offer does.
//
// camera "" keeps the session's camera (Switch).
func (sess *Session) SwitchCamera(camera string, src *source.Source, release func()) error {
	codec := src.Codec()
	if codec == "" {
		codec = source.H264
	}
	if codec != sess.codec {
		if release != nil {
			release()
		}
		return ErrCodecMismatch
	}
	return sess.switchTo(camera, src, release)
}

// switchTo is Switch, and when camera is not empty, the session's camera
// changes with the source.
func (sess *Session) switchTo(camera string, src *source.Source, release func()) error {
	// One switch at a time, and none while the viewer starts: each sees
	// the viewer the one before left.
	sess.switchMu.Lock()
	defer sess.switchMu.Unlock()
	sess.mu.Lock()
	if sess.closed {
		sess.mu.Unlock()
		if release != nil {
			release() // the caller acquired src for this session
		}
		return ErrSessionNotFound
	}
	old, oldRelease := sess.viewer, sess.onClose
	sess.viewer = nil
	sess.mu.Unlock()
	if old != nil {
		old.Close() // waits for its goroutine: no write runs after this
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.closed {
		if release != nil {
			release()
		}
		return ErrSessionNotFound
	}
	sess.src, sess.onClose = src, release
	if camera != "" {
		sess.camera = camera
	}
	sess.rebase = sess.started
	if oldRelease != nil {
		oldRelease()
	}
	if sess.track == nil {
		return nil // not connected yet: the new source starts when it is
	}
	v, err := src.AddViewer(sess.write)
	if err != nil {
		return err
	}
	sess.setViewer(v)
	return nil
}

// readRTCP answers the viewer's keyframe requests (PLI, FIR) from the
// source's cache; reading also lets the interceptors (NACK, reports) run.
func (sess *Session) readRTCP(sender *webrtc.RTPSender) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				sess.mu.Lock()
				if v := sess.viewer; v != nil {
					v.RequestKeyframe()
				}
				sess.mu.Unlock()
			}
		}
	}
}

// close ends the session once.
func (sess *Session) close() {
	sess.mu.Lock()
	if sess.closed {
		sess.mu.Unlock()
		<-sess.done
		return
	}
	sess.closed = true
	v := sess.viewer
	sess.mu.Unlock()
	if sess.srv.p.Log != nil {
		sess.srv.p.Log.Info("whep session ended", "camera", sess.Camera(), "session", sess.ID, "user", sess.Owner,
			"lasted", time.Since(sess.Created).Round(time.Second), "connection", sess.pc.ConnectionState().String())
	}
	// The peer connection first: a write blocked on a dead ICE-TCP link
	// ends with it, and then the viewer's goroutine can.
	_ = sess.pc.Close()
	if v != nil {
		v.Close()
	}
	s := sess.srv
	s.mu.Lock()
	delete(s.sessions, sess.ID)
	s.mu.Unlock()
	sess.mu.Lock()
	onClose := sess.onClose
	sess.onClose = nil
	sess.mu.Unlock()
	if onClose != nil {
		onClose()
	}
	close(sess.done)
	s.wg.Done()
}

// Session returns a session.
func (s *Server) Session(id string) (*Session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	return sess, ok
}

// Hangup ends a session (the viewer's DELETE).
func (s *Server) Hangup(id string) error {
	sess, ok := s.Session(id)
	if !ok {
		return ErrSessionNotFound
	}
	sess.close()
	return nil
}

// Sessions is how many sessions are open, per camera.
func (s *Server) Sessions() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, sess := range s.sessions {
		out[sess.Camera()]++
	}
	return out
}

// TileSessions are the sessions that play tile index of wall.
func (s *Server) TileSessions(wall string, index int) []*Session {
	s.mu.Lock()
	all := make([]*Session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		all = append(all, sess)
	}
	s.mu.Unlock()
	var out []*Session
	for _, sess := range all {
		sess.mu.Lock()
		if sess.wall == wall && sess.tile == index && !sess.closed {
			out = append(out, sess)
		}
		sess.mu.Unlock()
	}
	return out
}

// CameraSessions is how many sessions a camera has.
func (s *Server) CameraSessions(camera string) int {
	return s.Sessions()[camera]
}

// Close ends every session and waits for them.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	var all []*Session
	for _, sess := range s.sessions {
		all = append(all, sess)
	}
	s.mu.Unlock()
	for _, sess := range all {
		sess.close()
	}
	s.wg.Wait()
}
