package meeting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookout-cc/lookout/console/auth"
	"github.com/lookout-cc/lookout/internal/meetpeer"
	"github.com/lookout-cc/lookout/internal/orgs"
	"github.com/lookout-cc/lookout/internal/sqldb"
	"github.com/lookout-cc/lookout/sfu/rooms"
	"github.com/lookout-cc/lookout/sfu/rtc"
	"github.com/lookout-cc/lookout/sfu/signal"
)

// env is an SFU on loopback with a signer and rooms kept in memory.
type env struct {
	t      *testing.T
	sfu    *SFU
	srv    *httptest.Server
	signer *auth.Signer
	rooms  *memRooms
	reg    *prometheus.Registry
	audit  *memAudit
}

// memRooms is the room store of these tests: the SFU's own interface,
// kept in memory (internal/server's tests use the real store).
type memRooms struct {
	mu    sync.Mutex
	rooms map[string]rooms.Room
}

func (m *memRooms) Room(_ context.Context, org orgs.ID, id string) (rooms.Room, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.rooms[id]
	if !ok {
		return rooms.Room{}, rooms.ErrRoomNotFound
	}
	if r.OrgID != org {
		return rooms.Room{}, orgs.ErrOutOfScope
	}
	return r, nil
}

func (m *memRooms) SetLocked(_ context.Context, _ orgs.ID, id string, locked bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rooms[id]
	r.Locked = locked
	m.rooms[id] = r
	return nil
}

type memAudit struct {
	mu      sync.Mutex
	actions []string
}

func (a *memAudit) Record(_ context.Context, actor string, _ orgs.ID, action, target, result string, _ map[string]any) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.actions = append(a.actions, actor+" "+action+" "+target+" "+result)
	return nil
}

func newEnv(t *testing.T, engine ...func(*rtc.Params)) *env {
	t.Helper()
	ctx := context.Background()
	logDone := &atomic.Bool{}
	t.Cleanup(func() { logDone.Store(true) }) // the last cleanup
	db, err := sqldb.Open(ctx, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	signer, err := auth.NewSigner(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	// As the server's defaults: the direct sender and receiver on
	// (webrtc.direct_send, webrtc.direct_receive).
	params := rtc.Params{UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0", DirectSend: true, DirectReceive: true}
	for _, f := range engine {
		f(&params)
	}
	eng, err := rtc.New(params)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, signer: signer, reg: prometheus.NewRegistry(), audit: &memAudit{},
		rooms: &memRooms{rooms: map[string]rooms.Room{"r1": {ID: "r1", Name: "调度会商", OrgID: "qj", MaxParticipants: 50}}}}
	e.sfu, err = New(Params{Peers: eng, Rooms: e.rooms, Verify: signer.VerifyJoin, Audit: e.audit, Metrics: e.reg,
		Log: slog.New(slog.NewTextHandler(testWriter{t, logDone}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(http.HandlerFunc(e.sfu.ServeWS))
	t.Cleanup(func() {
		e.srv.Close()
		e.sfu.Close()
		_ = eng.Close()
	})
	return e
}

// testWriter logs into the test until it ends: pion runs some callbacks
// (connection states) on goroutines of its own after a close, which must
// not log into a finished test.
type testWriter struct {
	t    *testing.T
	done *atomic.Bool
}

func (w testWriter) Write(b []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimSpace(string(b)))
	}
	return len(b), nil
}

var hostRights = auth.RoomRights{Publish: true, Subscribe: true, PublishData: true, Admin: true}
var memberRights = auth.RoomRights{Publish: true, Subscribe: true, PublishData: true}

func (e *env) token(identity string, rights auth.RoomRights) string {
	e.t.Helper()
	tok, _, err := e.signer.IssueJoin(auth.JoinClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: identity}, Name: "name of " + identity,
		Room: "r1", Org: "qj", Role: "participant", Rights: rights}, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// client is a participant made of pion peer connections, speaking the
// signaling protocol like the browser client.
type client struct {
	t        *testing.T
	identity string
	ws       *websocket.Conn
	wsMu     sync.Mutex
	// subFilter wraps the subscriber connection's socket (a throttle);
	// pubFilter the publisher connection's.
	subFilter, pubFilter func(net.PacketConn) net.PacketConn
	// candidatesFirst has the client send its subscriber connection's
	// candidates before its answer, as a client racing its trickle ahead
	// of its answer may.
	candidatesFirst bool
	// tcpOnly has the client's connections use ICE-TCP only, as behind
	// a firewall that blocks UDP.
	tcpOnly bool
	// ownTimestamps has the publisher start each simulcast layer's
	// timestamps at a base of its own, as a browser does (otherwise the
	// layers share theirs).
	ownTimestamps bool
	// subFeedback is subFilter's record of arrivals when the subscriber
	// connection's TWCC feedback is made from it; feeding tells whether
	// it is being sent.
	subFeedback *meetpeer.ArrivalFeedback
	feeding     bool
	sockets     []net.PacketConn

	mu     sync.Mutex
	msgs   []signal.ServerMessage
	notify chan struct{}
	pub    *webrtc.PeerConnection
	sub    *webrtc.PeerConnection
	// received counts packets per remote track id; seqs notes their
	// sequence numbers.
	received map[string]*atomic.Int64
	seqs     map[string]*seqLog
	chat     []string
	closed   bool
	readDone chan struct{}

	// pubNeg orders the publisher connection's answers and the server's
	// candidates for it: while an offer awaits its answer, the candidates
	// wait too (a restart's candidates added before the answer would go
	// to the old ICE generation, which the answer then drops).
	pubNeg      sync.Mutex
	pubAwaiting bool
	pubPending  []signal.ServerMessage
}

// offering marks the publisher connection as awaiting an answer; call it
// before the offer is sent.
func (c *client) offering() {
	c.pubNeg.Lock()
	c.pubAwaiting = true
	c.pubNeg.Unlock()
}

// answered applies the answer to the publisher connection's offer, then
// the candidates that came before it.
func (c *client) answered(pc *webrtc.PeerConnection, sdp string) error {
	c.pubNeg.Lock()
	defer c.pubNeg.Unlock()
	err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp})
	c.pubAwaiting = false
	for _, m := range c.pubPending {
		_ = pc.AddICECandidate(meetpeer.CandidateInit(m))
	}
	c.pubPending = nil
	return err
}

// dial connects without joining.
func (e *env) dial(identity string) *client {
	e.t.Helper()
	url := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/"
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	c := &client{t: e.t, identity: identity, ws: ws, notify: make(chan struct{}, 1), received: map[string]*atomic.Int64{}, seqs: map[string]*seqLog{}, readDone: make(chan struct{})}
	go c.read()
	e.t.Cleanup(c.close)
	return c
}

// join dials and joins with a token, and waits for joined.
func (e *env) join(identity string, rights auth.RoomRights) *client {
	e.t.Helper()
	c := e.dial(identity)
	c.send(map[string]any{"type": "join", "token": e.token(identity, rights)})
	c.wait("joined", func(m signal.ServerMessage) bool { return m.Type == signal.TypeJoined })
	return c
}

// newPC makes a peer connection like a browser's: simulcast, TWCC
// feedback, NACKs, the audio-level extension; its ICE on a UDP socket of
// its own (as a browser has one per connection), which filter (when set)
// wraps, to throttle or cut the link.
func (c *client) newPC(filter func(net.PacketConn) net.PacketConn) (*webrtc.PeerConnection, error) {
	t := c.t
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	var pc net.PacketConn = conn
	if filter != nil {
		pc = filter(conn)
	}
	quiet := logging.NewDefaultLoggerFactory()
	quiet.DefaultLogLevel = logging.LogLevelDisabled
	var se webrtc.SettingEngine
	se.LoggerFactory = quiet
	if c.tcpOnly {
		// No UDP mux: pion gathers on one whatever the network types.
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	} else {
		se.SetICEUDPMux(webrtc.NewICEUDPMux(quiet.NewLogger("ice"), pc))
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	var me webrtc.MediaEngine
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	var ir interceptor.Registry
	// A browser asks again for a lost packet a few times, each after a
	// round trip, then gives it up (Chrome: by RTT, at most 10); pion's
	// default asks every 100 ms until it comes, which on a saturated link
	// keeps it saturated.
	nackOpts := []nack.GeneratorOption{nack.GeneratorMaxNacksPerPacket(3)}
	if fb, own := pc.(bottleneckFeedback); own {
		c.mu.Lock()
		c.subFeedback = fb.arrivalFeedback()
		c.mu.Unlock()
		// pion's interceptors but its TWCC feedback: the filter makes it.
		if err := webrtc.ConfigureNackWithOptions(&me, &ir, nackOpts); err != nil {
			t.Fatal(err)
		}
		if err := webrtc.ConfigureRTCPReports(&ir); err != nil {
			t.Fatal(err)
		}
		if err := webrtc.ConfigureSimulcastExtensionHeaders(&me); err != nil {
			t.Fatal(err)
		}
		for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
			me.RegisterFeedback(webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC}, kind)
			if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.TransportCCURI}, kind); err != nil {
				t.Fatal(err)
			}
		}
	} else if err := webrtc.RegisterDefaultInterceptorsWithOptions(&me, &ir, webrtc.WithNackGeneratorOptions(nackOpts...)); err != nil {
		t.Fatal(err)
	}
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: audioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.sockets = append(c.sockets, pc)
	c.mu.Unlock()
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(&me), webrtc.WithInterceptorRegistry(&ir)).NewPeerConnection(webrtc.Configuration{})
}

func (c *client) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(websocket.TextMessage, b)
}

func (c *client) sendRaw(kind int, b []byte) {
	c.wsMu.Lock()
	defer c.wsMu.Unlock()
	_ = c.ws.WriteMessage(kind, b)
}

// read takes the server's messages: offers are answered, candidates added,
// the rest kept for wait.
func (c *client) read() {
	defer close(c.readDone)
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			m := signal.ServerMessage{Type: "closed"}
			if errors.As(err, &ce) {
				m.Code, m.Message = strconv.Itoa(ce.Code), ce.Text
			}
			c.keep(m)
			return
		}
		var m signal.ServerMessage
		if err := json.Unmarshal(data, &m); err != nil {
			c.t.Errorf("%s: server message not JSON: %s", c.identity, data)
			continue
		}
		switch m.Type {
		case signal.TypeOffer:
			c.answer(m.SDP)
		case signal.TypeCandidate:
			c.addCandidate(m)
		case signal.TypeChat:
			c.mu.Lock()
			c.chat = append(c.chat, m.Identity+": "+m.Text)
			c.mu.Unlock()
		}
		c.keep(m)
	}
}

func (c *client) keep(m signal.ServerMessage) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// wait returns the first message kept that match says yes to, within 15 s.
func (c *client) wait(what string, match func(signal.ServerMessage) bool) signal.ServerMessage {
	c.t.Helper()
	return c.waitFor(what, 15*time.Second, match)
}

func (c *client) waitFor(what string, d time.Duration, match func(signal.ServerMessage) bool) signal.ServerMessage {
	c.t.Helper()
	return c.waitSince(0, what, d, match)
}

// mark is where waitSince starts: the messages kept so far are skipped.
func (c *client) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

// waitSince is waitFor over the messages kept after mark.
func (c *client) waitSince(mark int, what string, d time.Duration, match func(signal.ServerMessage) bool) signal.ServerMessage {
	c.t.Helper()
	deadline := time.After(d)
	for {
		c.mu.Lock()
		for _, m := range c.msgs[mark:] {
			if match(m) {
				c.mu.Unlock()
				return m
			}
		}
		c.mu.Unlock()
		select {
		case <-c.notify:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			c.mu.Lock()
			var types []string
			for _, m := range c.msgs {
				types = append(types, m.Type+"/"+m.Code+m.Identity)
			}
			c.mu.Unlock()
			c.t.Fatalf("%s: no %s within %s; got %v", c.identity, what, d, types)
		}
	}
}

// has reports whether a kept message matches.
func (c *client) has(match func(signal.ServerMessage) bool) bool { return c.hasSince(0, match) }

// hasSince reports whether a message kept after mark matches.
func (c *client) hasSince(mark int, match func(signal.ServerMessage) bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.msgs[mark:] {
		if match(m) {
			return true
		}
	}
	return false
}

// answer answers a subscriber offer, making the connection at the first.
func (c *client) answer(sdp string) {
	c.mu.Lock()
	pc := c.sub
	c.mu.Unlock()
	if pc == nil {
		var err error
		if pc, err = c.newPC(c.subFilter); err != nil {
			c.t.Errorf("%s: %v", c.identity, err)
			return
		}
		if !c.candidatesFirst {
			pc.OnICECandidate(func(ic *webrtc.ICECandidate) { c.sendCandidate("subscriber", ic) })
		}
		pc.OnTrack(func(tr *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
			n := &atomic.Int64{}
			c.mu.Lock()
			c.received[tr.ID()] = n
			c.mu.Unlock()
			// Reading the receiver's RTCP lets pion's report interceptor
			// take the SFU's sender reports, which its receiver reports
			// then answer, as a browser's do.
			go func() {
				for {
					if _, _, err := r.ReadRTCP(); err != nil {
						return
					}
				}
			}()
			seqs := &seqLog{}
			c.mu.Lock()
			c.seqs[tr.ID()] = seqs
			c.mu.Unlock()
			go func() {
				buf := make([]byte, 1500)
				for {
					k, _, err := tr.Read(buf)
					if err != nil {
						return
					}
					n.Add(1)
					if k >= 4 {
						seqs.note(uint16(buf[2])<<8 | uint16(buf[3]))
					}
				}
			}()
		})
		pc.OnDataChannel(func(dc *webrtc.DataChannel) {
			dc.OnMessage(func(msg webrtc.DataChannelMessage) {
				var m signal.ServerMessage
				if json.Unmarshal(msg.Data, &m) == nil {
					c.mu.Lock()
					c.chat = append(c.chat, m.Identity+": "+m.Text)
					c.mu.Unlock()
				}
			})
		})
		c.mu.Lock()
		c.sub = pc
		c.mu.Unlock()
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	ans, err := meetpeer.Answer(pc, sdp)
	if err != nil {
		c.report("answer", err)
		return
	}
	c.mu.Lock()
	fb, start := c.subFeedback, c.subFeedback != nil && !c.feeding
	c.feeding = c.feeding || start
	c.mu.Unlock()
	if fb != nil {
		fb.FromOffer(sdp)
	}
	if start {
		go fb.Send(pc, c.readDone, nil)
	}
	if c.candidatesFirst && pc.LocalDescription() != nil {
		<-gathered
		for _, ic := range candidatesOf(pc.LocalDescription().SDP) {
			c.send(map[string]any{"type": "candidate", "target": "subscriber", "candidate": ic, "sdp_mid": "0", "sdp_mline_index": 0})
		}
	}
	c.send(map[string]any{"type": "answer", "sdp": ans})
}

// candidatesOf is the candidate lines of an SDP, without "a=".
func candidatesOf(sdp string) []string {
	var out []string
	for _, l := range strings.Split(sdp, "\r\n") {
		if c, ok := strings.CutPrefix(l, "a=candidate:"); ok {
			out = append(out, "candidate:"+c)
		}
	}
	return out
}

// report fails the test with err, unless the client is being closed (an
// offer the server sent as the test ended).
func (c *client) report(what string, err error) {
	c.mu.Lock()
	closing := c.closed
	c.mu.Unlock()
	if !closing {
		c.t.Errorf("%s: %s: %v", c.identity, what, err)
	}
}

func (c *client) sendCandidate(target string, ic *webrtc.ICECandidate) {
	if m := meetpeer.CandidateMessage(target, ic); m != nil {
		c.send(m)
	}
}

func (c *client) addCandidate(m signal.ServerMessage) {
	c.mu.Lock()
	pc := c.pub
	if m.Target == signal.TargetSubscriber {
		pc = c.sub
	}
	c.mu.Unlock()
	if pc == nil {
		return
	}
	if m.Target != signal.TargetSubscriber {
		c.pubNeg.Lock()
		defer c.pubNeg.Unlock()
		if c.pubAwaiting {
			c.pubPending = append(c.pubPending, m)
			return
		}
	}
	_ = pc.AddICECandidate(meetpeer.CandidateInit(m))
}

// packets returns how many packets arrived on the remote track whose id
// starts with prefix (identity-source).
func (c *client) packets(prefix string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for id, v := range c.received {
		if strings.HasPrefix(id, prefix) {
			n += v.Load()
		}
	}
	return n
}

// waitPackets waits until at least n packets arrived on prefix's tracks.
// seqLogOf is the sequence log of the received track whose id starts
// with prefix; it fails the test if there is none.
func (c *client) seqLogOf(prefix string) *seqLog {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, l := range c.seqs {
		if strings.HasPrefix(id, prefix) {
			return l
		}
	}
	c.t.Fatalf("%s: no track %s…", c.identity, prefix)
	return nil
}

func (c *client) waitPackets(prefix string, n int64, d time.Duration) {
	c.t.Helper()
	waitUntil(c.t, d, func() bool { return c.packets(prefix) >= n }, func() string {
		return fmt.Sprintf("%s: %d packets of %s within %s, want %d", c.identity, c.packets(prefix), prefix, d, n)
	})
}

// waitUntil polls cond until it holds, failing the test with what's
// message once within has passed.
func waitUntil(t testing.TB, within time.Duration, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(what())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// close hangs up without a goodbye.
func (c *client) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	pub, sub, sockets := c.pub, c.sub, c.sockets
	c.mu.Unlock()
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

// publisher is what a client sends: VP8 video (simulcast layers l, m, h
// or one stream) and Opus audio with audio levels, made of synthetic
// packets (the SFU does not decode them), with a keyframe every second
// and on each keyframe request.
type publisher struct {
	c      *client
	video  []*webrtc.TrackLocalStaticRTP // by layer: l, m, h
	audio  *webrtc.TrackLocalStaticRTP
	level  atomic.Int32 // the audio level sent (-dBov, 127 silence)
	keyReq [numLayers]atomic.Bool
	// onlyAskedKeys has the video send keyframes only when asked (a
	// PLI), as browsers do, not every second; plis counts the PLIs.
	onlyAskedKeys atomic.Bool
	plis          atomic.Int32
	// nacked counts, by sequence number, how often the video's packets
	// were asked for again; firstAsked is when each was first.
	nackedMu   sync.Mutex
	nacked     map[uint16]int
	firstAsked map[uint16]time.Time
	stop       chan struct{}
	done       sync.WaitGroup
	// rates are the layers' bitrates (0: the layer is not sent).
	rates [numLayers]atomic.Int64
	// skip has a layer send one frame in skip+1 (0: every frame), as an
	// encoder short of CPU or bitrate drops frames; the frames sent keep
	// their size.
	skip [numLayers]atomic.Int32
	// gap has the video skip one sequence number in gap (0: none), as
	// if that packet were lost on the publisher's link.
	gap atomic.Int32
	// tsBase is added to a layer's timestamps (client.ownTimestamps).
	tsBase [numLayers]uint32
	// The video's mid and the ids of the mid and rid extensions.
	mid          string
	midID, ridID uint8
}

// publish offers video (simulcast or not) and audio; the publisher runs
// until the test ends.
func (c *client) publish(simulcast bool) *publisher {
	c.t.Helper()
	pc, err := c.newPC(c.pubFilter)
	if err != nil {
		c.t.Fatal(err)
	}
	pc.OnICECandidate(func(ic *webrtc.ICECandidate) { c.sendCandidate("publisher", ic) })
	c.mu.Lock()
	c.pub = pc
	c.mu.Unlock()
	p := &publisher{c: c, stop: make(chan struct{})}
	for l, r := range []int64{150_000, 500_000, 1_200_000} {
		p.rates[l].Store(r)
		if c.ownTimestamps {
			p.tsBase[l] = uint32(l) * 0x5000_0000
		}
	}
	p.level.Store(127)
	vp8 := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	rids := []string{"l", "m", "h"}
	if !simulcast {
		rids = []string{""}
	}
	for _, rid := range rids {
		var opts []func(*webrtc.TrackLocalStaticRTP)
		if rid != "" {
			opts = append(opts, webrtc.WithRTPStreamID(rid))
		}
		tr, err := webrtc.NewTrackLocalStaticRTP(vp8, "cam-"+c.identity, "stream-"+c.identity, opts...)
		if err != nil {
			c.t.Fatal(err)
		}
		p.video = append(p.video, tr)
	}
	vs, err := pc.AddTrack(p.video[0])
	if err != nil {
		c.t.Fatal(err)
	}
	for _, tr := range p.video[1:] {
		if err := vs.AddEncoding(tr); err != nil {
			c.t.Fatal(err)
		}
	}
	if p.audio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic-"+c.identity, "stream-"+c.identity); err != nil {
		c.t.Fatal(err)
	}
	as, err := pc.AddTrack(p.audio)
	if err != nil {
		c.t.Fatal(err)
	}
	go p.readRTCP(vs.ReadRTCP, 0)
	if simulcast {
		// pion's ReadRTCP reads the first encoding's; each of the others
		// has its own.
		for layer, rid := range []string{"m", "h"} {
			go p.readRTCP(func() ([]rtcp.Packet, interceptor.Attributes, error) { return vs.ReadSimulcastRTCP(rid) }, layer+1)
		}
	}
	go p.readRTCP(as.ReadRTCP, -1)
	offer, err := pc.CreateOffer(nil)
	if err == nil {
		err = pc.SetLocalDescription(offer)
	}
	if err != nil {
		c.t.Fatal(err)
	}
	c.offering()
	c.send(map[string]any{"type": "offer", "sdp": offer.SDP, "tracks": map[string]string{"cam-" + c.identity: "camera", "mic-" + c.identity: "microphone"}})
	ans := c.wait("answer", func(m signal.ServerMessage) bool { return m.Type == "answer" })
	if err := c.answered(pc, ans.SDP); err != nil {
		c.t.Fatal(err)
	}
	var levelID uint8
	for _, e := range as.GetParameters().HeaderExtensions {
		if e.URI == audioLevelURI {
			levelID = uint8(e.ID)
		}
	}
	// Like a browser, the simulcast layers carry the mid and their rid
	// in header extensions (pion's sender leaves this to its user).
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
	p.done.Add(2)
	go p.sendVideo(simulcast)
	go p.sendAudio(levelID)
	c.t.Cleanup(p.close)
	return p
}

func (p *publisher) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.done.Wait()
}

// readRTCP reads one encoding's RTCP (layer: its layer, -1 for audio) and
// answers a PLI with keyframes: of every layer, or with onlyAskedKeys of
// the layer asked, as a browser's simulcast encoder does.
func (p *publisher) readRTCP(read func() ([]rtcp.Packet, interceptor.Attributes, error), layer int) {
	for {
		pkts, _, err := read()
		if err != nil {
			return
		}
		for _, pk := range pkts {
			if n, ok := pk.(*rtcp.TransportLayerNack); ok && layer >= 0 {
				p.nackedMu.Lock()
				if p.nacked == nil {
					p.nacked, p.firstAsked = map[uint16]int{}, map[uint16]time.Time{}
				}
				for _, pair := range n.Nacks {
					for _, seq := range pair.PacketList() {
						if p.nacked[seq]++; p.nacked[seq] == 1 {
							p.firstAsked[seq] = time.Now()
						}
					}
				}
				p.nackedMu.Unlock()
			}
			if _, ok := pk.(*rtcp.PictureLossIndication); ok {
				p.plis.Add(1)
				if p.onlyAskedKeys.Load() && layer >= 0 {
					p.keyReq[layer].Store(true)
					continue
				}
				for l := range p.video {
					p.keyReq[l].Store(true)
				}
			}
		}
	}
}

// sendVideo sends 30 frames a second per layer, each frame one packet sized
// for the layer's bitrate (at most 1100 bytes: larger frames are split).
func (p *publisher) sendVideo(simulcast bool) {
	defer p.done.Done()
	tick := time.NewTicker(time.Second / 30)
	defer tick.Stop()
	var seq [numLayers]uint16
	var frame uint32
	payload := make([]byte, 1200)
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		frame++
		for i, tr := range p.video {
			layer := i
			if !simulcast {
				layer = layerHigh
			}
			// The first frame is a keyframe, as a browser's first is.
			key := frame == 1 || frame%30 == 1 && !p.onlyAskedKeys.Load() || p.keyReq[i].Swap(false)
			rate := int(p.rates[layer].Load())
			if rate == 0 {
				continue // this layer is not sent (a browser short of CPU)
			}
			if n := uint32(p.skip[layer].Load()); n > 0 && frame%(n+1) != 0 && !key {
				continue // a frame the encoder dropped
			}
			size := rate / 8 / 30
			for size > 0 {
				n := min(size, 1100)
				size -= n
				payload[0] = 0x10 // S=1, PID 0
				payload[1] = 0x01 // interframe
				if key {
					payload[1] = 0x00
				}
				first := n == min(rate/8/30, 1100)
				if !first {
					payload[0] = 0x00
				}
				seq[i]++
				if g := uint16(p.gap.Load()); g > 0 && seq[i]%g == 0 {
					seq[i]++ // this one lost on the way
				}
				pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq[i], Timestamp: frame*3000 + p.tsBase[layer], Marker: size == 0}, Payload: payload[:max(n, 2)]}
				if simulcast && p.midID != 0 && p.ridID != 0 {
					_ = pkt.Header.SetExtension(p.midID, []byte(p.mid))
					_ = pkt.Header.SetExtension(p.ridID, []byte(tr.RID()))
				}
				_ = tr.WriteRTP(pkt)
			}
		}
	}
}

// sendAudio sends a 20 ms Opus-sized packet with the current level.
func (p *publisher) sendAudio(levelID uint8) {
	defer p.done.Done()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var seq uint16
	var ts uint32
	payload := make([]byte, 60)
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		seq++
		ts += 960
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts}, Payload: payload}
		if levelID != 0 {
			_ = pkt.Header.SetExtension(levelID, []byte{byte(p.level.Load())})
		}
		_ = p.audio.WriteRTP(pkt)
	}
}

// renegotiate sends a new publisher offer (tracks added or removed, or an
// ICE restart) and applies the answer.
func (c *client) renegotiate(iceRestart bool, sources map[string]string) {
	c.t.Helper()
	c.mu.Lock()
	pc := c.pub
	c.mu.Unlock()
	mark := c.mark()
	offer, err := pc.CreateOffer(&webrtc.OfferOptions{ICERestart: iceRestart})
	if err == nil {
		err = pc.SetLocalDescription(offer)
	}
	if err != nil {
		c.t.Fatal(err)
	}
	c.offering()
	c.send(map[string]any{"type": "offer", "sdp": offer.SDP, "tracks": sources, "id": "re"})
	ans := c.waitSince(mark, "answer", 10*time.Second, func(m signal.ServerMessage) bool { return m.Type == "answer" && m.ID == "re" })
	if err := c.answered(pc, ans.SDP); err != nil {
		c.t.Fatal(err)
	}
}

// shareScreen adds a screen-share video track to the publisher connection
// and sends frames on it until stop is closed; it returns the sender.
func (p *publisher) shareScreen(stop chan struct{}) *webrtc.RTPSender {
	c := p.c
	c.t.Helper()
	tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "screen-"+c.identity, "stream-"+c.identity)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	pc := c.pub
	c.mu.Unlock()
	s, err := pc.AddTrack(tr)
	if err != nil {
		c.t.Fatal(err)
	}
	go p.readRTCP(s.ReadRTCP, -1)
	c.renegotiate(false, map[string]string{"screen-" + c.identity: signal.SourceScreen})
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		tick := time.NewTicker(time.Second / 10)
		defer tick.Stop()
		var seq uint16
		for frame := uint32(0); ; frame++ {
			select {
			case <-stop:
				return
			case <-p.stop:
				return
			case <-tick.C:
			}
			seq++
			key := byte(0x01)
			if frame%20 == 0 {
				key = 0
			}
			_ = tr.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: frame * 9000, Marker: true}, Payload: []byte{0x10, key, 1, 2, 3}})
		}
	}()
	return s
}

// mediaSample is a sample of silence-sized Opus for WriteSample.
func mediaSample(d time.Duration) media.Sample {
	return media.Sample{Data: make([]byte, 60), Duration: d}
}

// seqLog notes the sequence numbers a track received: how many distinct
// ones, and the span from the first to the highest.
type seqLog struct {
	mu      sync.Mutex
	seen    map[uint32]bool
	first   uint32
	highest uint32
	started bool
}

func (l *seqLog) note(seq uint16) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.started {
		l.started, l.seen = true, map[uint32]bool{}
		l.first, l.highest = 1<<16+uint32(seq), 1<<16+uint32(seq)
	}
	ext := uint32(int64(l.highest) + int64(int16(seq-uint16(l.highest))))
	l.seen[ext] = true
	l.highest = max(l.highest, ext)
}

// counts is the distinct numbers received and the span they come from.
func (l *seqLog) counts() (distinct, span int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.started {
		return 0, 0
	}
	return len(l.seen), int(l.highest-l.first) + 1
}
