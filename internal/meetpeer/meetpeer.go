// Package meetpeer is a meeting participant made of pion peer connections
// that sends real media: VP8 video and Opus audio read from files that
// ffmpeg encoded (MakeMedia), looped, at their own pace. Tests and
// lookout-bench use it where what the SFU forwards or records must be
// decodable (a recording checked with ffprobe); the bench's synthetic
// participants (cmd/lookout-bench/meetclient.go) carry marked packets
// instead, to measure delay.
//
// It speaks the signaling protocol of docs/signaling.md: join (waiting in
// the lobby when the token says so), the publisher offer with its sources,
// the subscriber connection the server offers, trickle ICE both ways.
//
// ArrivalFeedback is the transport-wide congestion control feedback the
// bench's participants and the meeting tests' throttled links make from
// their sockets' arrival times, as a browser's network layer does.
package meetpeer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"github.com/lookout-cc/lookout/sfu/signal"
)

// Media is a VP8 video file (IVF) and an Opus audio file (Ogg).
type Media struct {
	IVF, Ogg string
}

// MakeMedia encodes seconds of a test picture (640x360, 25 fps, a
// keyframe each second) and a tone into dir with ffmpeg.
func MakeMedia(ctx context.Context, dir string, seconds int) (Media, error) {
	m := Media{IVF: filepath.Join(dir, "video.ivf"), Ogg: filepath.Join(dir, "audio.ogg")}
	for _, args := range [][]string{
		{"-f", "lavfi", "-i", "testsrc=size=640x360:rate=25", "-t", fmt.Sprint(seconds), "-c:v", "libvpx", "-deadline", "realtime",
			"-cpu-used", "8", "-b:v", "600k", "-g", "25", "-auto-alt-ref", "0", m.IVF},
		{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", fmt.Sprint(seconds), "-c:a", "libopus", "-b:a", "32k",
			"-frame_duration", "20", "-page_duration", "20000", m.Ogg},
	} {
		cmd := exec.CommandContext(ctx, "ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return Media{}, fmt.Errorf("ffmpeg: %w: %s", err, out)
		}
	}
	return m, nil
}

// Peer is one participant.
type Peer struct {
	ws   *websocket.Conn
	wsMu sync.Mutex
	quit chan struct{}
	done chan struct{}

	mu       sync.Mutex
	msgs     []signal.ServerMessage
	notify   chan struct{}
	pub, sub *webrtc.PeerConnection
	received map[string]*atomic.Int64 // packets by track id
	firstAt  map[string]time.Time     // the first packet's arrival, by track id
	closed   bool
	senders  sync.WaitGroup
}

// Dial connects to the signaling WebSocket at wsURL and sends join with
// token; wait for WaitJoined or WaitLobby then.
func Dial(wsURL, token string) (*Peer, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	ws, _, err := d.Dial(wsURL, nil)
	if err != nil {
		return nil, err
	}
	p := &Peer{ws: ws, quit: make(chan struct{}), done: make(chan struct{}), notify: make(chan struct{}, 1),
		received: map[string]*atomic.Int64{}, firstAt: map[string]time.Time{}}
	go p.read()
	p.send(map[string]any{"type": "join", "token": token})
	return p, nil
}

func (p *Peer) send(v any) {
	b, _ := json.Marshal(v)
	p.wsMu.Lock()
	defer p.wsMu.Unlock()
	_ = p.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_ = p.ws.WriteMessage(websocket.TextMessage, b)
}

func (p *Peer) read() {
	defer close(p.done)
	for {
		_, data, err := p.ws.ReadMessage()
		if err != nil {
			p.keep(signal.ServerMessage{Type: "closed", Message: err.Error()})
			return
		}
		var m signal.ServerMessage
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		switch m.Type {
		case signal.TypeOffer:
			if err := p.answer(m.SDP); err != nil {
				p.keep(signal.ServerMessage{Type: signal.TypeError, Code: "client", Message: "answer: " + err.Error()})
			}
		case signal.TypeAnswer:
			p.mu.Lock()
			pc := p.pub
			p.mu.Unlock()
			if pc != nil {
				_ = pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP})
			}
		case signal.TypeCandidate:
			p.mu.Lock()
			pc := p.pub
			if m.Target == signal.TargetSubscriber {
				pc = p.sub
			}
			p.mu.Unlock()
			if pc != nil {
				_ = pc.AddICECandidate(CandidateInit(m))
			}
		}
		p.keep(m)
	}
}

func (p *Peer) keep(m signal.ServerMessage) {
	p.mu.Lock()
	p.msgs = append(p.msgs, m)
	p.mu.Unlock()
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

// Wait waits until a message matches, up to d; the messages seen so far
// count.
func (p *Peer) Wait(d time.Duration, match func(signal.ServerMessage) bool) (signal.ServerMessage, error) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	seen := 0
	for {
		p.mu.Lock()
		msgs := p.msgs[seen:]
		seen = len(p.msgs)
		p.mu.Unlock()
		for _, m := range msgs {
			if match(m) {
				return m, nil
			}
		}
		select {
		case <-p.notify:
		case <-deadline.C:
			return signal.ServerMessage{}, errors.New("timed out")
		}
	}
}

// Is matches a message type.
func Is(t string) func(signal.ServerMessage) bool {
	return func(m signal.ServerMessage) bool { return m.Type == t }
}

// ErrorCode matches an error of the code.
func ErrorCode(code string) func(signal.ServerMessage) bool {
	return func(m signal.ServerMessage) bool { return m.Type == signal.TypeError && m.Code == code }
}

func newPC() (*webrtc.PeerConnection, error) {
	quiet := logging.NewDefaultLoggerFactory()
	quiet.DefaultLogLevel = logging.LogLevelDisabled
	var se webrtc.SettingEngine
	se.LoggerFactory = quiet
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(string) bool { return true })
	var me webrtc.MediaEngine
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	var ir interceptor.Registry
	if err := webrtc.RegisterDefaultInterceptors(&me, &ir); err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(&me), webrtc.WithInterceptorRegistry(&ir)).
		NewPeerConnection(webrtc.Configuration{})
}

func (p *Peer) candidates(pc *webrtc.PeerConnection, target string) {
	pc.OnICECandidate(func(ic *webrtc.ICECandidate) {
		if m := CandidateMessage(target, ic); m != nil {
			p.send(m)
		}
	})
}

// CandidateMessage is the client's candidate message for a trickled ICE
// candidate of the target connection (publisher or subscriber); nil for
// pion's end of candidates, which the protocol does not need.
func CandidateMessage(target string, ic *webrtc.ICECandidate) map[string]any {
	if ic == nil {
		return nil
	}
	j := ic.ToJSON()
	m := map[string]any{"type": "candidate", "target": target, "candidate": j.Candidate}
	if j.SDPMid != nil {
		m["sdp_mid"] = *j.SDPMid
	}
	if j.SDPMLineIndex != nil {
		m["sdp_mline_index"] = *j.SDPMLineIndex
	}
	return m
}

// CandidateInit is the server's candidate message as pion adds it.
func CandidateInit(m signal.ServerMessage) webrtc.ICECandidateInit {
	init := webrtc.ICECandidateInit{Candidate: m.Candidate}
	if m.SDPMid != "" {
		init.SDPMid = &m.SDPMid
	}
	return init
}

// answer answers the subscriber connection's offer, making it at the
// first.
func (p *Peer) answer(offer string) error {
	p.mu.Lock()
	pc := p.sub
	p.mu.Unlock()
	if pc == nil {
		var err error
		if pc, err = newPC(); err != nil {
			return err
		}
		p.candidates(pc, signal.TargetSubscriber)
		pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			n := &atomic.Int64{}
			p.mu.Lock()
			p.received[tr.ID()] = n
			p.mu.Unlock()
			buf := make([]byte, 1500)
			for {
				if _, _, err := tr.Read(buf); err != nil {
					return
				}
				if n.Add(1) == 1 {
					p.mu.Lock()
					p.firstAt[tr.ID()] = time.Now()
					p.mu.Unlock()
				}
			}
		})
		p.mu.Lock()
		p.sub = pc
		p.mu.Unlock()
	}
	ans, err := Answer(pc, offer)
	if err != nil {
		return err
	}
	p.send(map[string]any{"type": "answer", "sdp": ans})
	return nil
}

// Answer applies the server's offer to pc and returns pc's answer, set as
// its local description.
func Answer(pc *webrtc.PeerConnection, offer string) (string, error) {
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", err
	}
	ans, err := pc.CreateAnswer(nil)
	if err == nil {
		err = pc.SetLocalDescription(ans)
	}
	return ans.SDP, err
}

// Publish sends the media (camera and microphone), looped, until Close.
func (p *Peer) Publish(m Media) error {
	pc, err := newPC()
	if err != nil {
		return err
	}
	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "camera", "peer")
	if err != nil {
		return err
	}
	audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "microphone", "peer")
	if err != nil {
		return err
	}
	// A keyframe request skips the video to the file's next keyframe,
	// sent at once, as an encoder answers one.
	keyframe := make(chan struct{}, 1)
	for _, t := range []webrtc.TrackLocal{video, audio} {
		s, err := pc.AddTrack(t)
		if err != nil {
			return err
		}
		go func() {
			for {
				pkts, _, err := s.ReadRTCP()
				if err != nil {
					return
				}
				for _, pkt := range pkts {
					switch pkt.(type) {
					case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
						select {
						case keyframe <- struct{}{}:
						default:
						}
					}
				}
			}
		}()
	}
	p.candidates(pc, signal.TargetPublisher)
	p.mu.Lock()
	p.pub = pc
	p.mu.Unlock()
	offer, err := pc.CreateOffer(nil)
	if err == nil {
		err = pc.SetLocalDescription(offer)
	}
	if err != nil {
		return err
	}
	p.send(map[string]any{"type": "offer", "sdp": offer.SDP, "tracks": map[string]string{"camera": "camera", "microphone": "microphone"}})
	p.senders.Add(2)
	go p.loop(func() error { return sendIVF(m.IVF, video, keyframe, p.quit) })
	go p.loop(func() error { return sendOgg(m.Ogg, audio, p.quit) })
	return nil
}

func (p *Peer) loop(send func() error) {
	defer p.senders.Done()
	for {
		if err := send(); err != nil {
			return
		}
	}
}

var errQuit = errors.New("quit")

// sendIVF sends the file's frames once at their pace, skipping to the
// next keyframe when one is asked for; errQuit on quit.
func sendIVF(path string, t *webrtc.TrackLocalStaticSample, keyframe chan struct{}, quit chan struct{}) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, h, err := ivfreader.NewWith(f)
	if err != nil {
		return err
	}
	frame := time.Duration(float64(h.TimebaseNumerator) / float64(h.TimebaseDenominator) * float64(time.Second))
	tick := time.NewTicker(frame)
	defer tick.Stop()
	skipping := false
	for {
		data, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		// A VP8 keyframe has the frame header's lowest bit clear.
		key := len(data) > 0 && data[0]&1 == 0
		if skipping {
			if !key {
				continue // on to the next keyframe
			}
			skipping = false // which goes at once
		} else {
			select {
			case <-quit:
				return errQuit
			case <-keyframe:
				if !key {
					skipping = true
					continue
				}
			case <-tick.C:
			}
		}
		if err := t.WriteSample(media.Sample{Data: data, Duration: frame}); err != nil {
			return err
		}
	}
}

// sendOgg sends the file's Opus pages once at their pace.
func sendOgg(path string, t *webrtc.TrackLocalStaticSample, quit chan struct{}) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		return err
	}
	const page = 20 * time.Millisecond
	tick := time.NewTicker(page)
	defer tick.Stop()
	var last uint64
	for {
		data, h, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		samples := h.GranulePosition - last
		last = h.GranulePosition
		if samples == 0 || samples > 48000 {
			continue // the headers' pages
		}
		select {
		case <-quit:
			return errQuit
		case <-tick.C:
		}
		if err := t.WriteSample(media.Sample{Data: data, Duration: time.Duration(samples) * time.Second / 48000}); err != nil {
			return err
		}
	}
}

// Received is how many packets came on the received tracks whose id has
// the prefix (the SFU names tracks identity-source-n).
func (p *Peer) Received(prefix string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for id, c := range p.received {
		if len(id) >= len(prefix) && id[:len(prefix)] == prefix {
			n += c.Load()
		}
	}
	return n
}

// FirstPacket is when the first packet of a track with the prefix came,
// zero before.
func (p *Peer) FirstPacket(prefix string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	var first time.Time
	for id, at := range p.firstAt {
		if len(id) >= len(prefix) && id[:len(prefix)] == prefix && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first
}

// WaitReceived waits until n packets of tracks with the prefix came.
func (p *Peer) WaitReceived(prefix string, n int64, d time.Duration) error {
	deadline := time.Now().Add(d)
	for p.Received(prefix) < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d packets of %s", p.Received(prefix), n, prefix)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// Drop ends the peer without a goodbye: its sockets close as a dying
// browser's would.
func (p *Peer) Drop() { p.close(false) }

// Close says goodbye and hangs up.
func (p *Peer) Close() { p.close(true) }

func (p *Peer) close(goodbye bool) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	pub, sub := p.pub, p.sub
	p.mu.Unlock()
	close(p.quit)
	p.senders.Wait()
	if goodbye {
		p.send(map[string]any{"type": "leave"})
	}
	_ = p.ws.Close()
	<-p.done
	if pub != nil {
		_ = pub.Close()
	}
	if sub != nil {
		_ = sub.Close()
	}
}
