package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/lookout-cc/lookout/internal/meetpeer"
	"github.com/lookout-cc/lookout/sfu/signal"
)

// The meeting bench's participants: pion peer connections speaking the
// signaling protocol of docs/signaling.md, as the browser client and the
// SFU's own test client (sfu/meeting/client_test.go) do. The publisher
// sends synthetic VP8 and Opus-sized packets carrying the time of their
// writing; every receiver reads that time back from each packet it gets
// and counts the packets against their sequence numbers.

// benchEpoch is the clock every participant of the bench shares (they are
// all in this process): monotonic nanoseconds since it.
var benchEpoch = time.Now()

func benchNow() int64 { return int64(time.Since(benchEpoch)) }

// Measurement phases: receivers count nothing while warming up, and stop
// counting when done.
const (
	phaseWarmup = iota
	phaseMeasure
	phaseDone
)

const audioLevelExtURI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

// publishers are the bench's publishers by the index each packet carries,
// so that a receiver finds when the packet left its publisher's socket.
var (
	publishers     [512]atomic.Pointer[benchPublisher]
	publisherCount atomic.Int32
)

// sentMark is what every packet carries after its send time: the
// publisher's index (2 bytes), the stream (a video layer, or audioStream)
// and the sequence number the publisher gave it (2 bytes).
const sentMarkLen = 8 + 5

const audioStream = 3

// meetClient is one participant.
type meetClient struct {
	identity string
	phase    *atomic.Int32
	// intake: the subscriber connection's media is decrypted on its
	// socket's reader (stampConn.takeOnReader).
	intake bool
	ws     *websocket.Conn
	wsMu   sync.Mutex

	joined   chan struct{}
	answers  chan string
	readDone chan struct{}
	// quit ends the client's own goroutines.
	quit chan struct{}

	mu      sync.Mutex
	pub     *webrtc.PeerConnection
	sub     *webrtc.PeerConnection
	subConn *stampConn
	sockets []net.PacketConn
	// layers is the layer each received video is on ("paused" when the
	// server paused it), by track id, from layer_changed.
	layers  map[string]string
	tracks  []*recvTrack
	failure string
	closed  bool
	// publisher is what this participant sends, if it publishes.
	publisher *benchPublisher
}

// dialMeeting connects to the signaling WebSocket and joins with token.
func dialMeeting(wsURL, identity, token string, phase *atomic.Int32, intake bool) (*meetClient, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	ws, _, err := d.Dial(wsURL, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: signaling: %w", identity, err)
	}
	c := &meetClient{identity: identity, phase: phase, intake: intake, ws: ws, joined: make(chan struct{}), answers: make(chan string, 1),
		readDone: make(chan struct{}), quit: make(chan struct{}), layers: map[string]string{}}
	go c.read()
	c.send(map[string]any{"type": "join", "token": token})
	select {
	case <-c.joined:
		return c, nil
	case <-c.readDone:
	case <-time.After(15 * time.Second):
	}
	c.close()
	return nil, fmt.Errorf("%s: not joined: %s", identity, c.failed())
}

func (c *meetClient) failed() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failure == "" {
		return "no answer"
	}
	return c.failure
}

func (c *meetClient) send(v any) {
	b, _ := json.Marshal(v)
	c.wsMu.Lock()
	defer c.wsMu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_ = c.ws.WriteMessage(websocket.TextMessage, b)
}

// read takes the server's messages until the connection ends: subscriber
// offers are answered here, the rest noted.
func (c *meetClient) read() {
	defer close(c.readDone)
	joined := false
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.fail("signaling closed: " + firstWords(err.Error()))
			return
		}
		var m signal.ServerMessage
		if err := json.Unmarshal(data, &m); err != nil {
			continue
		}
		switch m.Type {
		case signal.TypeJoined:
			if !joined {
				joined = true
				close(c.joined)
			}
		case signal.TypeOffer:
			if err := c.answer(m.SDP); err != nil {
				c.fail("answer: " + err.Error())
			}
		case signal.TypeAnswer:
			select {
			case c.answers <- m.SDP:
			default:
			}
		case signal.TypeCandidate:
			c.addCandidate(m)
		case signal.TypeLayerChanged:
			if m.Track != nil {
				layer := m.Layer
				if m.Paused != nil && *m.Paused {
					layer = "paused"
				}
				c.mu.Lock()
				c.layers[m.Track.ID] = layer
				c.mu.Unlock()
			}
		case signal.TypeError:
			c.fail(m.Code + ": " + m.Message)
		}
	}
}

func (c *meetClient) fail(what string) {
	c.mu.Lock()
	if c.failure == "" && !c.closed {
		c.failure = what
	}
	c.mu.Unlock()
}

func firstWords(s string) string {
	if len(s) > 120 {
		return s[:120]
	}
	return s
}

// newPC makes a peer connection like a browser's, on a UDP socket of its
// own (pion's UDP mux keys sessions by the remote address, so each
// connection needs its own local one). The interceptors are pion's
// defaults but two:
//
//   - transport-wide congestion control feedback, which the SFU's
//     bandwidth estimator for this subscriber is built from, is made from
//     the socket (stampConn: the kernel's arrival times, every packet of
//     the connection in the order it came) as a browser makes it, rather
//     than by pion's interceptor, which notes a packet's arrival when the
//     application reads its track: with one reading goroutine per track,
//     on a loaded machine, the audio and video packets are read in another
//     order than they came, and the estimator takes the ones read later
//     for lost (it saw 10-20 % loss where none was);
//   - the statistics interceptor, as nothing here asks for statistics.
//
// A publisher numbers its packets for transport-wide feedback (the
// header extension interceptor), as a browser does, and the SFU sends it
// the feedback. NACKs are asked at most 3 times per packet, as a browser
// gives up. A publisher (publish) offers VP8 and Opus without RTX: pion's
// retransmissions of a simulcast layer would carry its rid but no
// repaired-rid (a browser's carry the latter), and the SFU's pion would
// take them for the layer's media; without RTX they go on the layer's own
// stream.
func (c *meetClient) newPC(publisher bool) (*webrtc.PeerConnection, *stampConn, error) {
	conn, err := listenStamped()
	if err != nil {
		return nil, nil, err
	}
	if c.intake && !publisher {
		conn.withIntake()
	}
	pc, err := c.newPCOn(conn, publisher)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	c.mu.Lock()
	c.sockets = append(c.sockets, conn)
	c.mu.Unlock()
	return pc, conn, nil
}

func (c *meetClient) newPCOn(conn *stampConn, publisher bool) (*webrtc.PeerConnection, error) {
	quiet := logging.NewDefaultLoggerFactory()
	quiet.DefaultLogLevel = logging.LogLevelDisabled
	var se webrtc.SettingEngine
	se.LoggerFactory = quiet
	se.SetICEUDPMux(webrtc.NewICEUDPMux(quiet.NewLogger("ice"), conn))
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if conn.intake != nil {
		se.SetDTLSKeyLogWriter(conn.secrets)
		se.BufferFactory = conn.intake.Buffer
	}
	var me webrtc.MediaEngine
	if publisher {
		feedback := []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}
		if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000,
			RTCPFeedback: feedback}, PayloadType: 96}, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
		if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000,
			Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
	} else if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	var ir interceptor.Registry
	if err := webrtc.ConfigureNackWithOptions(&me, &ir, []nack.GeneratorOption{nack.GeneratorMaxNacksPerPacket(3), nack.WithGeneratorLoggerFactory(quiet)},
		nack.WithResponderLoggerFactory(quiet)); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureRTCPReportsWithOptions(&ir, []report.ReceiverOption{report.WithReceiverLoggerFactory(quiet)},
		report.WithSenderLoggerFactory(quiet)); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(&me); err != nil {
		return nil, err
	}
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		me.RegisterFeedback(webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC}, kind)
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.TransportCCURI}, kind); err != nil {
			return nil, err
		}
	}
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: audioLevelExtURI}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	if publisher {
		// Numbered for the SFU's transport-wide feedback, as a browser
		// numbers what it sends.
		numbering, err := twcc.NewHeaderExtensionInterceptor()
		if err != nil {
			return nil, err
		}
		ir.Add(numbering)
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(&me), webrtc.WithInterceptorRegistry(&ir)).NewPeerConnection(webrtc.Configuration{})
}

// answer answers an offer of the subscriber connection, making the
// connection at the first.
func (c *meetClient) answer(offer string) error {
	c.mu.Lock()
	pc := c.sub
	c.mu.Unlock()
	if pc == nil {
		var conn *stampConn
		var err error
		if pc, conn, err = c.newPC(false); err != nil {
			return err
		}
		go conn.feedback.Send(pc, c.quit, func(n int) { feedbackSent.Add(uint64(n)) })
		if conn.intake != nil {
			pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
				if s == webrtc.PeerConnectionStateConnected {
					conn.startIntake()
				}
			})
		}
		pc.OnICECandidate(func(ic *webrtc.ICECandidate) { c.sendCandidate(signal.TargetSubscriber, ic) })
		pc.OnTrack(func(tr *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
			// As a browser takes the sender reports (its receiver
			// reports answer them).
			go func() {
				for {
					if _, _, err := r.ReadRTCP(); err != nil {
						return
					}
				}
			}()
			t := &recvTrack{id: tr.ID(), audio: tr.Kind() == webrtc.RTPCodecTypeAudio, phase: c.phase, arrivals: conn.table(uint32(tr.SSRC()))}
			c.mu.Lock()
			c.tracks = append(c.tracks, t)
			c.mu.Unlock()
			go t.run(tr)
		})
		c.mu.Lock()
		c.sub, c.subConn = pc, conn
		c.mu.Unlock()
	}
	// The first offer may have no media yet (the chat channel only): the
	// extension's id comes with the first that has.
	c.mu.Lock()
	c.subConn.feedback.FromOffer(offer)
	c.mu.Unlock()
	ans, err := meetpeer.Answer(pc, offer)
	if err != nil {
		return err
	}
	c.send(map[string]any{"type": "answer", "sdp": ans})
	return nil
}

func (c *meetClient) sendCandidate(target string, ic *webrtc.ICECandidate) {
	if m := meetpeer.CandidateMessage(target, ic); m != nil {
		c.send(m)
	}
}

func (c *meetClient) addCandidate(m signal.ServerMessage) {
	c.mu.Lock()
	pc := c.pub
	if m.Target == signal.TargetSubscriber {
		pc = c.sub
	}
	c.mu.Unlock()
	if pc == nil {
		return
	}
	_ = pc.AddICECandidate(meetpeer.CandidateInit(m))
}

// receivedTracks is how many tracks have had a packet, of each kind.
func (c *meetClient) receivedTracks() (video, audio int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.tracks {
		if t.packets.Load() == 0 {
			continue
		}
		if t.audio {
			audio++
		} else {
			video++
		}
	}
	return video, audio
}

// close hangs up: the signaling connection and both peer connections.
func (c *meetClient) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	pub, sub, sockets, publisher := c.pub, c.sub, c.sockets, c.publisher
	c.mu.Unlock()
	close(c.quit)
	if publisher != nil {
		publisher.stop()
	}
	c.wsMu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.wsMu.Unlock()
	_ = c.ws.Close()
	<-c.readDone
	if pub != nil {
		_ = pub.Close()
	}
	if sub != nil {
		_ = sub.Close()
	}
	for _, s := range sockets {
		_ = s.Close()
	}
}

// recvTrack is one received track and what its reader measured over the
// measurement phase: the packets, unique by sequence number (the SFU
// numbers each subscriber's packets without a gap, across layer switches,
// so a number never seen is a packet lost), and the delay from the
// publisher's write to this read.
type recvTrack struct {
	id      string
	audio   bool
	phase   *atomic.Int32
	packets atomic.Uint64 // every packet, in every phase
	// arrivals are when the track's packets reached the socket.
	arrivals *stampTable

	mu      sync.Mutex
	started bool
	// base and highest are extended sequence numbers: the first counted,
	// and the highest seen.
	base, highest int64
	// seen marks the last 1024 sequence numbers received, to tell a late
	// packet (a retransmission, or out of order) from a duplicate.
	seen     [1024 / 64]uint64
	received uint64 // unique packets from base to highest
	bytes    uint64 // their size, as RTP (before SRTP's tag)
	late     uint64 // of those, arrived after a higher number
	gaps     uint64 // numbers skipped when a higher one arrived
	dups     uint64
	noStamp  uint64 // packets without a readable send time
	// delay is from the publisher's write to the read here; toSocket to
	// the arrival at this receiver's socket; forward from the publisher's
	// socket to this receiver's (the SFU's part).
	delay, toSocket, forward histogram
}

// run reads the track into one buffer until it ends.
func (t *recvTrack) run(tr *webrtc.TrackRemote) {
	buf := make([]byte, 1500)
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			return
		}
		t.take(buf[:n], benchNow())
	}
}

// take counts one RTP packet received at now. It reads the header and
// the 8 bytes of the send time only, and allocates nothing.
func (t *recvTrack) take(pkt []byte, now int64) {
	t.packets.Add(1)
	if t.phase.Load() != phaseMeasure || len(pkt) < 12 {
		return
	}
	off := 12 + 4*int(pkt[0]&0x0f)
	if pkt[0]&0x10 != 0 { // header extension
		if len(pkt) < off+4 {
			return
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(pkt[off+2:]))
	}
	end := len(pkt)
	if pkt[0]&0x20 != 0 { // padding
		end -= int(pkt[end-1])
	}
	if off > end {
		return
	}
	payload := pkt[off:end]
	seq := binary.BigEndian.Uint16(pkt[2:4])

	t.mu.Lock()
	defer t.mu.Unlock()
	t.bytes += uint64(len(pkt))
	if !t.started {
		t.started = true
		t.base = 1<<16 + int64(seq)
		t.highest = t.base
		t.mark(t.base)
		t.received++
		t.stamp(payload, seq, now)
		return
	}
	ext := t.highest + int64(int16(seq-uint16(t.highest)))
	switch {
	case ext < t.base:
		return // sent before the measurement
	case ext > t.highest:
		if ext-t.highest >= int64(len(t.seen))*64 {
			t.seen = [len(t.seen)]uint64{}
		} else {
			for s := t.highest + 1; s < ext; s++ {
				t.unmark(s)
			}
		}
		t.gaps += uint64(ext - t.highest - 1)
		t.highest = ext
		t.mark(ext)
	case t.highest-ext >= int64(len(t.seen))*64:
		t.late++ // too old to tell from a duplicate; counted as news
	case t.marked(ext):
		t.dups++
		return
	default:
		t.mark(ext)
		t.late++
	}
	t.received++
	t.stamp(payload, seq, now)
}

func (t *recvTrack) mark(s int64)   { i := s & 1023; t.seen[i>>6] |= 1 << (i & 63) }
func (t *recvTrack) unmark(s int64) { i := s & 1023; t.seen[i>>6] &^= 1 << (i & 63) }
func (t *recvTrack) marked(s int64) bool {
	i := s & 1023
	return t.seen[i>>6]&(1<<(i&63)) != 0
}

// stamp records the delay of a packet from the send time it carries: in
// audio after the Opus TOC byte; in video after the VP8 payload
// descriptor, and after the VP8 frame header in a frame's first packet.
func (t *recvTrack) stamp(p []byte, seq uint16, now int64) {
	i := 1
	if !t.audio {
		i = vp8DataOffset(p)
	}
	if i < 0 || len(p) < i+8 {
		t.noStamp++
		return
	}
	sent := int64(binary.BigEndian.Uint64(p[i:]))
	d := now - sent
	if d < 0 || d > int64(time.Minute) {
		t.noStamp++
		return
	}
	t.delay.add(time.Duration(d))
	if t.arrivals == nil {
		return
	}
	at, ok := t.arrivals.arrival(seq)
	if !ok || at < sent-int64(time.Millisecond) {
		// (The kernel's clock and the monotonic one may differ by a
		// little.)
		return
	}
	t.toSocket.add(time.Duration(max(at-sent, 0)))
	if len(p) < i+sentMarkLen {
		return
	}
	idx, stream, pubSeq := binary.BigEndian.Uint16(p[i+8:]), p[i+10], binary.BigEndian.Uint16(p[i+11:])
	if int(idx) >= len(publishers) || stream > audioStream {
		return
	}
	if pub := publishers[idx].Load(); pub != nil {
		if tab := pub.sent[stream].Load(); tab != nil {
			if left, ok := tab.arrival(pubSeq); ok && at >= left-int64(time.Millisecond) {
				t.forward.add(time.Duration(max(at-left, 0)))
				if sp := pub.spread.Load(); sp != nil {
					sp.note(stream, pubSeq, max(at-left, 0))
				}
			}
		}
	}
}

// vp8DataOffset is where the frame data starts in a VP8 RTP payload (RFC
// 7741): after the payload descriptor, and after the frame header (3
// bytes, 10 for a keyframe) at the start of a frame; -1 if too short.
func vp8DataOffset(p []byte) int {
	if len(p) < 1 {
		return -1
	}
	d := p[0]
	i := 1
	if d&0x80 != 0 { // X
		if len(p) < 2 {
			return -1
		}
		x := p[1]
		i = 2
		if x&0x80 != 0 { // I: picture id, M bit for 15 bits
			if len(p) <= i {
				return -1
			}
			if p[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if x&0x40 != 0 { // L
			i++
		}
		if x&0x30 != 0 { // T or K
			i++
		}
	}
	if d&0x10 != 0 && d&0x07 == 0 { // S, partition 0: the frame header
		if len(p) <= i {
			return -1
		}
		if p[i]&0x01 == 0 {
			return i + 10
		}
		return i + 3
	}
	return i
}

// trackResult is a track's measurement.
type trackResult struct {
	audio                                     bool
	expected, received, late, gaps, dups, bad uint64
	bytes                                     uint64
}

func (t *recvTrack) result(h, toSocket, forward *histogram) trackResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := trackResult{audio: t.audio, received: t.received, late: t.late, gaps: t.gaps, dups: t.dups, bad: t.noStamp, bytes: t.bytes}
	if t.started {
		r.expected = uint64(t.highest - t.base + 1)
	}
	h.merge(&t.delay)
	toSocket.merge(&t.toSocket)
	forward.merge(&t.forward)
	return r
}

// benchPublisher sends VP8 video (simulcast layers l, m and h, or one
// stream) and Opus-sized audio with the audio-level extension: synthetic
// packets, as the SFU does not decode them, with a correct VP8 payload
// descriptor and frame header, a keyframe every 2 s and on each keyframe
// request, and the time of the writing in every packet.
type benchPublisher struct {
	c      *meetClient
	video  []*webrtc.TrackLocalStaticRTP // by layer
	rates  []int                         // bit/s, by layer
	audio  *webrtc.TrackLocalStaticRTP
	keyReq [3]atomic.Bool
	quit   chan struct{}
	once   sync.Once
	done   sync.WaitGroup

	// pacing is the rate (bit/s) the video packets are sent at, 0 for
	// each frame's packets at once.
	pacing int64

	mid          string
	midID, ridID uint8
	levelID      uint8
	level        byte

	videoPackets, audioPackets, keyframes atomic.Uint64

	// index is the publisher's in publishers; sent are its socket's
	// records of what it sent, by stream (layers, then audioStream).
	index uint16
	sent  [audioStream + 1]atomic.Pointer[stampTable]
	// spread, when set, notes each packet's first and last copy.
	spread atomic.Pointer[copySpread]

	// writes is how long pion's WriteRTP took, through the interceptors
	// and SRTP to the socket: the part of the delay that is the
	// publisher's own.
	writesMu sync.Mutex
	writes   histogram
}

func (p *benchPublisher) write(tr *webrtc.TrackLocalStaticRTP, pk *rtp.Packet) bool {
	began := benchNow()
	err := tr.WriteRTP(pk)
	took := time.Duration(benchNow() - began)
	p.writesMu.Lock()
	p.writes.add(took)
	p.writesMu.Unlock()
	return err == nil
}

// writeTimes is the distribution of the writes' times so far.
func (p *benchPublisher) writeTimes() histogram {
	p.writesMu.Lock()
	defer p.writesMu.Unlock()
	return p.writes
}

var layerRIDs = []string{"l", "m", "h"}
var layerSizes = [][2]uint16{{320, 180}, {640, 360}, {1280, 720}}

// publish offers the video (simulcast when rates has three layers) and
// audio at level (-dBov; 0: no audio packets), and sends until the client closes. The video's
// packets are paced at pacing times their bitrate, as browsers pace them
// (Chrome: 2.5), or sent each frame at once when pacing is 0.
func (c *meetClient) publish(rates []int, level byte, pacing float64) (*benchPublisher, error) {
	idx := publisherCount.Add(1) - 1
	if int(idx) >= len(publishers) {
		return nil, errors.New("too many publishers for the bench")
	}
	pc, conn, err := c.newPC(true)
	if err != nil {
		return nil, err
	}
	pc.OnICECandidate(func(ic *webrtc.ICECandidate) { c.sendCandidate(signal.TargetPublisher, ic) })
	c.mu.Lock()
	c.pub = pc
	c.mu.Unlock()
	p := &benchPublisher{c: c, rates: rates, quit: make(chan struct{}), level: level, index: uint16(idx)}
	for _, r := range rates {
		p.pacing += int64(pacing * float64(r))
	}
	simulcast := len(rates) > 1
	vp8 := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	for i := range rates {
		var opts []func(*webrtc.TrackLocalStaticRTP)
		if simulcast {
			opts = append(opts, webrtc.WithRTPStreamID(layerRIDs[i]))
		}
		tr, err := webrtc.NewTrackLocalStaticRTP(vp8, "cam-"+c.identity, "stream-"+c.identity, opts...)
		if err != nil {
			return nil, err
		}
		p.video = append(p.video, tr)
	}
	vs, err := pc.AddTrack(p.video[0])
	if err != nil {
		return nil, err
	}
	for _, tr := range p.video[1:] {
		if err := vs.AddEncoding(tr); err != nil {
			return nil, err
		}
	}
	if p.audio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
		"mic-"+c.identity, "stream-"+c.identity); err != nil {
		return nil, err
	}
	as, err := pc.AddTrack(p.audio)
	if err != nil {
		return nil, err
	}
	// Keyframe requests, per layer; reading RTCP also lets the
	// interceptors (NACK answers, reports) run.
	for i := range rates {
		go p.readRTCP(vs, i, simulcast)
	}
	go func() {
		for {
			if _, _, err := as.ReadRTCP(); err != nil {
				return
			}
		}
	}()
	offer, err := pc.CreateOffer(nil)
	if err == nil {
		err = pc.SetLocalDescription(offer)
	}
	if err != nil {
		return nil, err
	}
	c.send(map[string]any{"type": "offer", "sdp": offer.SDP, "tracks": map[string]string{"cam-" + c.identity: "camera", "mic-" + c.identity: "microphone"}})
	var answer string
	select {
	case answer = <-c.answers:
	case <-c.readDone:
		return nil, fmt.Errorf("%s: no answer: %s", c.identity, c.failed())
	case <-time.After(15 * time.Second):
		return nil, fmt.Errorf("%s: no answer to the publisher offer within 15 s", c.identity)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return nil, err
	}
	for _, e := range as.GetParameters().HeaderExtensions {
		if e.URI == audioLevelExtURI {
			p.levelID = uint8(e.ID)
		}
	}
	// Like a browser, simulcast layers carry the mid and their rid in
	// header extensions: pion's sender leaves this to its user.
	for _, e := range vs.GetParameters().HeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			p.midID = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			p.ridID = uint8(e.ID)
		}
	}
	for _, tr := range pc.GetTransceivers() {
		if tr.Sender() == vs {
			p.mid = tr.Mid()
		}
	}
	if simulcast && (p.midID == 0 || p.ridID == 0 || p.mid == "") {
		return nil, errors.New("the answer negotiated no mid and rid header extensions for simulcast")
	}
	// Where the socket notes what each stream sent.
	for i, e := range vs.GetParameters().Encodings {
		if i < len(rates) {
			p.sent[i].Store(conn.table(uint32(e.SSRC)))
		}
	}
	if enc := as.GetParameters().Encodings; len(enc) > 0 {
		p.sent[audioStream].Store(conn.table(uint32(enc[0].SSRC)))
	}
	publishers[idx].Store(p)
	c.mu.Lock()
	c.publisher = p
	c.mu.Unlock()
	p.done.Add(2)
	go p.sendVideo()
	go p.sendAudio()
	return p, nil
}

func (p *benchPublisher) stop() {
	p.once.Do(func() { close(p.quit) })
	p.done.Wait()
}

func (p *benchPublisher) readRTCP(s *webrtc.RTPSender, layer int, simulcast bool) {
	for {
		var err error
		var pkts []rtcp.Packet
		if simulcast {
			pkts, _, err = s.ReadSimulcastRTCP(layerRIDs[layer])
		} else {
			pkts, _, err = s.ReadRTCP()
		}
		if err != nil {
			return
		}
		for _, pk := range pkts {
			switch pk.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				p.keyReq[layer].Store(true)
			}
		}
	}
}

// keyframeEvery is the publisher's keyframe interval in frames (2 s).
const (
	frameRate     = 30
	keyframeEvery = 2 * frameRate
	maxPayload    = 1100
)

// sendVideo sends 30 frames a second per layer, each frame the layer's
// bitrate's share, split into packets of at most 1100 bytes: the layers'
// frames one after the other, l, m then h, their packets paced at
// p.pacing bit/s, or all at once when it is 0.
func (p *benchPublisher) sendVideo() {
	defer p.done.Done()
	tick := time.NewTicker(time.Second / frameRate)
	defer tick.Stop()
	simulcast := len(p.video) > 1
	pkts := make([]rtp.Packet, len(p.video))
	for i := range pkts {
		pkts[i].Header = rtp.Header{Version: 2, SequenceNumber: uint16(i * 10000)}
		if simulcast {
			_ = pkts[i].Header.SetExtension(p.midID, []byte(p.mid))
			_ = pkts[i].Header.SetExtension(p.ridID, []byte(layerRIDs[i]))
		}
	}
	picture := make([]uint16, len(p.video))
	payload := make([]byte, maxPayload+32)
	frame := 0
	for {
		select {
		case <-p.quit:
			return
		case <-tick.C:
		}
		frame++
		for l, tr := range p.video {
			key := frame%keyframeEvery == 1 || p.keyReq[l].Swap(false)
			if key {
				p.keyframes.Add(1)
			}
			picture[l] = (picture[l] + 1) & 0x7fff
			size := p.rates[l] / 8 / frameRate
			n := (size + maxPayload - 1) / maxPayload
			sizes := layerSizes[2]
			if simulcast {
				sizes = layerSizes[l]
			}
			for k := range n {
				part := size / n
				if k == n-1 {
					part = size - part*(n-1)
				}
				pk := &pkts[l]
				pk.SequenceNumber++
				pl := vp8Packet(payload, k == 0, key, picture[l], sizes, part, p.mark(l, pk.SequenceNumber))
				pk.Timestamp = uint32(frame * 90000 / frameRate)
				pk.Marker = k == n-1
				pk.Payload = pl
				if p.write(tr, pk) {
					p.videoPackets.Add(1)
				}
				if p.pacing > 0 {
					// The next packet leaves when this one would have at
					// the pacing rate.
					time.Sleep(time.Duration(int64(part+40) * 8 * int64(time.Second) / p.pacing))
				}
			}
		}
	}
}

// vp8Packet fills buf with one VP8 RTP payload of size bytes (at least
// what the headers and the send time take): the payload descriptor (X, S
// at a frame's start, partition 0, a 15-bit picture id), the frame header
// at a frame's start (a keyframe's with its start code and size), then
// the send time.
func vp8Packet(buf []byte, first, key bool, picture uint16, size [2]uint16, n int, mark [5]byte) []byte {
	clear(buf[:max(n, 32)])
	buf[0] = 0x80 // X
	if first {
		buf[0] |= 0x10 // S, partition 0
	}
	buf[1] = 0x80 // I
	buf[2] = 0x80 | byte(picture>>8)
	buf[3] = byte(picture)
	i := 4
	if first {
		// Frame tag: P (0: keyframe), version 0, show_frame, and the
		// first partition's size.
		tag := uint32(1<<4) | uint32(n/2)<<5
		if !key {
			tag |= 1
		}
		buf[i], buf[i+1], buf[i+2] = byte(tag), byte(tag>>8), byte(tag>>16)
		i += 3
		if key {
			buf[i], buf[i+1], buf[i+2] = 0x9d, 0x01, 0x2a
			binary.LittleEndian.PutUint16(buf[i+3:], size[0])
			binary.LittleEndian.PutUint16(buf[i+5:], size[1])
			i += 7
		}
	}
	binary.BigEndian.PutUint64(buf[i:], uint64(benchNow()))
	copy(buf[i+8:], mark[:])
	return buf[:max(n, i+sentMarkLen)]
}

// mark is what a packet of stream carries after its send time (sentMark).
func (p *benchPublisher) mark(stream int, seq uint16) (m [5]byte) {
	binary.BigEndian.PutUint16(m[:], p.index)
	m[2] = byte(stream)
	binary.BigEndian.PutUint16(m[3:], seq)
	return m
}

// sendAudio sends a 20 ms Opus-sized packet (80 bytes: 32 kbit/s) with
// the audio level.
func (p *benchPublisher) sendAudio() {
	defer p.done.Done()
	if p.level == 0 {
		return // a publisher without audio (level 0 would be the loudest)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	pk := rtp.Packet{Header: rtp.Header{Version: 2}}
	if p.levelID != 0 {
		_ = pk.Header.SetExtension(p.levelID, []byte{p.level})
	}
	payload := make([]byte, 80)
	payload[0] = 0xfc // TOC: CELT fullband 20 ms, stereo
	pk.Payload = payload
	for {
		select {
		case <-p.quit:
			return
		case <-tick.C:
		}
		pk.SequenceNumber++
		pk.Timestamp += 960
		binary.BigEndian.PutUint64(payload[1:], uint64(benchNow()))
		m := p.mark(audioStream, pk.SequenceNumber)
		copy(payload[9:], m[:])
		if p.write(p.audio, &pk) {
			p.audioPackets.Add(1)
		}
	}
}

// copySpread notes, for each packet of one publisher, the forwarding delay
// of its first copy to reach a receiver's socket and of its last. The
// first copy's is the wait before the fan-out reached anyone (the
// publisher's packets through lookout's receive path and queued behind
// the packets before them); from it to the last is the fan-out itself.
// Packets are told apart by their 16-bit sequence numbers, so it is
// reported only for a measurement of fewer than 65,536 packets a stream.
type copySpread struct {
	// first and last are the delay in ns plus one; 0: no copy yet.
	first, last [audioStream + 1][1 << 16]atomic.Int64
}

func (s *copySpread) note(stream byte, seq uint16, delay int64) {
	v := delay + 1
	for f := &s.first[stream][seq]; ; {
		old := f.Load()
		if old != 0 && old <= v || f.CompareAndSwap(old, v) {
			break
		}
	}
	for l := &s.last[stream][seq]; ; {
		old := l.Load()
		if old >= v || l.CompareAndSwap(old, v) {
			break
		}
	}
}

// histograms are the first and last copies' delays, over every packet
// with a copy.
func (s *copySpread) histograms() (first, last histogram) {
	for st := range s.first {
		for seq := range s.first[st] {
			if f := s.first[st][seq].Load(); f > 0 {
				first.add(time.Duration(f - 1))
				last.add(time.Duration(s.last[st][seq].Load() - 1))
			}
		}
	}
	return first, last
}
