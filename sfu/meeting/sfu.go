// Package meeting is the SFU of the tiered video meetings (and, on it, the
// petition hearings): participants join a room with a signed join token
// over the signaling WebSocket of docs/signaling.md, publish audio, video
// (simulcast) and screen shares on one peer connection and receive the
// others' on a second, which the server renegotiates as tracks come and
// go. Each subscriber gets, per video, the layer its bandwidth estimate and
// tile size allow, paused when not even the lowest fits; packets are
// forwarded without transcoding and without an allocation per packet,
// large rooms on every core (fanout.go). Retransmissions come from one
// history per published layer (history.go) and the RTCP reports are the
// SFU's own (reports.go), rather than pion's per-subscriber interceptors.
// Hosts mute, remove, lock and call on participants (spotlight); the
// audio levels publishers send drive active-speaker events.
package meeting

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookout-cc/lookout/console/auth"
	"github.com/lookout-cc/lookout/internal/orgs"
	"github.com/lookout-cc/lookout/internal/procs"
	"github.com/lookout-cc/lookout/sfu/rooms"
	"github.com/lookout-cc/lookout/sfu/rtc"
	"github.com/lookout-cc/lookout/sfu/signal"
)

// Peers makes the peer connections (sfu/rtc's Engine).
type Peers interface {
	NewPeerConnection() (*webrtc.PeerConnection, error)
	NewSubscriberPeerConnection() (*webrtc.PeerConnection, error)
}

// DirectPeers is Peers that can also give a subscriber connection a sender
// of its own for its RTP, past pion's per-packet path (sfu/rtc's Engine:
// rtc.DirectSender). A nil sender leaves the connection to pion.
type DirectPeers interface {
	NewDirectSubscriberPeerConnection() (*webrtc.PeerConnection, *rtc.DirectSender, error)
}

// DirectPublisherPeers is Peers that can also give a publisher connection
// a receiver of its own for its RTP, past pion's goroutine hand-overs
// (sfu/rtc's Engine: rtc.DirectReceiver). A nil receiver leaves the
// connection to pion.
type DirectPublisherPeers interface {
	NewDirectPublisherPeerConnection() (*webrtc.PeerConnection, *rtc.DirectReceiver, error)
}

// RoomStore is where rooms are kept (sfu/rooms, within the token's
// organisation).
type RoomStore interface {
	Room(ctx context.Context, org orgs.ID, id string) (rooms.Room, error)
	SetLocked(ctx context.Context, org orgs.ID, id string, locked bool) error
}

// Auditor records host actions (internal/audit).
type Auditor interface {
	Record(ctx context.Context, actor string, org orgs.ID, action, target, result string, detail map[string]any) error
}

// Params configure the SFU.
type Params struct {
	Peers  Peers
	Rooms  RoomStore
	Verify func(token string) (*auth.JoinClaims, error)
	// ICEServers gives a participant's STUN/TURN servers, with
	// credentials valid until expires; host is the one the client reached
	// the signaling by. Nil: none.
	ICEServers func(identity, host string, expires time.Time) []signal.ICEServer
	Audit      Auditor
	Log        *slog.Logger
	Metrics    prometheus.Registerer
	// CheckOrigin decides on a browser's Origin header; nil allows the
	// same host only (and clients that send none).
	CheckOrigin func(r *http.Request) bool
	// OnAdmit, when set, is told that a host admitted identity from
	// room's lobby (a hearing's recording starts then); OnLobby of who
	// waits in a room's lobby at each change. Both run on the admitting
	// host's goroutine (a signaling connection's, an API request's): a
	// database write is fine, waiting on the room is not.
	OnAdmit func(room, identity, by string)
	OnLobby func(room string, waiting []signal.LobbyEntry)
	// CheckJoin, when set, may refuse a good token at each join with the
	// message the client is told (a hearing's token once its link was
	// revoked or the hearing is over).
	CheckJoin func(ctx context.Context, c *auth.JoinClaims) error
}

// SFU holds the rooms in progress.
//
// Lifecycle: New; ServeWS for each signaling connection; Close ends every
// room.
type SFU struct {
	p        Params
	log      *slog.Logger
	peers    Peers
	rooms    RoomStore
	metrics  *metrics
	upgrader websocket.Upgrader

	// fan forwards the packets of large rooms on every core.
	fan *fanout

	mu     sync.Mutex
	live   map[string]*Room
	closed bool
	// recordings are the rooms being recorded (record.go).
	recordings map[string]*roomRecording
	// recordUpAfter is how long a better layer must be sent well before a
	// recording moves back up to it (recordUpAfterDefault; tests shorten
	// it before they record).
	recordUpAfter time.Duration
	conns         sync.WaitGroup
}

// New makes the SFU.
func New(p Params) (*SFU, error) {
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	if p.Peers == nil || p.Rooms == nil || p.Verify == nil {
		return nil, errors.New("meeting: Peers, Rooms and Verify are required")
	}
	m, err := newMetrics(p.Metrics)
	if err != nil {
		return nil, err
	}
	s := &SFU{p: p, log: p.Log, peers: p.Peers, rooms: p.Rooms, metrics: m, live: map[string]*Room{}, fan: newFanout(procs.Most() - 1),
		recordUpAfter: recordUpAfterDefault}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
		CheckOrigin:      p.CheckOrigin,
	}
	return s, nil
}

// ServeWS takes one signaling connection until the participant leaves.
func (s *SFU) ServeWS(w http.ResponseWriter, r *http.Request) {
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered with the reason
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "closed"), time.Now().Add(time.Second))
		_ = ws.Close()
		return
	}
	s.conns.Add(1)
	s.mu.Unlock()
	defer s.conns.Done()
	ws.SetReadLimit(readLimit)
	c := newConn(ws)
	defer func() {
		close(c.readerGone)
		<-c.done
	}()
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}

	// The first message is join, within joinTimeout.
	_ = ws.SetReadDeadline(time.Now().Add(joinTimeout))
	p := s.join(c, host)
	if p == nil {
		return
	}
	_ = ws.SetReadDeadline(time.Now().Add(readTimeout))
	ws.SetPongHandler(func(string) error { return ws.SetReadDeadline(time.Now().Add(readTimeout)) })
	reason := signal.LeftDisconnected
	defer func() { p.room.leave(p, reason) }()
	limit := newBucket(msgRate, msgBurst)
	var lastLimited time.Time
	for {
		kind, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		_ = ws.SetReadDeadline(time.Now().Add(readTimeout))
		if kind != websocket.TextMessage {
			p.fail(&signal.Error{Code: signal.CodeBadJSON, Message: "messages are JSON text frames"}, "")
			continue
		}
		if !limit.take(time.Now()) {
			// Dropped; the client is told at most once a second.
			if time.Since(lastLimited) > time.Second {
				lastLimited = time.Now()
				p.fail(&signal.Error{Code: "rate_limited", Message: "too many messages: some were dropped"}, "")
			}
			continue
		}
		m, err := signal.Decode(data)
		if err != nil {
			p.fail(asSignalError(err), "")
			continue
		}
		if m.Type == signal.TypeLeave {
			reason = signal.LeftLeft
			return
		}
		p.handle(m)
		select {
		case <-p.done: // removed, replaced or the room closed
			return
		default:
		}
	}
}

// A client's message rate: a browser sends a few a second (candidates come
// in bursts at an offer); more is a fault or an attack, and each message
// may cost the room (a chat or mute goes to everyone).
const (
	msgRate  = 20 // per second
	msgBurst = 60
)

// bucket is a token bucket.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate, burst float64) *bucket {
	return &bucket{rate: rate, burst: burst, tokens: burst}
}

// take takes a token at now, false when none is left.
func (b *bucket) take(now time.Time) bool {
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func asSignalError(err error) *signal.Error {
	var e *signal.Error
	if errors.As(err, &e) {
		return e
	}
	return &signal.Error{Code: signal.CodeBadJSON, Message: err.Error()}
}

// join reads the join message and admits the participant, or refuses and
// closes.
func (s *SFU) join(c *conn, host string) *participant {
	kind, data, err := c.ws.ReadMessage()
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.fail(&signal.Error{Code: "join_timeout", Message: "no join message within 10 s"}, closeBadRequest)
		} else {
			c.close(websocket.CloseNormalClosure, "")
		}
		return nil
	}
	if kind != websocket.TextMessage {
		c.fail(&signal.Error{Code: signal.CodeBadJSON, Message: "messages are JSON text frames"}, closeBadRequest)
		return nil
	}
	m, err := signal.Decode(data)
	if err != nil {
		c.fail(asSignalError(err), closeBadRequest)
		return nil
	}
	if m.Type != signal.TypeJoin {
		c.fail(&signal.Error{Code: "not_joined", Message: "the first message must be join"}, closeBadRequest)
		return nil
	}
	claims, err := s.p.Verify(m.Token)
	if err != nil {
		msg := "the join token is not valid: ask the host for a new link"
		if errors.Is(err, auth.ErrTokenExpired) {
			msg = "the join token has expired: ask the host for a new link"
		}
		c.fail(&signal.Error{Code: "bad_token", Field: "token", Message: msg}, closeUnauthorized)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if s.p.CheckJoin != nil {
		if err := s.p.CheckJoin(ctx, claims); err != nil {
			cancel()
			c.fail(&signal.Error{Code: "bad_token", Field: "token", Message: err.Error()}, closeUnauthorized)
			return nil
		}
	}
	rec, err := s.rooms.Room(ctx, orgs.ID(claims.Org), claims.Room)
	cancel()
	if err != nil {
		if errors.Is(err, rooms.ErrRoomNotFound) || errors.Is(err, orgs.ErrOutOfScope) {
			c.fail(&signal.Error{Code: "room_not_found", Message: "the meeting room no longer exists"}, closeNotFound)
		} else {
			s.log.Error("meeting room not read", "room", claims.Room, "err", err)
			c.fail(&signal.Error{Code: "internal", Message: "the room could not be read; try again"}, websocket.CloseInternalServerErr)
		}
		return nil
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.close(websocket.CloseGoingAway, "closed")
		return nil
	}
	r := s.live[rec.ID]
	if r == nil {
		r = &Room{sfu: s, id: rec.ID, name: rec.Name, org: rec.OrgID, participants: map[string]*participant{},
			locked: rec.Locked, removed: map[string]bool{}, admitted: map[string]bool{}, lobby: map[string]*participant{}, done: make(chan struct{})}
		s.live[rec.ID] = r
		s.metrics.rooms.Set(float64(len(s.live)))
		r.wg.Add(1)
		go r.run()
	}
	p := newParticipant(r, claims, c)
	p.joinID, p.host = m.ID, host
	p.expires = time.Now().Add(4 * time.Hour)
	if claims.ExpiresAt != nil {
		p.expires = claims.ExpiresAt.Time
	}
	r.mu.Lock()
	r.maxParticipants = max(rec.MaxParticipants, 1)
	var refusal *signal.Error
	var waitingOld *participant
	old := r.participants[p.identity]
	waits := false
	switch {
	case r.removed[p.identity]:
		refusal = &signal.Error{Code: "removed", Message: "the host removed you from this meeting"}
	case claims.Lobby && !p.rights.Admin && !r.admitted[p.identity]:
		// Waits for a host, however full or locked the room is: the
		// host decides on admission.
		waits = true
		waitingOld = r.lobby[p.identity]
		p.waiting.Store(true)
		r.lobby[p.identity] = p
	case r.locked && !p.rights.Admin && !r.admitted[p.identity]:
		refusal = &signal.Error{Code: "room_locked", Message: "the meeting is locked: ask the host to unlock it"}
	case old == nil && len(r.participants) >= r.maxParticipants:
		refusal = &signal.Error{Code: "room_full", Message: "the meeting has its maximum of participants"}
	}
	if refusal == nil && !waits {
		r.participants[p.identity] = p
		// Admitted once, admitted again while the room lasts: a lock
		// keeps newcomers out, not someone whose phone dropped.
		r.admitted[p.identity] = true
	}
	empty := r.emptyLocked()
	r.mu.Unlock()
	s.mu.Unlock()
	if refusal != nil {
		c.fail(refusal, closeForbidden)
		if empty {
			s.roomEmpty(r)
		}
		return nil
	}
	if waits {
		if waitingOld != nil {
			waitingOld.send(&signal.ServerMessage{Type: signal.TypeParticipantLeft, Identity: waitingOld.identity, Reason: signal.LeftReplaced})
			waitingOld.conn.closeAfter(signal.LeftReplaced)
		}
		p.send(&signal.ServerMessage{Type: signal.TypeLobby, ID: m.ID, State: "waiting", Self: p.self(), Room: &signal.RoomInfo{ID: r.id, Name: r.name}})
		s.log.Info("meeting participant waits in the lobby", "room", r.id, "identity", p.identity)
		r.tellLobby()
		return p
	}
	if old != nil {
		// The same identity again (a reconnect, another device): the
		// new connection wins.
		old.send(&signal.ServerMessage{Type: signal.TypeParticipantLeft, Identity: old.identity, Reason: signal.LeftReplaced})
		r.replaced(old)
	}
	r.enter(p)
	return p
}

// enter tells p it joined and the others that it came, and subscribes it
// to what is published.
func (r *Room) enter(p *participant) {
	s := r.sfu
	r.announce.Lock()
	others := []signal.Participant{}
	for _, o := range r.snapshot() {
		if o != p {
			others = append(others, o.info())
		}
	}
	r.mu.Lock()
	spot, locked := r.spotlight, r.locked
	r.mu.Unlock()
	joined := &signal.ServerMessage{Type: signal.TypeJoined, ID: p.joinID, Self: p.self(),
		Room: &signal.RoomInfo{ID: r.id, Name: r.name, Locked: locked}, Participants: others, Spotlight: signal.Ptr(spot)}
	if s.p.ICEServers != nil {
		joined.ICEServers = s.p.ICEServers(p.identity, p.host, p.expires)
	}
	p.send(joined)
	r.announce.Unlock()
	info := p.info()
	r.broadcast(&signal.ServerMessage{Type: signal.TypeParticipantJoined, Participant: &info}, p)
	s.log.Info("meeting participant joined", "room", r.id, "identity", p.identity, "role", p.role)
	s.metrics.joined(r.id)
	if p.rights.Admin {
		p.send(r.lobbyMessage())
	}

	if p.rights.Subscribe {
		if err := p.startSubscriber(); err != nil {
			s.log.Warn("meeting subscriber connection not made", "room", r.id, "identity", p.identity, "err", err)
			p.fail(&signal.Error{Code: "internal", Message: "the media connection could not be made"}, "")
		} else {
			for _, o := range r.snapshot() {
				if o == p {
					continue
				}
				o.mu.Lock()
				tracks := make([]*upTrack, 0, len(o.published))
				for u := range o.published {
					tracks = append(tracks, u)
				}
				o.mu.Unlock()
				for _, u := range tracks {
					p.subscribe(u)
				}
			}
			p.negotiate()
		}
	}
}

// replaced ends an earlier connection of the same identity, which the new
// one has taken the place of.
func (r *Room) replaced(old *participant) {
	r.unpublishAll(old)
	old.conn.closeAfter(signal.LeftReplaced)
}

// roomEmpty ends a room nobody is in any more.
func (s *SFU) roomEmpty(r *Room) {
	s.mu.Lock()
	r.mu.Lock()
	end := r.emptyLocked() && !r.closed && s.live[r.id] == r
	if end {
		r.closed = true
		delete(s.live, r.id)
		s.metrics.rooms.Set(float64(len(s.live)))
	}
	r.mu.Unlock()
	s.mu.Unlock()
	if end {
		close(r.done)
		s.metrics.roomEnded(r.id)
	}
}

// end ends a room whoever is in it: taken out of the rooms in progress
// first (a join from now on makes a new room, which the store refuses if
// the room was deleted), then everyone leaves with reason.
func (s *SFU) end(r *Room, reason string) {
	s.mu.Lock()
	r.mu.Lock()
	first := !r.closed
	r.closed = true
	if s.live[r.id] == r {
		delete(s.live, r.id)
	}
	s.metrics.rooms.Set(float64(len(s.live)))
	r.mu.Unlock()
	s.mu.Unlock()
	r.close(reason)
	if first {
		close(r.done)
		s.metrics.roomEnded(r.id)
	}
	r.wg.Wait()
}

// SetLocked tells a room in progress that the console locked or unlocked
// it.
func (s *SFU) SetLocked(room string, locked bool, by string) {
	s.mu.Lock()
	r := s.live[room]
	s.mu.Unlock()
	if r != nil {
		r.setLocked(locked, by)
	}
}

// CloseRoom ends a room in progress (it was deleted): everyone leaves.
func (s *SFU) CloseRoom(room string) {
	s.mu.Lock()
	r := s.live[room]
	s.mu.Unlock()
	if r != nil {
		s.end(r, signal.LeftClosed)
	}
}

// Participants lists who is in each room in progress.
func (s *SFU) Participants() map[string][]string {
	s.mu.Lock()
	rooms := make([]*Room, 0, len(s.live))
	for _, r := range s.live {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	out := map[string][]string{}
	for _, r := range rooms {
		for _, p := range r.snapshot() {
			out[r.id] = append(out[r.id], p.identity)
		}
	}
	return out
}

// Close ends every room and waits for the signaling connections.
func (s *SFU) Close() {
	s.mu.Lock()
	s.closed = true
	rooms := make([]*Room, 0, len(s.live))
	for _, r := range s.live {
		rooms = append(rooms, r)
	}
	recorded := make([]string, 0, len(s.recordings))
	for room := range s.recordings {
		recorded = append(recorded, room)
	}
	s.mu.Unlock()
	for _, r := range rooms {
		s.end(r, signal.LeftClosed)
	}
	// The recordings' files are finished: the server is stopping.
	for _, room := range recorded {
		s.StopRecording(room)
	}
	s.conns.Wait()
	s.fan.stop()
}

// audit records a host action.
func (s *SFU) audit(r *Room, actor, action string, detail map[string]any) {
	if s.p.Audit == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.p.Audit.Record(ctx, "participant:"+actor, r.org, action, "room:"+r.id, "ok", detail); err != nil {
		s.log.Error("audit entry not written", "action", action, "room", r.id, "err", err)
	}
}

func expNeg(x float64) float64 { return math.Exp(-x) }
