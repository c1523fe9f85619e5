package meeting

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/lookout-cc/lookout/console/auth"
	"github.com/lookout-cc/lookout/sfu/signal"
)

func isError(code string) func(signal.ServerMessage) bool {
	return func(m signal.ServerMessage) bool { return m.Type == signal.TypeError && m.Code == code }
}

func closedWith(code string) func(signal.ServerMessage) bool {
	return func(m signal.ServerMessage) bool { return m.Type == "closed" && m.Code == code }
}

// Tokens that do not admit, and joins that are refused, get a clear error
// and the close code of docs/signaling.md; the room is not affected.
func TestJoinRefusals(t *testing.T) {
	e := newEnv(t)
	host := e.join("host", hostRights)

	expired, _, err := e.signer.IssueJoin(auth.JoinClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "late"}, Name: "x", Room: "r1", Org: "qj", Rights: memberRights}, -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	good := e.token("mallory", memberRights)
	forged := good[:strings.LastIndexByte(good, '.')+1] + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	otherRoom, _, _ := e.signer.IssueJoin(auth.JoinClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "x"}, Name: "x", Room: "gone", Org: "qj", Rights: memberRights}, time.Hour)
	otherOrg, _, _ := e.signer.IssueJoin(auth.JoinClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "x"}, Name: "x", Room: "r1", Org: "ys", Rights: memberRights}, time.Hour)
	consoleTok, _, _ := e.signer.Issue("admin", "qj", auth.RoleAdmin, time.Hour)

	tests := []struct {
		name  string
		first string
		code  string
		close string
	}{
		{"expired", `{"type":"join","token":"` + expired + `"}`, "bad_token", "4401"},
		{"forged", `{"type":"join","token":"` + forged + `"}`, "bad_token", "4401"},
		{"console token", `{"type":"join","token":"` + consoleTok + `"}`, "bad_token", "4401"},
		{"garbage token", `{"type":"join","token":"abc"}`, "bad_token", "4401"},
		{"deleted room", `{"type":"join","token":"` + otherRoom + `"}`, "room_not_found", "4404"},
		{"room of another organisation", `{"type":"join","token":"` + otherOrg + `"}`, "room_not_found", "4404"},
		{"not join first", `{"type":"ping"}`, "not_joined", "4400"},
		{"malformed", `{"type":"join",`, signal.CodeBadJSON, "4400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.dial("x")
			c.sendRaw(websocket.TextMessage, []byte(tt.first))
			m := c.wait(tt.code, isError(tt.code))
			if m.Message == "" {
				t.Fatal("an error without a message")
			}
			c.wait("close "+tt.close, closedWith(tt.close))
		})
	}

	// Lock: a participant is refused, a host is not.
	host.send(map[string]any{"type": "host", "action": "lock", "locked": true})
	host.wait("locked", func(m signal.ServerMessage) bool { return m.Type == signal.TypeRoomLocked && *m.Locked })
	c := e.dial("late")
	c.send(map[string]any{"type": "join", "token": e.token("late", memberRights)})
	c.wait("room_locked", isError("room_locked"))
	c.wait("close 4403", closedWith("4403"))
	if !e.rooms.rooms["r1"].Locked {
		t.Fatal("the lock was not stored")
	}
	e.join("cohost", hostRights)
	mark := host.mark()
	host.send(map[string]any{"type": "host", "action": "lock", "locked": false})
	host.waitSince(mark, "unlocked", 10*time.Second, func(m signal.ServerMessage) bool { return m.Type == signal.TypeRoomLocked && !*m.Locked })
	e.join("late", memberRights)

	// Full: a room of three.
	e.rooms.mu.Lock()
	r := e.rooms.rooms["r1"]
	r.MaxParticipants = 3
	e.rooms.rooms["r1"] = r
	e.rooms.mu.Unlock()
	c = e.dial("fourth")
	c.send(map[string]any{"type": "join", "token": e.token("fourth", memberRights)})
	c.wait("room_full", isError("room_full"))

	// A join timeout: nothing sent for 10 s.
	if !testing.Short() {
		c = e.dial("silent")
		c.waitFor("join_timeout", 15*time.Second, isError("join_timeout"))
		c.wait("close 4400", closedWith("4400"))
	}
	host.send(map[string]any{"type": "ping", "id": "p1"})
	host.wait("pong", func(m signal.ServerMessage) bool { return m.Type == signal.TypePong && m.ID == "p1" })
}

// Bad messages of a joined participant get an error naming the field and
// change nothing; the connection stays.
func TestBadMessagesKeepTheConnection(t *testing.T) {
	e := newEnv(t)
	viewer := e.join("viewer", auth.RoomRights{Subscribe: true})
	member := e.join("member", memberRights)
	member.publish(false)
	viewer.waitPackets("member-camera", 30, 10*time.Second)

	steps := []struct {
		raw   string
		code  string
		field string
	}{
		{`{"type":"offer","sdp":"v=0\r\nthis is not sdp"}`, "bad_sdp", "sdp"},
		{`{"type":"offer","sdp":"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n"}`, "forbidden", "sdp"},
		{`{"type":"answer","sdp":"v=0\r\n"}`, "bad_sdp", "sdp"},
		{`{"type":"nonsense"}`, signal.CodeUnknownType, "type"},
		{`{"type":"mute","kind":"audio"}`, signal.CodeBadField, "muted"},
		{`[]`, signal.CodeBadJSON, ""},
		{`{"type":"host","action":"remove","identity":"member"}`, "forbidden", "action"},
		{`{"type":"chat","text":"hello"}`, "forbidden", "text"},
		{`{"type":"layer","identity":"nobody","quality":"low"}`, "no_participant", "identity"},
		{`{"type":"join","token":"x"}`, "already_joined", ""},
		{`{"type":"ping","token":"` + strings.Repeat("a", signal.MaxMessage) + `"}`, signal.CodeTooLarge, ""},
	}
	for _, s := range steps {
		viewer.sendRaw(websocket.TextMessage, []byte(s.raw))
		m := viewer.wait(s.code, func(m signal.ServerMessage) bool {
			return m.Type == signal.TypeError && m.Code == s.code && m.Field == s.field
		})
		if m.Message == "" {
			t.Errorf("%s: no message", s.raw)
		}
	}
	viewer.sendRaw(websocket.BinaryMessage, []byte{1, 2, 3})
	viewer.wait("binary refused", isError(signal.CodeBadJSON))
	// Still in, still receiving.
	before := viewer.packets("member-camera")
	viewer.waitPackets("member-camera", before+30, 10*time.Second)
	if viewer.has(func(m signal.ServerMessage) bool { return m.Type == "closed" }) {
		t.Fatal("the connection closed")
	}
	if member.has(func(m signal.ServerMessage) bool { return m.Type == signal.TypeParticipantLeft }) {
		t.Fatal("the others saw someone leave")
	}
	// A frame over twice the message limit closes the connection (1009).
	viewer.sendRaw(websocket.TextMessage, []byte(strings.Repeat(" ", 2*signal.MaxMessage+1)))
	viewer.wait("close 1009", closedWith("1009"))
	member.wait("viewer left", func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeParticipantLeft && m.Identity == "viewer" && m.Reason == signal.LeftDisconnected
	})
}
