// Package events is the console's live event bus: alert, device, command,
// camera and wall changes, fanned out to the browsers that follow them over
// server-sent events (GET /api/v1/events, see ServeSSE).
//
// Every event has an id "<epoch>-<seq>": the epoch is the bus's start in
// Unix milliseconds, seq counts from 1. The bus keeps the newest events in a
// bounded replay ring, so a client that reconnects with Last-Event-ID is
// handed exactly what it missed; when that cannot be done (the server
// restarted, the id is malformed, or it is older than the ring) the
// subscription says so with Gap and the client reloads its state.
//
// Each subscription carries a filter, decided by the caller (organisation
// scoping: the package knows nothing of users or scopes), and a bounded
// queue. Publish never waits for a listener: one whose queue is full is cut
// off with ErrLagging and comes back through the replay ring. The bus runs
// no goroutines of its own; its memory is the ring plus one queue per
// subscription (about 128 KiB at the default 1024 events).
package events

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lookout-cc/lookout/internal/orgs"
)

// Event types the console follows.
const (
	TypeAlert   = "alert"
	TypeDevice  = "device"
	TypeCommand = "command"
	TypeCamera  = "camera"
	TypeWall    = "wall"
)

// Defaults for Params and ServeSSE.
const (
	DefaultReplaySize      = 10000
	DefaultSubscriberQueue = 1024
	DefaultHeartbeat       = 15 * time.Second
)

// Event is one change, as every listener sees it. Events are values; Data
// is shared by every copy of an event and must not be modified.
type Event struct {
	ID    string          `json:"id"` // "<epoch>-<seq>": epoch = the bus's start in Unix ms, seq from 1
	Seq   uint64          `json:"-"`
	Type  string          `json:"type"` // "alert", "device", "command", "camera", "wall"
	OrgID orgs.ID         `json:"org_id"`
	At    time.Time       `json:"at"`
	Data  json.RawMessage `json:"data"` // the payload, a JSON object, marshalled once at Publish

	frame []byte // the SSE message; Data is a slice of it
}

// Params configure a Bus. Zero fields take their defaults; negative sizes
// are a programming error and panic.
type Params struct {
	ReplaySize      int              // events kept for Last-Event-ID; default 10000
	SubscriberQueue int              // events buffered per subscriber; default 1024
	Now             func() time.Time // default time.Now
}

// Bus assigns ids to events, keeps the newest in a replay ring and hands
// them to subscribers. Its methods are safe for concurrent use.
//
// One mutex orders everything: Publish assigns the sequence number, fills
// the ring and offers the event to every queue under it, so each listener
// sees events in id order and Subscribe can take the replay and register in
// one step. What runs under it is short: building the event (two small
// allocations), then a filter call and a non-blocking channel send per
// subscriber.
type Bus struct {
	now   func() time.Time
	epoch int64
	queue int

	mu     sync.Mutex
	seq    uint64  // of the newest event
	ring   []Event // the event with sequence s is at ring[s%len(ring)]
	subs   []*Subscription
	closed bool
}

// NewBus returns an open bus whose epoch is p.Now() in Unix milliseconds.
func NewBus(p Params) *Bus {
	if p.ReplaySize < 0 || p.SubscriberQueue < 0 {
		panic("events: negative ReplaySize or SubscriberQueue")
	}
	if p.ReplaySize == 0 {
		p.ReplaySize = DefaultReplaySize
	}
	if p.SubscriberQueue == 0 {
		p.SubscriberQueue = DefaultSubscriberQueue
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return &Bus{
		now:   p.Now,
		epoch: p.Now().UnixMilli(),
		queue: p.SubscriberQueue,
		ring:  make([]Event, p.ReplaySize),
	}
}

// Publish assigns the next id, keeps the event in the replay ring and hands
// it to every subscriber whose filter allows it. It never blocks: a
// subscriber whose queue is full is cut off (its channel closed, Err() =
// ErrLagging) and reconnects with Last-Event-ID.
//
// data is marshalled with encoding/json, once, and must make a JSON object.
// If it cannot be marshalled, is not an object, or typ is not a valid event
// name (a-z, 0-9, '_', '.', '-'; not gap, lagging, error, open or message),
// the error is returned and nothing is published; after Close it returns
// ErrClosed.
func (b *Bus) Publish(typ string, org orgs.ID, data any) (Event, error) {
	if err := checkType(typ); err != nil {
		return Event{}, err
	}
	enc := encoders.Get().(*encoder)
	defer putEncoder(enc)
	payload, err := enc.marshalData(data)
	if err != nil {
		return Event{}, err
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return Event{}, ErrClosed
	}
	ev := Event{Seq: b.seq + 1, Type: typ, OrgID: org, At: b.now().Round(0)}
	ev.ID = formatID(b.epoch, ev.Seq)
	if err := setFrame(&ev, payload); err != nil {
		return Event{}, err
	}
	b.seq = ev.Seq
	b.ring[ev.Seq%uint64(len(b.ring))] = ev
	// Backwards, so that cutting off subs[i] (which moves the last
	// subscriber into slot i) never skips one not yet offered the event.
	for i := len(b.subs) - 1; i >= 0; i-- {
		s := b.subs[i]
		if s.allow == nil || s.allow(ev) {
			select {
			case s.ch <- ev:
			default:
				b.endLocked(s, ErrLagging)
				continue
			}
		}
		s.pos.Store(ev.Seq)
	}
	return ev, nil
}

// Subscribe registers a listener. allow filters events (nil: all); it is
// called under the bus's lock for every event published (and every replayed
// one), so it must be quick, must not block and must not call the Bus.
//
// lastEventID "" means only new events. Otherwise the events after it that
// allow accepts are in Missed (oldest first), taken atomically with the
// registration: no event is lost or doubled between replay and live. Gap
// is true when lastEventID cannot be served: it is from another epoch (the
// server restarted), malformed, or older than the ring. Then Missed is
// empty and the client must reload its state.
//
// On a closed bus the subscription is returned already ended (ErrClosed).
// The caller must Close the subscription when done with it.
func (b *Bus) Subscribe(allow func(Event) bool, lastEventID string) *Subscription {
	s := &Subscription{bus: b, allow: allow, ch: make(chan Event, b.queue), idx: -1}

	b.mu.Lock()
	defer b.mu.Unlock()
	s.start = b.seq
	s.pos.Store(b.seq)
	if b.closed {
		s.err = ErrClosed
		close(s.ch)
		return s
	}
	if lastEventID != "" {
		s.Missed, s.gapReason = b.replayLocked(allow, lastEventID)
		s.Gap = s.gapReason != ""
	}
	s.idx = len(b.subs)
	b.subs = append(b.subs, s)
	return s
}

// Gap reasons, sent to the client in the gap event.
const (
	gapRestarted = "the server restarted since this id; reload state"
	gapMalformed = "the Last-Event-ID is not one this server issued; reload state"
	gapExpired   = "the events after this id are no longer kept; reload state"
)

// replayLocked returns the events after lastEventID that allow accepts, or
// why they cannot be served.
func (b *Bus) replayLocked(allow func(Event) bool, lastEventID string) (missed []Event, gap string) {
	epoch, after, ok := parseID(lastEventID)
	switch {
	case !ok:
		return nil, gapMalformed
	case epoch != b.epoch:
		return nil, gapRestarted
	case after > b.seq:
		return nil, gapMalformed
	}
	oldest := uint64(1)
	if n := uint64(len(b.ring)); b.seq > n {
		oldest = b.seq - n + 1
	}
	if after+1 < oldest {
		return nil, gapExpired
	}
	for seq := after + 1; seq <= b.seq; seq++ {
		ev := b.ring[seq%uint64(len(b.ring))]
		if allow == nil || allow(ev) {
			missed = append(missed, ev)
		}
	}
	return missed, ""
}

// endLocked removes s from the bus and closes its channel, with err as the
// reason. It does nothing if s has ended already.
func (b *Bus) endLocked(s *Subscription, err error) {
	if s.idx < 0 {
		return
	}
	last := len(b.subs) - 1
	b.subs[s.idx] = b.subs[last]
	b.subs[s.idx].idx = s.idx
	b.subs[last] = nil
	b.subs = b.subs[:last]
	s.idx = -1
	s.err = err
	close(s.ch)
}

// Close ends every subscription with ErrClosed; later Publish calls return
// ErrClosed and later subscriptions start ended. It is idempotent. Closing
// the bus is how a shutting-down server ends its event streams, which
// http.Server.Shutdown does not do by itself.
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for len(b.subs) > 0 {
		b.endLocked(b.subs[len(b.subs)-1], ErrClosed)
	}
}

// Subscribers returns the number of open subscriptions.
func (b *Bus) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Subscription is one listener's view of the bus: the events it missed,
// then a channel of live ones. It is created by Subscribe and lives until
// it falls behind (ErrLagging), it or the bus is closed (ErrClosed).
type Subscription struct {
	// Missed holds the replayed events after the Last-Event-ID, oldest
	// first; every live event on C() is newer than all of them.
	Missed []Event
	// Gap is true when the Last-Event-ID could not be served; the client
	// must reload its state.
	Gap bool

	bus       *Bus
	allow     func(Event) bool
	ch        chan Event
	gapReason string // why Gap, for the client
	start     uint64 // sequence of the newest event when subscribed
	// pos is the sequence of the newest event offered to this subscription
	// (sent on ch or refused by allow). Once everything sent on ch has been
	// received, every event up to pos the listener may see has been seen, so
	// pos is a safe place to resume from (see ServeSSE's heartbeat).
	pos atomic.Uint64

	idx int   // in bus.subs, -1 once ended; guarded by bus.mu
	err error // why it ended; guarded by bus.mu
}

// C returns the channel of live events, in id order. It is closed when the
// subscription ends; Err then says why.
func (s *Subscription) C() <-chan Event { return s.ch }

// Err returns why the channel was closed: ErrLagging or ErrClosed; nil
// while the subscription is open.
func (s *Subscription) Err() error {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	return s.err
}

// Close ends the subscription (Err() = ErrClosed, unless it ended already)
// and closes its channel. It is idempotent.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	s.bus.endLocked(s, ErrClosed)
}
