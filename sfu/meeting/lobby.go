package meeting

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/lookout-cc/lookout/sfu/signal"
)

// The lobby: one whose join token says lobby (a resident joining a
// hearing by its link) waits, connected but seeing and sending nothing,
// until a host admits them (then they enter like any participant, and come
// back without waiting while the room lasts) or rejects them (then they
// are refused until the room ends). Hosts are told who waits at once, over
// signaling (lobby messages) or through the console's API (Lobby, Admit,
// Reject), and every decision is audited.

// Errors of Admit and Reject.
var (
	// ErrNotWaiting: no one of that identity waits in the room's lobby
	// (or the room is not in progress).
	ErrNotWaiting = errors.New("no one of that identity waits in the lobby")
	// ErrRoomFull: the room has its maximum of participants.
	ErrRoomFull = errors.New("the meeting has its maximum of participants")
)

// Lobby lists who waits in room's lobby, longest waiting first; none when
// the room is not in progress.
func (s *SFU) Lobby(room string) []signal.LobbyEntry {
	r := s.liveRoom(room)
	if r == nil {
		return []signal.LobbyEntry{}
	}
	return r.lobbyEntries()
}

// Admit lets identity, waiting in room's lobby, in; by is the host.
func (s *SFU) Admit(room, identity, by string) error {
	r := s.liveRoom(room)
	if r == nil {
		return ErrNotWaiting
	}
	return r.admit(identity, by)
}

// Reject turns identity, waiting in room's lobby, away; by is the host.
func (s *SFU) Reject(room, identity, by string) error {
	r := s.liveRoom(room)
	if r == nil {
		return ErrNotWaiting
	}
	return r.reject(identity, by)
}

func (s *SFU) liveRoom(id string) *Room {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live[id]
}

// emptyLocked says nobody is in the room or its lobby; r.mu is held.
func (r *Room) emptyLocked() bool { return len(r.participants) == 0 && len(r.lobby) == 0 }

func (r *Room) lobbyEntries() []signal.LobbyEntry {
	r.mu.Lock()
	waiting := make([]*participant, 0, len(r.lobby))
	for _, p := range r.lobby {
		waiting = append(waiting, p)
	}
	r.mu.Unlock()
	slices.SortFunc(waiting, func(a, b *participant) int {
		if c := a.joinedAt.Compare(b.joinedAt); c != 0 {
			return c
		}
		return strings.Compare(a.identity, b.identity)
	})
	out := make([]signal.LobbyEntry, 0, len(waiting))
	for _, p := range waiting {
		out = append(out, signal.LobbyEntry{Identity: p.identity, Name: p.name, Role: p.role, Since: p.joinedAt.UTC().Format(time.RFC3339)})
	}
	return out
}

func (r *Room) lobbyMessage() *signal.ServerMessage {
	entries := r.lobbyEntries()
	return &signal.ServerMessage{Type: signal.TypeLobby, Lobby: &entries}
}

// tellLobby tells the hosts who waits now.
func (r *Room) tellLobby() {
	m := r.lobbyMessage()
	for _, p := range r.snapshot() {
		if p.rights.Admin {
			p.send(m)
		}
	}
	if hook := r.sfu.p.OnLobby; hook != nil {
		hook(r.id, *m.Lobby)
	}
}

// admit moves identity from the lobby into the room.
func (r *Room) admit(identity, by string) error {
	r.mu.Lock()
	p := r.lobby[identity]
	if p == nil {
		r.mu.Unlock()
		return ErrNotWaiting
	}
	old := r.participants[identity]
	if old == nil && len(r.participants) >= r.maxParticipants {
		r.mu.Unlock()
		return ErrRoomFull
	}
	delete(r.lobby, identity)
	r.participants[identity] = p
	r.admitted[identity] = true
	r.mu.Unlock()

	p.entering.Lock()
	p.waiting.Store(false)
	if old != nil {
		old.send(&signal.ServerMessage{Type: signal.TypeParticipantLeft, Identity: old.identity, Reason: signal.LeftReplaced})
		r.replaced(old)
	}
	r.enter(p)
	p.entering.Unlock()
	r.tellLobby()
	r.sfu.audit(r, by, "meeting.admit", map[string]any{"identity": identity})
	if hook := r.sfu.p.OnAdmit; hook != nil {
		hook(r.id, identity, by)
	}
	return nil
}

// reject turns identity in the lobby away until the room ends.
func (r *Room) reject(identity, by string) error {
	r.mu.Lock()
	p := r.lobby[identity]
	if p == nil {
		r.mu.Unlock()
		return ErrNotWaiting
	}
	r.removed[identity] = true
	r.mu.Unlock()
	p.send(&signal.ServerMessage{Type: signal.TypeParticipantLeft, Identity: identity, Reason: signal.LeftRejected, By: by})
	r.leaveLobby(p, signal.LeftRejected)
	r.sfu.audit(r, by, "meeting.reject", map[string]any{"identity": identity})
	return nil
}

// leaveLobby takes p, who waited, out of the lobby.
func (r *Room) leaveLobby(p *participant, reason string) {
	r.mu.Lock()
	if r.lobby[p.identity] != p {
		r.mu.Unlock()
		return
	}
	delete(r.lobby, p.identity)
	empty := r.emptyLocked()
	r.mu.Unlock()
	r.sfu.log.Info("meeting participant left the lobby", "room", r.id, "identity", p.identity, "reason", reason)
	if reason == signal.LeftClosed {
		p.send(&signal.ServerMessage{Type: signal.TypeParticipantLeft, Identity: p.identity, Reason: reason})
	}
	p.conn.closeAfter(reason)
	r.tellLobby()
	if empty {
		r.sfu.roomEmpty(r)
	}
}
