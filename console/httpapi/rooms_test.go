package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Rooms belong to an organisation and are scoped by the tier tree; a host
// issues join tokens that admit one identity to one room, which the
// console API refuses; every step is audited, never the token.
func TestRoomsAndJoinTokens(t *testing.T) {
	e := newEnv(t)
	prov := e.login("admin", adminPassword)
	e.mustStatus(e.do("POST", "/api/v1/users", prov, map[string]any{"id": "qj-ho", "org_id": "qj", "role": "hearing_officer", "password": "qiaojia-hearing"}), 201)
	e.mustStatus(e.do("POST", "/api/v1/users", prov, map[string]any{"id": "ys-op", "org_id": "ys", "role": "operator", "password": "yongshan-op-pw"}), 201)
	qj := e.login("qj-ho", "qiaojia-hearing")
	ys := e.login("ys-op", "yongshan-op-pw")

	r := e.do("POST", "/api/v1/rooms", qj, map[string]any{"id": "hearing-1", "name": "白鹤滩移民信访听证"})
	e.mustStatus(r, 201)
	if r.body["org_id"] != "qj" || r.body["max_participants"] != 50.0 || r.body["locked"] != false {
		t.Fatalf("room: %s", r.raw)
	}
	e.mustStatus(e.do("POST", "/api/v1/rooms", qj, map[string]any{"id": "hearing-1", "name": "again"}), 409)
	e.mustStatus(e.do("POST", "/api/v1/rooms", ys, map[string]any{"id": "x", "name": "x"}), 403) // an operator hosts nothing
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"id": "Bad Id", "name": "x"}, "id"},
		{map[string]any{"id": "r2", "name": ""}, "name"},
		{map[string]any{"id": "r2", "name": "x", "max_participants": 1}, "max_participants"},
	} {
		if r := e.do("POST", "/api/v1/rooms", qj, tc.body); r.status != 422 || !strings.Contains(r.raw, `"field":"`+tc.field+`"`) {
			t.Errorf("%v: %d %s", tc.body, r.status, r.raw)
		}
	}
	e.mustStatus(e.do("GET", "/api/v1/rooms/hearing-1", ys, nil), 403)
	if l := e.do("GET", "/api/v1/rooms", ys, nil); l.body["item_count"] != 0.0 {
		t.Fatalf("ys rooms: %s", l.raw)
	}
	e.mustStatus(e.do("GET", "/api/v1/rooms/hearing-1", prov, nil), 200)

	tok := e.do("POST", "/api/v1/rooms/hearing-1/tokens", qj, map[string]any{"identity": "resident-7", "name": "王大妈", "ttl_s": 3600})
	e.mustStatus(tok, 201)
	rights := tok.body["rights"].(map[string]any)
	if tok.body["role"] != "participant" || rights["publish"] != true || rights["admin"] != false || tok.body["token"] == "" {
		t.Fatalf("token: %s", tok.raw)
	}
	claims, err := e.signer.VerifyJoin(tok.body["token"].(string))
	if err != nil || claims.Room != "hearing-1" || claims.Subject != "resident-7" || claims.Name != "王大妈" || claims.Org != "qj" {
		t.Fatalf("claims %+v, %v", claims, err)
	}
	// A join token opens no console route.
	e.mustStatus(e.do("GET", "/api/v1/rooms", tok.body["token"].(string), nil), 401)
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"identity": "", "name": "x"}, "identity"},
		{map[string]any{"identity": "a", "name": ""}, "name"},
		{map[string]any{"identity": "a", "name": "x", "role": "king"}, "role"},
		{map[string]any{"identity": "a", "name": "x", "ttl_s": 10}, "ttl_s"},
	} {
		if r := e.do("POST", "/api/v1/rooms/hearing-1/tokens", qj, tc.body); r.status != 422 || !strings.Contains(r.raw, `"field":"`+tc.field+`"`) {
			t.Errorf("%v: %d %s", tc.body, r.status, r.raw)
		}
	}
	e.mustStatus(e.do("POST", "/api/v1/rooms/nope/tokens", qj, map[string]any{"identity": "a", "name": "x"}), 404)

	l := e.do("PATCH", "/api/v1/rooms/hearing-1", qj, map[string]any{"locked": true})
	if l.status != 200 || l.body["locked"] != true {
		t.Fatalf("lock: %s", l.raw)
	}
	e.mustStatus(e.do("DELETE", "/api/v1/rooms/hearing-1", qj, nil), 204)
	e.mustStatus(e.do("GET", "/api/v1/rooms/hearing-1", qj, nil), 404)

	var actions []string
	audit := e.do("GET", "/api/v1/audit?action=room.", prov, nil)
	for _, it := range audit.body["items"].([]any) {
		actions = append(actions, it.(map[string]any)["action"].(string))
	}
	if strings.Join(actions, ",") != "room.delete,room.lock,room.token,room.create" || strings.Contains(audit.raw, tok.body["token"].(string)) {
		t.Fatalf("audit: %v", actions)
	}
}

// A participant joins over /rtc/signal with a token the API issued; the
// console's lock reaches the room in progress, and deleting the room ends
// it for whoever is in it.
func TestRoomInProgressFollowsTheConsole(t *testing.T) {
	e := newEnv(t)
	prov := e.login("admin", adminPassword)
	e.mustStatus(e.do("POST", "/api/v1/rooms", prov, map[string]any{"id": "m1", "name": "防汛会商"}), 201)
	tok := e.do("POST", "/api/v1/rooms/m1/tokens", prov, map[string]any{"identity": "ys-county", "name": "永善县", "role": "participant"})
	e.mustStatus(tok, 201)

	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.srv.URL, "http")+"/rtc/signal", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	next := func(want string) map[string]any {
		t.Helper()
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			var m map[string]any
			if err := ws.ReadJSON(&m); err != nil {
				t.Fatalf("waiting for %s: %v", want, err)
			}
			if m["type"] == want {
				return m
			}
		}
	}
	if err := ws.WriteJSON(map[string]any{"type": "join", "token": tok.body["token"]}); err != nil {
		t.Fatal(err)
	}
	joined := next("joined")
	if self := joined["self"].(map[string]any); self["identity"] != "ys-county" || self["name"] != "永善县" {
		t.Fatalf("joined: %v", joined)
	}
	e.mustStatus(e.do("PATCH", "/api/v1/rooms/m1", prov, map[string]any{"locked": true}), 200)
	if m := next("room_locked"); m["locked"] != true || m["by"] != "admin" {
		t.Fatalf("room_locked: %v", m)
	}
	e.mustStatus(e.do("DELETE", "/api/v1/rooms/m1", prov, nil), 204)
	if m := next("participant_left"); m["identity"] != "ys-county" || m["reason"] != "closed" {
		t.Fatalf("participant_left: %v", m)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure || ce.Text != "closed" {
				t.Fatalf("close: %v", err)
			}
			break
		}
	}
	// The room is gone: a token for it is refused at join.
	ws2, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.srv.URL, "http")+"/rtc/signal", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws2.Close()
	_ = ws2.WriteJSON(map[string]any{"type": "join", "token": tok.body["token"]})
	var m map[string]any
	_ = ws2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := ws2.ReadJSON(&m); err != nil || m["code"] != "room_not_found" {
		t.Fatalf("join to a deleted room: %v %v", m, err)
	}
}

// A room says who is in it now (nobody outside a meeting), and a wall tile
// asking for a participant's video is told plainly what is missing: the
// room (or its scope), the participant, or a proper offer.
func TestRoomParticipantsAndTheirVideo(t *testing.T) {
	e := newEnv(t)
	prov := e.login("admin", adminPassword)
	e.mustStatus(e.do("POST", "/api/v1/users", prov, map[string]any{"id": "ys-op", "org_id": "ys", "role": "operator", "password": "yongshan-op-pw"}), 201)
	ys := e.login("ys-op", "yongshan-op-pw")
	e.mustStatus(e.do("POST", "/api/v1/rooms", prov, map[string]any{"id": "qj-room", "name": "会商", "org_id": "qj"}), 201)
	r := e.do("GET", "/api/v1/rooms/qj-room", prov, nil)
	e.mustStatus(r, 200)
	if ps, ok := r.body["participants"].([]any); !ok || len(ps) != 0 {
		t.Fatalf("an empty room's participants: %s", r.raw)
	}

	offer := func(path, token, contentType, body string) response {
		t.Helper()
		req, _ := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		out := response{status: resp.StatusCode, raw: string(raw)}
		_ = json.Unmarshal(raw, &out.body)
		return out
	}
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n"
	for _, tc := range []struct {
		name, path, token, ctype string
		status                   int
		code                     string
	}{
		{"nobody of that name in the meeting", "/api/v1/whep/rooms/qj-room/participants/bob", prov, "application/sdp", 404, "participant_not_found"},
		{"no such room", "/api/v1/whep/rooms/nope/participants/bob", prov, "application/sdp", 404, "room_not_found"},
		{"a room outside the caller's subtree", "/api/v1/whep/rooms/qj-room/participants/bob", ys, "application/sdp", 403, "out_of_scope"},
		{"not an SDP offer", "/api/v1/whep/rooms/qj-room/participants/bob", prov, "application/json", 415, "unsupported_media_type"},
		{"a bad stream", "/api/v1/whep/rooms/qj-room/participants/bob?stream=huge", prov, "application/sdp", 422, "invalid_field"},
	} {
		r := offer(tc.path, tc.token, tc.ctype, sdp)
		if r.status != tc.status || r.errCode() != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.raw, tc.status, tc.code)
		}
	}
}
