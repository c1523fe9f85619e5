package httpapi

import (
	"strings"
	"testing"
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
