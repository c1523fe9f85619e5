package httpapi

import (
	"bytes"
	"strings"
	"testing"

	"github.com/lookout-cc/lookout/console/petitions"
)

func mustSealer(t *testing.T) *petitions.Sealer {
	t.Helper()
	s, err := petitions.NewSealer(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A hearing officer records a petition and reads the petitioner whole
// (each such read audited); a commander of the same county reads it
// masked, an operator not at all; the audit log never holds the personal
// data; bad input is refused by field; steps follow the states.
func TestPetitionsPersonalDataByRole(t *testing.T) {
	e := newEnv(t)
	prov := e.login("admin", adminPassword)
	for _, u := range []map[string]any{
		{"id": "qj-ho", "org_id": "qj", "role": "hearing_officer", "password": "qiaojia-hearing"},
		{"id": "qj-cmd", "org_id": "qj", "role": "commander", "password": "qiaojia-command"},
		{"id": "qj-op", "org_id": "qj", "role": "operator", "password": "qiaojia-operate"},
	} {
		e.mustStatus(e.do("POST", "/api/v1/users", prov, u), 201)
	}
	officer := e.login("qj-ho", "qiaojia-hearing")
	commander := e.login("qj-cmd", "qiaojia-command")
	operator := e.login("qj-op", "qiaojia-operate")
	body := map[string]any{"subject": "安置房漏水", "description": "屋顶漏水，多次报修未处理。",
		"petitioner": map[string]any{"name": "张三丰", "phone": "13812345678", "id_number": "11010519491231002X"}}

	r := e.do("POST", "/api/v1/petitions", officer, body)
	e.mustStatus(r, 201)
	id := r.body["id"].(string)
	if who := r.body["petitioner"].(map[string]any); who["id_number"] != "11010519491231002X" || r.body["org_id"] != "qj" || r.body["state"] != "received" {
		t.Fatalf("created: %s", r.raw)
	}
	r = e.do("GET", "/api/v1/petitions/"+id, officer, nil)
	e.mustStatus(r, 200)
	if who := r.body["petitioner"].(map[string]any); who["name"] != "张三丰" || who["masked"] == true {
		t.Fatalf("the officer's read: %s", r.raw)
	}
	r = e.do("GET", "/api/v1/petitions/"+id, commander, nil)
	e.mustStatus(r, 200)
	if who := r.body["petitioner"].(map[string]any); who["name"] != "张**" || who["phone"] != "138****5678" || who["masked"] != true {
		t.Fatalf("the commander's read: %s", r.raw)
	}
	r = e.do("GET", "/api/v1/petitions", officer, nil)
	e.mustStatus(r, 200)
	if strings.Contains(r.raw, "13812345678") || !strings.Contains(r.raw, `"item_count":1`) {
		t.Fatalf("the list: %s", r.raw)
	}
	if r := e.do("GET", "/api/v1/petitions", operator, nil); r.status != 403 {
		t.Fatalf("an operator listed petitions: %d", r.status)
	}
	if r := e.do("POST", "/api/v1/petitions", commander, body); r.status != 403 {
		t.Fatalf("a commander recorded a petition: %d", r.status)
	}

	for _, tc := range []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"not JSON", "{", 400, ""},
		{"a bad ID number", map[string]any{"subject": "x", "description": "y", "petitioner": map[string]any{"name": "李四", "phone": "13812345678", "id_number": "110105194912310021"}}, 422, "petitioner.id_number"},
		{"no subject", map[string]any{"description": "y", "petitioner": map[string]any{"name": "李四", "phone": "13812345678", "id_number": "11010519491231002X"}}, 422, "subject"},
		{"an unknown field", map[string]any{"subjekt": "x"}, 400, ""},
	} {
		r := e.do("POST", "/api/v1/petitions", officer, tc.body)
		if r.status != tc.status || (tc.field != "" && !strings.Contains(r.raw, `"field":"`+tc.field+`"`)) {
			t.Errorf("%s: %d %s", tc.name, r.status, r.raw)
		}
	}

	if r := e.do("POST", "/api/v1/petitions/"+id+"/steps", officer, map[string]any{"step": "heard"}); r.status != 409 || r.errCode() != "invalid_step" {
		t.Fatalf("heard before scheduled: %d %s", r.status, r.raw)
	}
	r = e.do("POST", "/api/v1/petitions/"+id+"/steps", officer, map[string]any{"step": "scheduled", "note": "明日上午视频听证"})
	e.mustStatus(r, 200)
	if r.body["state"] != "scheduled" {
		t.Fatalf("step: %s", r.raw)
	}

	audit := e.do("GET", "/api/v1/audit?limit=100", prov, nil)
	e.mustStatus(audit, 200)
	for _, secret := range []string{"11010519491231002X", "13812345678", "张三丰"} {
		if strings.Contains(audit.raw, secret) {
			t.Errorf("the audit log holds %q", secret)
		}
	}
	for _, want := range []string{`"action":"petition.create"`, `"action":"petition.read_personal_data"`, `"action":"petition.scheduled"`, `"张**"`} {
		if !strings.Contains(audit.raw, want) {
			t.Errorf("the audit log lacks %s", want)
		}
	}
}
