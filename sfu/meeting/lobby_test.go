package meeting

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lookout-cc/lookout/console/auth"
	"github.com/lookout-cc/lookout/sfu/signal"
)

// lobbyToken is a resident's token: it waits in the lobby.
func (e *env) lobbyToken(identity string) string {
	e.t.Helper()
	tok, _, err := e.signer.IssueJoin(auth.JoinClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: identity}, Name: "name of " + identity,
		Room: "r1", Org: "qj", Role: "resident", Rights: memberRights, Lobby: true}, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func lobbyOf(identities ...string) func(signal.ServerMessage) bool {
	return func(m signal.ServerMessage) bool {
		if m.Type != signal.TypeLobby || m.Lobby == nil || len(*m.Lobby) != len(identities) {
			return false
		}
		for i, l := range *m.Lobby {
			if l.Identity != identities[i] {
				return false
			}
		}
		return true
	}
}

// One who joins with a lobby token waits, sending and seeing nothing,
// until a host admits them; the host is told who waits, by signaling and
// through Lobby. Admitted, they exchange media with the host, and come
// back after a drop without waiting. Someone rejected is refused until
// the room ends. Each decision is audited.
func TestLobbyAdmitAndReject(t *testing.T) {
	e := newEnv(t)
	// The resident comes before the officer: waits in a room of no one.
	res := e.dial("resident")
	res.send(map[string]any{"type": "join", "token": e.lobbyToken("resident"), "id": "j1"})
	res.wait("waiting", func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeLobby && m.State == "waiting" && m.ID == "j1" && m.Self != nil && m.Self.Identity == "resident"
	})
	// Waiting, it may not publish.
	res.send(map[string]any{"type": "mute", "kind": "audio", "muted": true, "id": "m1"})
	res.wait("in_lobby", func(m signal.ServerMessage) bool { return m.Code == "in_lobby" && m.ID == "m1" })

	officer := e.join("officer", hostRights)
	officer.wait("lobby with the resident", lobbyOf("resident"))
	officer.publish(false)
	if l := e.sfu.Lobby("r1"); len(l) != 1 || l[0].Identity != "resident" || l[0].Role != "resident" {
		t.Fatalf("Lobby: %+v", l)
	}
	if res.has(isType(signal.TypeJoined)) || res.has(isType(signal.TypeParticipantJoined)) {
		t.Fatal("the one waiting was told of the room")
	}
	if officer.has(func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeParticipantJoined && m.Participant.Identity == "resident"
	}) {
		t.Fatal("the officer was told the one waiting joined")
	}

	// A second waiting device of someone else; the officer rejects it.
	other := e.dial("stranger")
	other.send(map[string]any{"type": "join", "token": e.lobbyToken("stranger")})
	officer.wait("two waiting", lobbyOf("resident", "stranger"))
	officer.send(map[string]any{"type": "host", "action": "reject", "identity": "stranger"})
	other.wait("rejected", func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeParticipantLeft && m.Reason == signal.LeftRejected && m.By == "officer"
	})
	other.wait("closed", isType("closed"))
	officer.wait("one waiting", lobbyOf("resident"))
	again := e.dial("stranger")
	again.send(map[string]any{"type": "join", "token": e.lobbyToken("stranger")})
	again.wait("removed", isError("removed"))

	// Admitted through the API (the console): joined, and media both ways.
	if err := e.sfu.Admit("r1", "nobody", "officer"); !errors.Is(err, ErrNotWaiting) {
		t.Fatalf("admitting no one: %v", err)
	}
	if err := e.sfu.Admit("r1", "resident", "officer"); err != nil {
		t.Fatal(err)
	}
	res.wait("joined", isType(signal.TypeJoined))
	officer.wait("empty lobby", lobbyOf())
	officer.wait("resident joined", func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeParticipantJoined && m.Participant.Identity == "resident"
	})
	res.publish(false)
	res.waitPackets("officer-camera", 30, 10*time.Second)
	officer.waitPackets("resident-camera", 30, 10*time.Second)

	// The resident's phone drops and comes back: in at once.
	res.close()
	officer.wait("resident left", func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeParticipantLeft && m.Identity == "resident"
	})
	back := e.dial("resident")
	back.send(map[string]any{"type": "join", "token": e.lobbyToken("resident")})
	back.wait("joined again", isType(signal.TypeJoined))

	e.audit.mu.Lock()
	got := strings.Join(e.audit.actions, "\n")
	e.audit.mu.Unlock()
	for _, want := range []string{"participant:officer meeting.reject room:r1 ok", "participant:officer meeting.admit room:r1 ok"} {
		if !strings.Contains(got, want) {
			t.Errorf("audit lacks %q:\n%s", want, got)
		}
	}
}

// The one waiting leaves: the hosts are told; a room with only someone
// waiting ends when they go.
func TestLobbyLeaving(t *testing.T) {
	e := newEnv(t)
	officer := e.join("officer", hostRights)
	res := e.dial("resident")
	res.send(map[string]any{"type": "join", "token": e.lobbyToken("resident")})
	officer.wait("waiting", lobbyOf("resident"))
	res.close()
	officer.wait("gone", lobbyOf())

	officer.close()
	alone := e.dial("resident")
	alone.send(map[string]any{"type": "join", "token": e.lobbyToken("resident")})
	alone.wait("waiting", func(m signal.ServerMessage) bool { return m.Type == signal.TypeLobby && m.State == "waiting" })
	if len(e.sfu.Lobby("r1")) != 1 {
		t.Fatal("not in the lobby")
	}
	alone.close()
	waitUntil(t, 5*time.Second, func() bool { return e.sfu.liveRoom("r1") == nil }, func() string {
		return "the room with no one left did not end"
	})
}
