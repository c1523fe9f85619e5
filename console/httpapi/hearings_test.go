package httpapi

import (
	"strings"
	"testing"
	"time"
)

// Who may do what with hearings: the hearing officer schedules, manages
// the link and ends; a commander reads but changes nothing and joins no
// hearing; an operator sees none; an officer of another county sees none
// of these. The resident's endpoints take no console token and refuse bad
// input with a clear error.
func TestHearingsByRole(t *testing.T) {
	e := newEnv(t)
	prov := e.login("admin", adminPassword)
	for _, u := range []map[string]any{
		{"id": "qj-ho", "org_id": "qj", "role": "hearing_officer", "password": "qiaojia-hearing"},
		{"id": "qj-cmd", "org_id": "qj", "role": "commander", "password": "qiaojia-command"},
		{"id": "qj-op", "org_id": "qj", "role": "operator", "password": "qiaojia-operate"},
		{"id": "ys-ho", "org_id": "ys", "role": "hearing_officer", "password": "yongshan-hearing"},
	} {
		e.mustStatus(e.do("POST", "/api/v1/users", prov, u), 201)
	}
	officer := e.login("qj-ho", "qiaojia-hearing")
	commander := e.login("qj-cmd", "qiaojia-command")
	operator := e.login("qj-op", "qiaojia-operate")
	stranger := e.login("ys-ho", "yongshan-hearing")

	r := e.do("POST", "/api/v1/petitions", officer, map[string]any{"subject": "安置房漏水", "description": "屋顶漏水。",
		"petitioner": map[string]any{"name": "张三丰", "phone": "13812345678", "id_number": "11010519491231002X"}})
	e.mustStatus(r, 201)
	pet := r.body["id"].(string)
	starts := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)

	for _, c := range []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"no start", map[string]any{}, 422, "starts_at"},
		{"a start years ago", map[string]any{"starts_at": "2020-01-01T08:00:00Z"}, 422, "starts_at"},
		{"a link ending before the start", map[string]any{"starts_at": starts, "link_expires_at": "2020-01-01T08:00:00Z"}, 422, "link_expires_at"},
		{"five others", map[string]any{"starts_at": starts, "others": []map[string]string{{"name": "a"}, {"name": "b"}, {"name": "c"}, {"name": "d"}, {"name": "e"}}}, 422, "others"},
		{"an unnamed other", map[string]any{"starts_at": starts, "others": []map[string]string{{"role": "住建局"}}}, 422, "others[0].name"},
		{"an unknown field", map[string]any{"starts_at": starts, "room": "x"}, 400, ""},
	} {
		r := e.do("POST", "/api/v1/petitions/"+pet+"/hearings", officer, c.body)
		if r.status != c.status || c.field != "" && !strings.Contains(r.raw, `"field":"`+c.field+`"`) {
			t.Errorf("%s: %d %s", c.name, r.status, r.raw)
		}
	}
	if r := e.do("POST", "/api/v1/petitions/"+pet+"/hearings", commander, map[string]any{"starts_at": starts}); r.status != 403 {
		t.Fatalf("a commander scheduled a hearing: %d", r.status)
	}
	r = e.do("POST", "/api/v1/petitions/"+pet+"/hearings", officer, map[string]any{"starts_at": starts,
		"others": []map[string]string{{"name": "赵六", "role": "住建局"}}})
	e.mustStatus(r, 201)
	id := r.body["hearing"].(map[string]any)["id"].(string)
	link := r.body["link"].(map[string]any)["path"].(string)
	if !strings.HasPrefix(link, "/h/") {
		t.Fatalf("link: %s", r.raw)
	}

	for _, c := range []struct {
		who, method, path string
		status            int
	}{
		{commander, "GET", "/api/v1/hearings?day=today", 200},
		{commander, "GET", "/api/v1/hearings/" + id, 200},
		{commander, "POST", "/api/v1/hearings/" + id + "/link", 403},
		{commander, "POST", "/api/v1/hearings/" + id + "/admit", 403},
		{commander, "POST", "/api/v1/hearings/" + id + "/end", 403},
		{operator, "GET", "/api/v1/hearings", 403},
		{operator, "GET", "/api/v1/hearings/" + id, 403},
		{stranger, "GET", "/api/v1/hearings/" + id, 404},
		{stranger, "POST", "/api/v1/hearings/" + id + "/link", 404},
		{stranger, "POST", "/api/v1/hearings/" + id + "/host-token", 404},
		{officer, "GET", "/api/v1/hearings/nope", 404},
		{officer, "GET", "/api/v1/hearings?day=tomorrow", 422},
		{officer, "POST", "/api/v1/hearings/" + id + "/admit", 409},
		{officer, "GET", "/api/v1/hearings/" + id + "/record", 404},
		{officer, "DELETE", "/api/v1/hearings/" + id + "/recordings/rec_x", 403},
		// A petition concerns a site: the officer lists the sites, not
		// the devices.
		{officer, "GET", "/api/v1/sites", 200},
		// The hearing's room is the hearings' API's alone: the meeting
		// rooms' API and the WHEP taps do not know it, and a commander
		// (meetings:host without petitions:write) gets no host token.
		{commander, "POST", "/api/v1/hearings/" + id + "/host-token", 403},
		{commander, "GET", "/api/v1/rooms/" + id, 404},
		{commander, "DELETE", "/api/v1/rooms/" + id, 404},
		{prov, "POST", "/api/v1/whep/rooms/" + id + "/participants/resident", 404},
		{officer, "GET", "/api/v1/devices", 403},
		{officer, "POST", "/api/v1/sites", 403},
	} {
		if r := e.do(c.method, c.path, c.who, nil); r.status != c.status {
			t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, r.status, c.status, r.raw)
		}
	}
	if r := e.do("POST", "/api/v1/rooms/"+id+"/tokens", commander, map[string]any{"identity": "resident", "name": "x"}); r.status != 404 {
		t.Fatalf("a room token for the hearing's room: %d %s", r.status, r.raw)
	}
	if r := e.do("PATCH", "/api/v1/rooms/"+id, commander, map[string]any{"locked": true}); r.status != 404 {
		t.Fatalf("the hearing's room locked through the rooms' API: %d %s", r.status, r.raw)
	}
	if r := e.do("GET", "/api/v1/rooms", prov, nil); strings.Contains(r.raw, id) {
		t.Fatalf("the hearing's room among the meeting rooms: %s", r.raw)
	}
	if r := e.do("POST", "/api/v1/rooms", prov, map[string]any{"id": "hrg_mine", "name": "x"}); r.status != 422 {
		t.Fatalf("a meeting room with a hearing's prefix: %d %s", r.status, r.raw)
	}
	if r := e.do("GET", "/api/v1/hearings?day=today", stranger, nil); !strings.Contains(r.raw, `"item_count":0`) {
		t.Fatalf("another county's officer lists: %s", r.raw)
	}

	// The resident's endpoints: no console token; bad input.
	for _, c := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"not JSON", `{"token":`, 400, "invalid_json"},
		{"an unknown field", `{"token":"x","admin":true}`, 400, "unknown_field"},
		{"forged", `{"token":"eyJhbGciOiJIUzI1NiJ9.e30.x"}`, 401, "link_invalid"},
		{"a console token", `{"token":"` + officer + `"}`, 401, "link_invalid"},
	} {
		r := e.do("POST", "/api/v1/hearing-link/open", "", c.body)
		if r.status != c.status || r.errCode() != c.code || strings.Contains(r.raw, "安置房") {
			t.Errorf("%s: %d %s", c.name, r.status, r.raw)
		}
	}
	r = e.do("POST", "/api/v1/hearing-link/open", "", map[string]any{"token": strings.TrimPrefix(link, "/h/")})
	// Opens 30 min before the start: when, and nothing else.
	if r.status != 401 || r.errCode() != "link_not_yet_valid" || r.body["starts_at"] == nil || strings.Contains(r.raw, "安置房") {
		t.Fatalf("a link before its time: %d %s", r.status, r.raw)
	}
}
