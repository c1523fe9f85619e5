package meeting

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/lookout-cc/lookout/console/auth"
	"github.com/lookout-cc/lookout/sfu/bwe"
	"github.com/lookout-cc/lookout/sfu/rtc"
	"github.com/lookout-cc/lookout/sfu/signal"
)

// maxEarlyCandidates bounds the candidates kept before an offer;
// maxCandidates those a participant may send in all (a browser sends a
// handful per connection and ICE restart).
const (
	maxEarlyCandidates = 32
	maxCandidates      = 256
)

// audioLevelURI is the client-to-mixer audio level extension (RFC 6464).
const audioLevelURI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

// participant is one identity in a room: its signaling connection, its
// publisher connection (it offers) and its subscriber connection (the
// server offers).
type participant struct {
	room     *Room
	identity string
	name     string
	role     string
	rights   auth.RoomRights
	conn     *conn

	mu        sync.Mutex
	closed    bool
	pub       *webrtc.PeerConnection
	sources   map[string]string // the client's track id -> source, from its offers
	published map[*upTrack]struct{}
	// mutedKinds are the kinds the participant (or a host) muted: their
	// camera and microphone tracks, also ones published later, are not
	// forwarded.
	mutedKinds map[webrtc.RTPCodecType]bool
	// hostMuted are the kinds a host muted, all of their tracks.
	hostMuted map[webrtc.RTPCodecType]bool
	// early are publisher candidates that came before the offer they
	// belong to (a client may send them first): added after it.
	early      []webrtc.ICECandidateInit
	candidates int
	joinedAt   time.Time

	// What enter needs, kept from the join: the join message's id, the
	// host the client reached, when its token expires.
	joinID  string
	host    string
	expires time.Time
	// waiting is set while p waits in the lobby: its messages other than
	// ping and leave are refused. entering is held while a host's
	// admission enters p, so that p's first messages wait for it.
	waiting  atomic.Bool
	entering sync.Mutex

	// bwe estimates the subscriber connection's bandwidth; made with the
	// participant and never replaced, so the forwarding and the RTCP
	// reader use it without a lock (Bind runs under negMu).
	bwe linkEstimator

	// The subscriber connection and its negotiation, under negMu: one
	// offer at a time, a change while one waits makes another after the
	// answer.
	negMu sync.Mutex
	sub   *webrtc.PeerConnection
	// subConnected is set once the subscriber connection first connects:
	// a keyframe asked for before would be sent to no one.
	subConnected atomic.Bool
	// direct sends the subscriber connection's RTP once connected over
	// the shared UDP port (nil: pion does).
	direct atomic.Pointer[rtc.DirectSender]
	// directIn takes the publisher connection's RTP off the UDP port once
	// connected (rtc.DirectReceiver), when the SFU's peers give one.
	directIn       atomic.Pointer[rtc.DirectReceiver]
	chatOut        *webrtc.DataChannel
	awaitingAnswer bool
	pending        bool
	restart        bool
	// subEarly are subscriber candidates that came before the first
	// answer: added with it.
	subEarly []webrtc.ICECandidateInit

	// allocMu guards the allocator's memory and the stats tick's last
	// counts.
	allocMu        sync.Mutex
	alloc          allocState
	lastOutBytes   uint64
	lastInExpected int64
	lastInReceived int64
	// linkMoved is set when the subscriber connection's path changes
	// (ICE restarting, disconnected, connected again): the allocator
	// starts its grace again.
	linkMoved atomic.Bool

	subMu  sync.Mutex
	downMu sync.Mutex
	downs  map[*upTrack]*downTrack
	// requested is the quality this participant asked for per publisher
	// identity (layer messages); high when not said.
	requested map[string]int

	chatMu    sync.Mutex
	chatLimit *bucket

	// Counters, sampled by the room's stats tick.
	nacksIn  atomic.Uint64 // NACKs this participant sent about what it receives
	plisIn   atomic.Uint64 // PLIs and FIRs it sent
	plisSent atomic.Uint64 // keyframe requests the SFU sent it as a publisher
	// nacksSent counts the NACKs the SFU sent it as a publisher, about
	// its media lost on the way (nack.go).
	nacksSent atomic.Uint64
	// rttMicros is the round trip to it, from its receiver reports of
	// what it receives (the stats tick's; 0 unknown): its NACKs' pace.
	rttMicros atomic.Int64
	rtcpBad   atomic.Uint64 // RTCP it sent that did not parse (dropped)
	done      chan struct{}
}

func newParticipant(room *Room, c *auth.JoinClaims, cn *conn) *participant {
	return &participant{
		room: room, identity: c.Subject, name: c.Name, role: c.Role, rights: c.Rights, conn: cn,
		sources: map[string]string{}, published: map[*upTrack]struct{}{},
		downs: map[*upTrack]*downTrack{}, requested: map[string]int{}, done: make(chan struct{}),
		chatLimit: newBucket(2, 10), bwe: bwe.New(linkConfig),
		mutedKinds: map[webrtc.RTPCodecType]bool{}, hostMuted: map[webrtc.RTPCodecType]bool{}, joinedAt: time.Now(),
	}
}

func (p *participant) send(m *signal.ServerMessage) { p.conn.send(m) }

func (p *participant) fail(e *signal.Error, id string) { p.send(signal.ErrorMessage(e, id)) }

func (p *participant) info() signal.Participant {
	out := signal.Participant{Identity: p.identity, Name: p.name, Role: p.role, Tracks: []signal.TrackInfo{}}
	p.mu.Lock()
	defer p.mu.Unlock()
	for u := range p.published {
		out.Tracks = append(out.Tracks, u.info())
	}
	return out
}

func (p *participant) self() *signal.Self {
	var rights []string
	for _, r := range []struct {
		on   bool
		name string
	}{{p.rights.Publish, "publish"}, {p.rights.Subscribe, "subscribe"}, {p.rights.PublishData, "publish_data"}, {p.rights.Admin, "admin"}} {
		if r.on {
			rights = append(rights, r.name)
		}
	}
	return &signal.Self{Identity: p.identity, Name: p.name, Role: p.role, Rights: rights}
}

// Errors told to clients.
var (
	errForbidden = func(field, what string) *signal.Error {
		return &signal.Error{Code: "forbidden", Field: field, Message: what}
	}
	errBadSDP = func(err error) *signal.Error {
		return &signal.Error{Code: "bad_sdp", Field: "sdp", Message: "the description cannot be applied: " + firstLine(err.Error())}
	}
)

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// handle acts on one message of the joined client.
func (p *participant) handle(m signal.ClientMessage) {
	if p.waiting.Load() {
		if m.Type == signal.TypePing {
			p.send(&signal.ServerMessage{Type: signal.TypePong, ID: m.ID})
		} else {
			p.fail(&signal.Error{Code: "in_lobby", Message: "you wait in the lobby until the host admits you"}, m.ID)
		}
		return
	}
	// A barrier: the first messages after an admission wait for its
	// enter to finish.
	p.entering.Lock()
	//lint:ignore SA2001 the empty section is the barrier
	p.entering.Unlock()
	switch m.Type {
	case signal.TypeOffer:
		p.onOffer(m)
	case signal.TypeAnswer:
		p.onAnswer(m)
	case signal.TypeCandidate:
		p.onCandidate(m)
	case signal.TypeRestart:
		p.negMu.Lock()
		p.restart = true
		p.negMu.Unlock()
		p.negotiate()
	case signal.TypeMute:
		p.room.setMuted(p, m.Kind, *m.Muted, "")
	case signal.TypeLayer:
		p.room.requestLayer(p, m)
	case signal.TypeHost:
		p.room.host(p, m)
	case signal.TypeChat:
		p.room.chat(p, m.Text, m.ID)
	case signal.TypePing:
		p.send(&signal.ServerMessage{Type: signal.TypePong, ID: m.ID})
	case signal.TypeJoin:
		p.fail(&signal.Error{Code: "already_joined", Message: "this connection has joined already"}, m.ID)
	}
}

// onOffer answers the publisher connection's offer.
func (p *participant) onOffer(m signal.ClientMessage) {
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(m.SDP); err != nil {
		p.fail(errBadSDP(err), m.ID)
		return
	}
	if !p.rights.Publish && sendsMedia(&parsed) {
		p.fail(errForbidden("sdp", "this participant may not publish audio or video"), m.ID)
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	if m.Tracks != nil {
		// The sources of this offer's tracks; earlier tracks have theirs.
		p.sources = make(map[string]string, len(m.Tracks))
		for id, src := range m.Tracks {
			p.sources[id] = src
		}
	}
	pc := p.pub
	p.mu.Unlock()
	if pc == nil {
		var err error
		if pc, err = p.newPublisher(); err != nil {
			p.room.sfu.log.Warn("meeting publisher connection not made", "room", p.room.id, "identity", p.identity, "err", err)
			p.fail(&signal.Error{Code: "internal", Message: "the media connection could not be made"}, m.ID)
			return
		}
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.SDP}); err != nil {
		p.fail(errBadSDP(err), m.ID)
		return
	}
	p.mu.Lock()
	early := p.early
	p.early = nil
	p.mu.Unlock()
	for _, c := range early {
		_ = pc.AddICECandidate(c)
	}
	answer, err := pc.CreateAnswer(nil)
	if err == nil {
		err = pc.SetLocalDescription(answer)
	}
	if err != nil {
		p.fail(errBadSDP(err), m.ID)
		// Back to where the last good offer left it, so the client can
		// offer again.
		_ = pc.SetLocalDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeRollback})
		return
	}
	p.send(&signal.ServerMessage{Type: "answer", ID: m.ID, SDP: pc.LocalDescription().SDP})
}

// sendsMedia reports whether an offer sends audio or video.
func sendsMedia(d *sdp.SessionDescription) bool {
	for _, md := range d.MediaDescriptions {
		if md.MediaName.Media != "audio" && md.MediaName.Media != "video" {
			continue
		}
		if md.MediaName.Port.Value == 0 {
			continue
		}
		dir := "sendrecv"
		for _, a := range md.Attributes {
			switch a.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				dir = a.Key
			}
		}
		if dir == "sendrecv" || dir == "sendonly" {
			return true
		}
	}
	return false
}

// newPublisher makes the publisher connection.
func (p *participant) newPublisher() (*webrtc.PeerConnection, error) {
	var pc *webrtc.PeerConnection
	var err error
	if dp, ok := p.room.sfu.peers.(DirectPublisherPeers); ok {
		var in *rtc.DirectReceiver
		pc, in, err = dp.NewDirectPublisherPeerConnection()
		p.directIn.Store(in)
	} else {
		pc, err = p.room.sfu.peers.NewPeerConnection()
	}
	if err != nil {
		return nil, err
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) { p.sendCandidate(signal.TargetPublisher, c) })
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		p.room.sfu.log.Debug("meeting connection state", "room", p.room.id, "identity", p.identity, "connection", "publisher", "state", s.String())
		switch s {
		case webrtc.PeerConnectionStateConnected:
			if in := p.directIn.Load(); in != nil {
				in.Start(pc, p.directLost)
			}
		case webrtc.PeerConnectionStateFailed:
			// ICE timed out: the participant is gone (a browser that
			// died, a phone out of coverage), signaling or not.
			go p.room.leave(p, signal.LeftTimeout)
		}
	})
	pc.OnTrack(func(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) { p.onTrack(pc, remote, recv) })
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		if dc.Label() != "chat" {
			return
		}
		dc.OnMessage(func(msg webrtc.DataChannelMessage) {
			if len(msg.Data) > signal.MaxChat+256 {
				return
			}
			p.room.chatFromChannel(p, msg.Data)
		})
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = pc.Close()
		return nil, errors.New("participant left")
	}
	p.pub = pc
	return pc, nil
}

// onTrack takes a track (or one simulcast layer of it) the publisher sends.
func (p *participant) onTrack(pc *webrtc.PeerConnection, remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	layer, ok := ridLayer(remote.RID())
	if !ok {
		return
	}
	if !p.rights.Publish {
		// The offer was checked, but this is where media starts: a
		// section the check let through (port 0, bundle-only) sends
		// nothing on.
		p.room.sfu.log.Warn("meeting track refused: no publish right", "room", p.room.id, "identity", p.identity, "kind", remote.Kind().String())
		return
	}
	// Reading RTCP lets the interceptors (reports, NACKs) run.
	go func() {
		buf := make([]byte, 1500)
		rid := remote.RID()
		for {
			var err error
			if rid != "" {
				_, _, err = recv.ReadSimulcast(buf, rid)
			} else {
				_, _, err = recv.Read(buf)
			}
			if err != nil {
				return
			}
		}
	}()
	p.mu.Lock()
	source := p.sources[remote.ID()]
	p.mu.Unlock()
	if source == "" {
		source = signal.SourceMicrophone
		if remote.Kind() == webrtc.RTPCodecTypeVideo {
			source = signal.SourceCamera
		}
	}
	var levelExt uint8
	for _, e := range recv.GetParameters().HeaderExtensions {
		if e.URI == audioLevelURI {
			levelExt = uint8(e.ID)
		}
	}
	p.room.publish(p, remote, layer, source, levelExt)
}

// writePublisherRTCP sends RTCP (keyframe requests) to the publisher.
func (p *participant) writePublisherRTCP(pkts []rtcp.Packet) error {
	p.mu.Lock()
	pc := p.pub
	p.mu.Unlock()
	if pc == nil {
		return nil
	}
	return pc.WriteRTCP(pkts)
}

// onAnswer applies the answer to the server's last offer.
func (p *participant) onAnswer(m signal.ClientMessage) {
	p.negMu.Lock()
	if p.sub == nil || !p.awaitingAnswer {
		p.negMu.Unlock()
		p.fail(&signal.Error{Code: "bad_sdp", Field: "sdp", Message: "no offer of the server waits for an answer"}, m.ID)
		return
	}
	err := p.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP})
	if err != nil {
		p.negMu.Unlock()
		p.fail(errBadSDP(err), m.ID)
		return
	}
	p.awaitingAnswer = false
	again := p.pending
	p.pending = false
	early := p.subEarly
	p.subEarly = nil
	for _, c := range early {
		_ = p.sub.AddICECandidate(c)
	}
	p.negMu.Unlock()
	if again {
		p.negotiate()
	}
}

// onCandidate adds a client's trickled candidate.
func (p *participant) onCandidate(m signal.ClientMessage) {
	init := webrtc.ICECandidateInit{Candidate: m.Candidate}
	if m.SDPMid != "" {
		init.SDPMid = &m.SDPMid
	}
	if m.SDPMLineIndex != nil {
		i := uint16(*m.SDPMLineIndex)
		init.SDPMLineIndex = &i
	}
	p.mu.Lock()
	p.candidates++
	tooMany := p.candidates > maxCandidates
	p.mu.Unlock()
	if tooMany {
		p.fail(&signal.Error{Code: signal.CodeBadField, Field: "candidate", Message: "too many candidates"}, m.ID)
		return
	}
	var pc *webrtc.PeerConnection
	if m.Target == signal.TargetPublisher {
		p.mu.Lock()
		pc = p.pub
		if pc == nil || pc.RemoteDescription() == nil {
			// Before its offer: kept for it.
			if len(p.early) < maxEarlyCandidates {
				p.early = append(p.early, init)
			}
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	} else {
		p.negMu.Lock()
		pc = p.sub
		if pc != nil && pc.RemoteDescription() == nil {
			// Before the first answer (a client's trickle may overtake
			// it): kept for it.
			if len(p.subEarly) < maxEarlyCandidates {
				p.subEarly = append(p.subEarly, init)
			}
			p.negMu.Unlock()
			return
		}
		p.negMu.Unlock()
	}
	if pc == nil {
		p.fail(&signal.Error{Code: "bad_field", Field: "target", Message: "no such connection"}, m.ID)
		return
	}
	if err := pc.AddICECandidate(init); err != nil {
		p.fail(&signal.Error{Code: "bad_field", Field: "candidate", Message: firstLine(err.Error())}, m.ID)
	}
}

func (p *participant) sendCandidate(target string, c *webrtc.ICECandidate) {
	if c == nil {
		return
	}
	init := c.ToJSON()
	m := &signal.ServerMessage{Type: signal.TypeCandidate, Target: target, Candidate: init.Candidate}
	if init.SDPMid != nil {
		m.SDPMid = *init.SDPMid
	}
	if init.SDPMLineIndex != nil {
		m.SDPMLineIndex = signal.Ptr(int(*init.SDPMLineIndex))
	}
	p.send(m)
}

// directLost is called when the subscriber connection moves off the
// shared UDP port (to ICE-TCP) after its direct sender started, or the
// publisher connection after its direct receiver started: their tracks
// cannot go on (rtc.DirectSender, rtc.DirectReceiver). The signaling is
// closed with 1012, on which the client reconnects and gets new
// connections; the others are told this participant left and joined
// again.
func (p *participant) directLost() {
	p.room.sfu.log.Warn("meeting connection moved off the UDP port; the participant is asked to reconnect",
		"room", p.room.id, "identity", p.identity)
	p.conn.close(websocket.CloseServiceRestart, "media_moved")
}

// startSubscriber makes the subscriber connection with its chat channel;
// the caller subscribes and negotiates.
func (p *participant) startSubscriber() error {
	var pc *webrtc.PeerConnection
	var err error
	if dp, ok := p.room.sfu.peers.(DirectPeers); ok {
		var direct *rtc.DirectSender
		pc, direct, err = dp.NewDirectSubscriberPeerConnection()
		p.direct.Store(direct)
	} else {
		pc, err = p.room.sfu.peers.NewSubscriberPeerConnection()
	}
	if err != nil {
		return err
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) { p.sendCandidate(signal.TargetSubscriber, c) })
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		p.room.sfu.log.Debug("meeting connection state", "room", p.room.id, "identity", p.identity, "connection", "subscriber", "state", s.String())
		switch s {
		case webrtc.PeerConnectionStateConnecting, webrtc.PeerConnectionStateDisconnected:
			p.linkMoved.Store(true)
		case webrtc.PeerConnectionStateConnected:
			p.linkMoved.Store(true)
			// The pictures asked for at Bind went before the connection
			// could carry them: ask again now that it can.
			p.subConnected.Store(true)
			if direct := p.direct.Load(); direct != nil {
				direct.Start(pc, p.directLost, p.takeSubscriberRTCP)
			}
			for _, d := range p.downTracks() {
				if d.up.kind == webrtc.RTPCodecTypeVideo {
					d.up.firstKeyframe(d.wantLayer())
				}
			}
		case webrtc.PeerConnectionStateFailed:
			// ICE timed out: the participant is gone (a browser that
			// died, a phone out of coverage), signaling or not.
			go p.room.leave(p, signal.LeftTimeout)
		}
	})
	ordered := true
	chat, err := pc.CreateDataChannel("chat", &webrtc.DataChannelInit{Ordered: &ordered})
	if err != nil {
		_ = pc.Close()
		return err
	}
	p.negMu.Lock()
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if !closed {
		// close, which sets closed first, then finds sub under negMu,
		// closes this connection.
		p.sub, p.chatOut = pc, chat
	}
	p.negMu.Unlock()
	if closed {
		_ = pc.Close()
		return errors.New("participant left")
	}
	return nil
}

// negotiate sends the subscriber connection's next offer, or marks one to
// follow the answer awaited.
func (p *participant) negotiate() {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.sub == nil || p.sub.ConnectionState() == webrtc.PeerConnectionStateClosed {
		return
	}
	if p.awaitingAnswer {
		p.pending = true
		return
	}
	offer, err := p.sub.CreateOffer(&webrtc.OfferOptions{ICERestart: p.restart})
	if err == nil {
		err = p.sub.SetLocalDescription(offer)
	}
	if err != nil {
		p.room.sfu.log.Warn("meeting subscriber offer not made", "room", p.room.id, "identity", p.identity, "err", err)
		return
	}
	p.restart = false
	p.awaitingAnswer = true
	p.send(&signal.ServerMessage{Type: signal.TypeOffer, SDP: p.sub.LocalDescription().SDP})
}

// subscribe adds a downTrack of u to the subscriber connection; the caller
// renegotiates. subMu keeps each subscriber's subscribe and unsubscribe
// steps whole (a track may end while it is being subscribed to).
func (p *participant) subscribe(u *upTrack) bool {
	p.subMu.Lock()
	defer p.subMu.Unlock()
	p.negMu.Lock()
	pc := p.sub
	p.negMu.Unlock()
	if pc == nil || u.pub.identity == p.identity {
		return false
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	p.downMu.Lock()
	_, dup := p.downs[u]
	q, asked := p.requested[u.pub.identity]
	p.downMu.Unlock()
	if closed || dup || u.isEnded() {
		return false
	}
	d := newDownTrack(u, p)
	if asked && u.kind == webrtc.RTPCodecTypeVideo && u.source == signal.SourceCamera {
		d.requested.Store(int32(q))
	}
	if u.kind == webrtc.RTPCodecTypeVideo && u.simulcast {
		// Start on the lowest layer sent: a picture at once, raised by
		// the allocator as the estimate allows.
		d.target = u.lowestLayer()
		if d.requested.Load() == layerOff {
			d.target = layerOff
		}
	}
	// AddTrack takes a transceiver a removed track left, so the
	// connection's SDP does not grow with every track that came and went.
	sender, err := pc.AddTrack(d)
	if err != nil {
		p.room.sfu.log.Warn("meeting track not subscribed", "room", p.room.id, "identity", p.identity, "track", u.id, "err", err)
		return false
	}
	d.sender = sender
	p.downMu.Lock()
	p.downs[u] = d
	p.downMu.Unlock()
	u.addDown(d)
	go p.readSubscriberRTCP(d)
	return true
}

// unsubscribe removes u's downTrack; the caller renegotiates.
func (p *participant) unsubscribe(u *upTrack) bool {
	p.subMu.Lock()
	defer p.subMu.Unlock()
	p.downMu.Lock()
	d, ok := p.downs[u]
	delete(p.downs, u)
	p.downMu.Unlock()
	if !ok {
		return false
	}
	u.removeDown(d)
	p.negMu.Lock()
	pc := p.sub
	p.negMu.Unlock()
	if pc != nil && pc.ConnectionState() != webrtc.PeerConnectionStateClosed {
		_ = pc.RemoveTrack(d.sender)
	}
	return true
}

func (p *participant) downTracks() []*downTrack {
	p.downMu.Lock()
	defer p.downMu.Unlock()
	out := make([]*downTrack, 0, len(p.downs))
	for _, d := range p.downs {
		out = append(out, d)
	}
	return out
}

// readSubscriberRTCP forwards the subscriber's keyframe requests to the
// publisher (throttled there), answers its NACKs from the published
// track's history, and takes its receiver reports and its transport-wide
// feedback (which reaches the sender of the track it names, whichever
// that is: all of it is about the one connection).
//
// Once the connection's direct sender has started, the RTCP comes to
// takeSubscriberRTCP instead, and this goroutine waits for the
// connection's end.
func (p *participant) readSubscriberRTCP(d *downTrack) {
	for {
		pkts, _, err := d.sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			p.takeRTCPFor(d, pkt)
		}
	}
}

// takeRTCPFor acts on one RTCP packet about d's stream (or, transport-wide
// feedback, about the connection).
func (p *participant) takeRTCPFor(d *downTrack, pkt rtcp.Packet) {
	switch pkt := pkt.(type) {
	case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
		p.plisIn.Add(1)
		cur, target := d.layers()
		if cur == layerOff {
			cur = target
		}
		d.up.requestKeyframe(cur)
	case *rtcp.TransportLayerNack:
		p.nacksIn.Add(1)
		d.retransmit(pkt)
	case *rtcp.ReceiverReport:
		d.takeReceiverReport(pkt, time.Now())
	case *rtcp.TransportLayerCC:
		p.bwe.Feedback(pkt, nanotime())
	}
}

// takeSubscriberRTCP takes a compound RTCP packet the subscriber
// connection's direct sender read (rtc.DirectSender.Start), on the UDP
// socket's reading goroutine: the transport-wide feedback goes to the
// estimator as it came (most datagrams are one such packet: nothing is
// parsed into objects, nothing allocated), and each other packet to the
// stream it is about, as pion's SRTCP session sends them. A packet about
// no stream of this connection (one just removed) is dropped.
func (p *participant) takeSubscriberRTCP(buf []byte) {
	others := false
	for b := buf; len(b) > 0; {
		if len(b) < 4 || b[0]>>6 != 2 {
			p.rtcpBad.Add(1)
			return
		}
		n := (int(binary.BigEndian.Uint16(b[2:4])) + 1) * 4
		if n > len(b) {
			p.rtcpBad.Add(1)
			return
		}
		if b[1] == byte(rtcp.TypeTransportSpecificFeedback) && b[0]&0x1f == rtcp.FormatTCC {
			if p.bwe.FeedbackRaw(b[:n], nanotime()) != nil {
				p.rtcpBad.Add(1)
			}
		} else {
			others = true
		}
		b = b[n:]
	}
	if !others {
		return
	}
	pkts, err := rtcp.Unmarshal(buf)
	if err != nil {
		p.rtcpBad.Add(1)
		return
	}
	var downs []*downTrack // read at the first packet that needs them
	for _, pkt := range pkts {
		if _, ok := pkt.(*rtcp.TransportLayerCC); ok {
			continue // read above
		}
		if downs == nil {
			downs = p.downTracks()
		}
		for _, d := range downs {
			if aboutStream(pkt, d.boundSSRC()) {
				p.takeRTCPFor(d, pkt)
			}
		}
	}
}

// aboutStream says whether an RTCP packet is about the stream ssrc: the
// media it names, or a report block of a receiver report.
func aboutStream(pkt rtcp.Packet, ssrc uint32) bool {
	switch pkt := pkt.(type) {
	case *rtcp.PictureLossIndication:
		return pkt.MediaSSRC == ssrc
	case *rtcp.TransportLayerNack:
		return pkt.MediaSSRC == ssrc
	case *rtcp.FullIntraRequest:
		if pkt.MediaSSRC == ssrc {
			return true
		}
		for _, e := range pkt.FIR {
			if e.SSRC == ssrc {
				return true
			}
		}
	case *rtcp.ReceiverReport:
		for _, b := range pkt.Reports {
			if b.SSRC == ssrc {
				return true
			}
		}
	}
	return false
}

// shut marks the participant closed, ends both connections, detaches its
// subscriptions from the tracks they forward, and returns the tracks it
// published (for the room to announce their end); nil when it was shut
// already. Closed and the tracks taken in one step: a track arriving
// meanwhile (onTrack) finds the participant closed.
func (p *participant) shut() (published []*upTrack, first bool) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, false
	}
	p.closed = true
	for u := range p.published {
		published = append(published, u)
	}
	p.published = map[*upTrack]struct{}{}
	pub := p.pub
	p.mu.Unlock()
	p.negMu.Lock()
	sub := p.sub
	p.negMu.Unlock()
	if pub != nil {
		_ = pub.Close()
	}
	if sub != nil {
		_ = sub.Close()
	}
	if direct := p.direct.Load(); direct != nil {
		direct.Stop()
	}
	if in := p.directIn.Load(); in != nil {
		in.Stop()
	}
	p.subMu.Lock()
	p.downMu.Lock()
	downs := p.downs
	p.downs = map[*upTrack]*downTrack{}
	p.downMu.Unlock()
	p.subMu.Unlock()
	for u, d := range downs {
		u.removeDown(d)
	}
	close(p.done)
	return published, true
}

func shortID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
