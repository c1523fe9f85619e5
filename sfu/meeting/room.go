package meeting

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/pion/webrtc/v4"

	"github.com/lookout-cc/lookout/internal/orgs"
	"github.com/lookout-cc/lookout/sfu/signal"
)

// Room is a meeting in progress: who is in it and what they publish.
//
// Lifecycle: made by the SFU at the first join; run ticks speakers,
// bandwidth allocation and stats until the last participant leaves or the
// room is closed.
type Room struct {
	sfu  *SFU
	id   string
	name string
	org  orgs.ID

	mu           sync.Mutex
	participants map[string]*participant
	// maxParticipants is the room's limit, as last read from the store.
	maxParticipants int
	locked          bool
	spotlight       string
	// removed are the identities a host removed: refused until the room
	// ends.
	removed map[string]bool
	// admitted are the identities that were in the room: they come back
	// into a locked room.
	admitted map[string]bool
	// lobby are those who wait for a host to admit them (lobby.go).
	lobby  map[string]*participant
	closed bool

	// announce orders the room's announcements (broadcast) against a
	// newcomer's joined message (enter), which lists the room as it is:
	// a change announced before the list was taken is in it, and one
	// made after is announced after it. Without it, two participants
	// joining at once could each be told of the other before getting a
	// list taken without them, which the client takes as the room.
	announce sync.Mutex

	speakers []string
	done     chan struct{}
	wg       sync.WaitGroup
}

// Ticks of a room.
const (
	speakerTick  = 100 * time.Millisecond
	allocateTick = 500 * time.Millisecond
	statsTick    = time.Second
	// speakerTau is the smoothing time of the audio levels.
	speakerTau = 300 * time.Millisecond
	// speakingLevel is the smoothed activity (0-1) above which a
	// participant speaks: about -45 dBov.
	speakingLevel = 0.62
	maxSpeakers   = 3
)

func (r *Room) snapshot() []*participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*participant, 0, len(r.participants))
	for _, p := range r.participants {
		out = append(out, p)
	}
	return out
}

// broadcast sends m to everyone but except.
func (r *Room) broadcast(m *signal.ServerMessage, except *participant) {
	r.announce.Lock()
	defer r.announce.Unlock()
	for _, p := range r.snapshot() {
		if p != except {
			p.send(m)
		}
	}
}

// publish takes a track, or one more layer of one, from p.
func (r *Room) publish(p *participant, remote *webrtc.TrackRemote, layer int, source string, levelExt uint8) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	var u *upTrack
	for t := range p.published {
		if t.clientID == remote.ID() && t.kind == remote.Kind() {
			u = t
		}
	}
	isNew := u == nil
	if isNew && p.countKind(remote.Kind()) >= maxTracksPerKind {
		p.mu.Unlock()
		r.sfu.log.Warn("meeting track refused: too many", "room", r.id, "identity", p.identity, "kind", remote.Kind().String())
		return
	}
	if isNew {
		u = newUpTrack(p, remote, source, levelExt)
		u.clientID = remote.ID()
		if p.mutedKinds[remote.Kind()] && source != signal.SourceScreen && source != signal.SourceScreenAudio || p.hostMuted[remote.Kind()] {
			u.muted.Store(true)
		}
		p.published[u] = struct{}{}
	}
	p.mu.Unlock()
	if !u.addLayer(layer, remote) {
		return
	}
	if !isNew {
		return
	}
	r.sfu.log.Debug("meeting track published", "room", r.id, "identity", p.identity, "track", u.id, "kind", u.kind.String(), "source", source, "codec", u.codec.MimeType, "simulcast", u.simulcast)
	r.sfu.recordTrack(r, u)
	info := u.info()
	r.broadcast(&signal.ServerMessage{Type: signal.TypeTrackPublished, Identity: p.identity, Track: &info}, nil)
	for _, s := range r.snapshot() {
		if s != p && s.rights.Subscribe && s.subscribe(u) {
			s.negotiate()
		}
	}
}

// trackEnded is told when a layer's reading ended; when the last has, the
// track is unpublished.
func (r *Room) trackEnded(u *upTrack, layer int) {
	u.mu.Lock()
	u.layers[layer] = nil
	left := 0
	for _, l := range u.layers {
		if l != nil {
			left++
		}
	}
	if left == 0 {
		u.ended = true
	}
	u.mu.Unlock()
	if left > 0 {
		return
	}
	u.closeTaps()
	p := u.pub
	p.mu.Lock()
	_, ok := p.published[u]
	delete(p.published, u)
	closed := p.closed
	p.mu.Unlock()
	if !ok {
		return
	}
	for _, s := range r.snapshot() {
		if s.unsubscribe(u) {
			s.negotiate()
		}
	}
	if !closed {
		info := u.info()
		r.broadcast(&signal.ServerMessage{Type: signal.TypeTrackUnpublished, Identity: p.identity, Track: &info}, nil)
	}
}

// leave removes p from the room and tells the others why.
func (r *Room) leave(p *participant, reason string) {
	r.mu.Lock()
	if r.lobby[p.identity] == p {
		r.mu.Unlock()
		r.leaveLobby(p, reason)
		return
	}
	r.mu.Unlock()
	// A host's admission may be entering p now: it finishes first, so
	// that the others are told p joined before they are told p left.
	p.entering.Lock()
	//lint:ignore SA2001 the empty section is the barrier
	p.entering.Unlock()
	r.mu.Lock()
	if r.participants[p.identity] != p {
		r.mu.Unlock()
		return
	}
	delete(r.participants, p.identity)
	spotlightEnded := r.spotlight == p.identity
	if spotlightEnded {
		r.spotlight = ""
	}
	empty := r.emptyLocked()
	r.mu.Unlock()

	r.unpublishAll(p)
	r.sfu.metrics.forget(r.id, p.identity)
	r.sfu.log.Info("meeting participant left", "room", r.id, "identity", p.identity, "reason", reason)
	r.broadcast(&signal.ServerMessage{Type: signal.TypeParticipantLeft, Identity: p.identity, Reason: reason}, nil)
	if spotlightEnded {
		r.broadcast(&signal.ServerMessage{Type: signal.TypeSpotlight, Spotlight: signal.Ptr("")}, nil)
	}
	if reason == signal.LeftClosed || reason == signal.LeftTimeout {
		// Told too, when its signaling still reaches it.
		p.send(&signal.ServerMessage{Type: signal.TypeParticipantLeft, Identity: p.identity, Reason: reason})
	}
	p.conn.closeAfter(reason)
	if empty {
		r.sfu.roomEmpty(r)
	}
}

// unpublishAll ends the connections of p, who left, and its tracks, and
// tells the others. The tracks are taken first: the read loops ending with
// the connection tell no one once p is closed.
func (r *Room) unpublishAll(p *participant) {
	published, _ := p.shut()
	for _, u := range published {
		u.end()
		info := u.info()
		for _, s := range r.snapshot() {
			if s.identity == p.identity { // p, or who replaced it
				continue
			}
			if s.unsubscribe(u) {
				s.negotiate()
			}
			s.send(&signal.ServerMessage{Type: signal.TypeTrackUnpublished, Identity: p.identity, Track: &info})
		}
	}
}

// maxTracksPerKind bounds what one participant publishes: a camera and a
// screen share, a microphone and the screen's sound.
const maxTracksPerKind = 2

// countKind counts p's tracks of kind; p.mu held.
func (p *participant) countKind(kind webrtc.RTPCodecType) int {
	n := 0
	for u := range p.published {
		if u.kind == kind {
			n++
		}
	}
	return n
}

// setMuted mutes or unmutes p's audio or video; by is the host who muted,
// "" for p themself. A participant's own mute is of their camera or
// microphone; a host's is of every track of the kind (a screen's sound
// too, whatever the client calls its tracks), and stays until the
// participant unmutes.
func (r *Room) setMuted(p *participant, kind string, muted bool, by string) {
	k := webrtc.NewRTPCodecType(kind)
	p.mu.Lock()
	p.mutedKinds[k] = muted
	wasHostMuted := p.hostMuted[k]
	if by != "" {
		p.hostMuted[k] = muted
	} else if !muted {
		p.hostMuted[k] = false
	}
	var changed []*upTrack
	for u := range p.published {
		if u.kind != k {
			continue
		}
		screen := u.source == signal.SourceScreen || u.source == signal.SourceScreenAudio
		if screen && by == "" && !wasHostMuted {
			continue
		}
		if u.muted.Swap(muted) != muted {
			changed = append(changed, u)
		}
	}
	p.mu.Unlock()
	if !muted {
		for _, u := range changed {
			// Each subscriber starts afresh, at a keyframe, so the
			// silence is no gap in its sequence.
			for _, d := range *u.downs.Load() {
				d.rebase()
			}
			u.requestKeyframe(layerLow)
			u.requestKeyframe(layerMedium)
			u.requestKeyframe(layerHigh)
		}
	}
	if len(changed) == 0 && by == "" {
		return // nothing changed: not announced again
	}
	r.broadcast(&signal.ServerMessage{Type: signal.TypeMuteChanged, Identity: p.identity, Kind: kind, Muted: signal.Ptr(muted), By: by}, nil)
}

// requestLayer records the quality p wants of a publisher's video.
func (r *Room) requestLayer(p *participant, m signal.ClientMessage) {
	q := map[string]int{"high": layerHigh, "medium": layerMedium, "low": layerLow, "off": layerOff}[m.Quality]
	r.mu.Lock()
	_, known := r.participants[m.Identity]
	r.mu.Unlock()
	if !known {
		p.fail(&signal.Error{Code: "no_participant", Field: "identity", Message: "no such participant in the room"}, m.ID)
		return
	}
	p.downMu.Lock()
	p.requested[m.Identity] = q
	for u, d := range p.downs {
		if u.pub.identity == m.Identity && u.kind == webrtc.RTPCodecTypeVideo && u.source == signal.SourceCamera {
			d.requested.Store(int32(q))
		}
	}
	p.downMu.Unlock()
	r.allocate(p)
}

// host carries out a host control.
func (r *Room) host(p *participant, m signal.ClientMessage) {
	if !p.rights.Admin {
		p.fail(errForbidden("action", "host controls need the admin right"), m.ID)
		return
	}
	switch m.Action {
	case signal.HostAdmit, signal.HostReject:
		err := r.admit
		if m.Action == signal.HostReject {
			err = r.reject
		}
		switch e := err(m.Identity, p.identity); {
		case errors.Is(e, ErrNotWaiting):
			p.fail(&signal.Error{Code: "not_waiting", Field: "identity", Message: "no one of that identity waits in the lobby"}, m.ID)
		case errors.Is(e, ErrRoomFull):
			p.fail(&signal.Error{Code: "room_full", Message: "the meeting has its maximum of participants"}, m.ID)
		}
		return // audited by admit and reject
	}
	var target *participant
	if m.Identity != "" {
		r.mu.Lock()
		target = r.participants[m.Identity]
		r.mu.Unlock()
		if target == nil {
			p.fail(&signal.Error{Code: "no_participant", Field: "identity", Message: "no such participant in the room"}, m.ID)
			return
		}
	}
	detail := map[string]any{"identity": m.Identity}
	switch m.Action {
	case signal.HostMute:
		r.setMuted(target, m.Kind, true, p.identity)
		detail["kind"] = m.Kind
	case signal.HostRemove:
		r.mu.Lock()
		r.removed[target.identity] = true
		r.mu.Unlock()
		target.send(&signal.ServerMessage{Type: signal.TypeRemoved, By: p.identity})
		r.leave(target, signal.LeftRemoved)
	case signal.HostLock:
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := r.sfu.rooms.SetLocked(ctx, r.org, r.id, *m.Locked)
		cancel()
		if err != nil {
			r.sfu.log.Warn("meeting lock not stored", "room", r.id, "err", err)
			p.fail(&signal.Error{Code: "internal", Message: "the room's lock could not be stored"}, m.ID)
			return
		}
		r.setLocked(*m.Locked, p.identity)
		detail["locked"] = *m.Locked
	case signal.HostSpotlight:
		r.mu.Lock()
		r.spotlight = m.Identity
		r.mu.Unlock()
		r.broadcast(&signal.ServerMessage{Type: signal.TypeSpotlight, Spotlight: signal.Ptr(m.Identity), By: p.identity}, nil)
		if target != nil {
			// Roll call: the microphone is opened by the participant,
			// on consent, never by the server.
			target.send(&signal.ServerMessage{Type: signal.TypeUnmuteRequest, Kind: "audio", By: p.identity})
		}
		for _, s := range r.snapshot() {
			r.allocate(s)
		}
	}
	r.sfu.audit(r, p.identity, "meeting."+m.Action, detail)
}

// setLocked records the room's lock and tells everyone.
func (r *Room) setLocked(locked bool, by string) {
	r.mu.Lock()
	r.locked = locked
	r.mu.Unlock()
	r.broadcast(&signal.ServerMessage{Type: signal.TypeRoomLocked, Locked: signal.Ptr(locked), By: by}, nil)
}

// chatFromChannel takes a chat message from p's data channel: {"text": ...}.
func (r *Room) chatFromChannel(p *participant, data []byte) {
	var in struct {
		Text string `json:"text"`
	}
	if json.Unmarshal(data, &in) != nil {
		p.fail(&signal.Error{Code: signal.CodeBadJSON, Message: "a chat message is {\"text\": ...}"}, "")
		return
	}
	r.chat(p, in.Text, "")
}

// chat relays a chat message to everyone, with the sender and time set by
// the server.
func (r *Room) chat(p *participant, text, id string) {
	if !p.rights.PublishData {
		p.fail(errForbidden("text", "this participant may not send chat messages"), id)
		return
	}
	p.chatMu.Lock()
	ok := p.chatLimit.take(time.Now())
	p.chatMu.Unlock()
	if !ok {
		p.fail(&signal.Error{Code: "rate_limited", Field: "text", Message: "at most 2 chat messages a second"}, id)
		return
	}
	text = strings.TrimSpace(text)
	if text == "" || len(text) > signal.MaxChat || !utf8.ValidString(text) {
		p.fail(&signal.Error{Code: signal.CodeBadField, Field: "text", Message: "is 1-2000 bytes of UTF-8 text"}, id)
		return
	}
	m := &signal.ServerMessage{Type: signal.TypeChat, Identity: p.identity, Name: p.name, Text: text, At: time.Now().UTC().Format(time.RFC3339Nano)}
	data := m.Encode()
	for _, s := range r.snapshot() {
		s.negMu.Lock()
		dc := s.chatOut
		s.negMu.Unlock()
		if dc != nil && dc.ReadyState() == webrtc.DataChannelStateOpen && dc.SendText(string(data)) == nil {
			continue
		}
		s.send(m)
	}
}

// run ticks the room until it ends.
func (r *Room) run() {
	defer r.wg.Done()
	speak := time.NewTicker(speakerTick)
	alloc := time.NewTicker(allocateTick)
	stats := time.NewTicker(statsTick)
	reports := time.NewTicker(reportInterval)
	defer reports.Stop()
	defer speak.Stop()
	defer alloc.Stop()
	defer stats.Stop()
	levels := map[*upTrack]float64{}
	lastStats := time.Now()
	for {
		select {
		case <-r.done:
			return
		case <-speak.C:
			r.tickSpeakers(levels)
		case <-alloc.C:
			for _, p := range r.snapshot() {
				r.allocate(p)
			}
		case now := <-stats.C:
			r.tickStats(now.Sub(lastStats))
			lastStats = now
		case <-reports.C:
			for _, p := range r.snapshot() {
				p.sendReports()
			}
		}
	}
}

// tickSpeakers smooths each microphone's level and tells the room when the
// list of who speaks changes.
func (r *Room) tickSpeakers(levels map[*upTrack]float64) {
	alpha := 1 - expNeg(float64(speakerTick)/float64(speakerTau))
	type spk struct {
		identity string
		level    float64
	}
	var active []spk
	seen := map[*upTrack]bool{}
	for _, p := range r.snapshot() {
		best := 0.0
		p.mu.Lock()
		for u := range p.published {
			if u.kind != webrtc.RTPCodecTypeAudio {
				continue
			}
			seen[u] = true
			sum, n := u.levelSum.Swap(0), u.levelN.Swap(0)
			sample := 0.0
			if n > 0 && !u.muted.Load() {
				sample = float64(sum) / float64(n) / 1000
			}
			l := levels[u] + alpha*(sample-levels[u])
			levels[u] = l
			best = max(best, l)
		}
		p.mu.Unlock()
		if best >= speakingLevel {
			active = append(active, spk{p.identity, best})
		}
	}
	for u := range levels {
		if !seen[u] {
			delete(levels, u)
		}
	}
	slices.SortFunc(active, func(a, b spk) int {
		switch {
		case a.level > b.level:
			return -1
		case a.level < b.level:
			return 1
		}
		return strings.Compare(a.identity, b.identity)
	})
	if len(active) > maxSpeakers {
		active = active[:maxSpeakers]
	}
	ids := make([]string, len(active))
	out := make([]signal.Speaker, len(active))
	for i, a := range active {
		ids[i] = a.identity
		out[i] = signal.Speaker{Identity: a.identity, Level: float64(int(a.level*100)) / 100}
	}
	if slices.Equal(ids, r.speakers) {
		return
	}
	r.speakers = ids
	r.broadcast(&signal.ServerMessage{Type: signal.TypeSpeakers, Speakers: out}, nil)
}

// close ends the room: everyone leaves with reason.
func (r *Room) close(reason string) {
	r.mu.Lock()
	waiting := make([]*participant, 0, len(r.lobby))
	for _, p := range r.lobby {
		waiting = append(waiting, p)
	}
	r.mu.Unlock()
	for _, p := range waiting {
		r.leave(p, reason)
	}
	for _, p := range r.snapshot() {
		r.leave(p, reason)
	}
}
