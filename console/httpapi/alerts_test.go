package httpapi

import (
	"strings"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/ingest/tsdb"
)

func TestRulesAPI(t *testing.T) {
	e := newEnv(t)
	prov := e.login("admin", adminPassword)
	e.lampSite(prov, "qj-a", "qj", 1) // and its gauge qj-a-gauge
	e.lampSite(prov, "ys-a", "ys", 1)
	e.mustStatus(e.do("POST", "/api/v1/users", prov, map[string]any{"id": "qj-cmd", "org_id": "qj", "role": "commander", "password": "qiaojia-pass"}), 201)
	e.mustStatus(e.do("POST", "/api/v1/users", prov, map[string]any{"id": "qj-view", "org_id": "qj", "role": "viewer", "password": "qiaojia-view"}), 201)
	qj := e.login("qj-cmd", "qiaojia-pass")
	viewer := e.login("qj-view", "qiaojia-view")

	good := map[string]any{"id": "lamp-power", "kind": "threshold", "site_id": "qj-a", "device_kind": "streetlight", "metric": "power_w", "above": 400, "severity": "yellow"}
	r := e.do("POST", "/api/v1/rules", qj, good)
	e.mustStatus(r, 201)
	if r.body["org_id"] != "qj" || r.body["source"] != "api" || r.body["created_by"] != "qj-cmd" || r.header.Get("Location") != "/api/v1/rules/lamp-power" {
		t.Fatalf("created: %s", r.raw)
	}
	e.mustStatus(e.do("POST", "/api/v1/rules", qj, good), 409)
	e.mustStatus(e.do("POST", "/api/v1/rules", viewer, map[string]any{"id": "x"}), 403)
	for _, tc := range []struct {
		name   string
		body   string
		status int
		field  string
	}{
		{"malformed", `{"id": `, 400, ""},
		{"unknown field", `{"id": "x", "kind": "threshold", "threshhold": 1}`, 400, "threshhold"},
		{"bound of the wrong shape", `{"id": "x", "kind": "threshold", "above": "high"}`, 400, "above"},
		{"unknown kind", `{"id": "x", "kind": "magic", "device_kind": "streetlight", "severity": "red"}`, 422, "kind"},
		{"unknown severity", `{"id": "x", "kind": "no_data", "device_kind": "streetlight", "after_s": 60, "severity": "purple"}`, 422, "severity"},
		{"selector matching nothing", `{"id": "x", "kind": "no_data", "site_id": "nowhere", "after_s": 60, "severity": "blue"}`, 422, "site_id"},
		{"another county's device", `{"id": "x", "kind": "no_data", "device_id": "ys-a-gauge", "after_s": 60, "severity": "blue"}`, 422, "device_id"},
		{"would loop", `{"id": "x", "kind": "threshold", "device_id": "qj-a-gauge", "metric": "m", "above": 10, "clear_below": 11, "severity": "red"}`, 422, "clear_below"},
		{"never clears", `{"id": "x", "kind": "threshold", "device_id": "qj-a-gauge", "metric": "m", "above": 10, "clear_above": 11, "severity": "red"}`, 422, "clear_above"},
	} {
		r := e.do("POST", "/api/v1/rules", qj, tc.body)
		if r.status != tc.status || (tc.field != "" && !strings.Contains(r.raw, `"field":"`+tc.field+`"`)) {
			t.Errorf("%s: %d %s", tc.name, r.status, r.raw)
		}
	}
	// The province sees the county's rule; the other county does not.
	e.mustStatus(e.do("GET", "/api/v1/rules/lamp-power", prov, nil), 200)
	e.mustStatus(e.do("POST", "/api/v1/users", prov, map[string]any{"id": "ys-cmd", "org_id": "ys", "role": "commander", "password": "yongshan-pass"}), 201)
	ys := e.login("ys-cmd", "yongshan-pass")
	e.mustStatus(e.do("GET", "/api/v1/rules/lamp-power", ys, nil), 403)
	if l := e.do("GET", "/api/v1/rules", ys, nil); l.body["item_count"] != 0.0 {
		t.Fatalf("ys rules: %s", l.raw)
	}
	e.mustStatus(e.do("PUT", "/api/v1/rules/lamp-power", ys, good), 403)
	// Replace, then delete; each step is audited.
	good["above"] = 450
	r = e.do("PUT", "/api/v1/rules/lamp-power", qj, good)
	if r.status != 200 || r.body["steps"].([]any)[0].(map[string]any)["above"] != 450.0 {
		t.Fatalf("replaced: %s", r.raw)
	}
	e.mustStatus(e.do("DELETE", "/api/v1/rules/lamp-power", qj, nil), 204)
	e.mustStatus(e.do("GET", "/api/v1/rules/lamp-power", qj, nil), 404)
	var actions []string
	for _, it := range e.do("GET", "/api/v1/audit?action=rule.", prov, nil).body["items"].([]any) {
		actions = append(actions, it.(map[string]any)["action"].(string))
	}
	if strings.Join(actions, ",") != "rule.delete,rule.update,rule.create" {
		t.Fatalf("audit: %v", actions)
	}
}

func TestAlertsAPI(t *testing.T) {
	e := newEnv(t)
	prov := e.login("admin", adminPassword)
	e.lampSite(prov, "qj-a", "qj", 1)
	e.mustStatus(e.do("POST", "/api/v1/rules", prov, map[string]any{"id": "hot", "kind": "threshold", "device_id": "qj-a-gauge", "metric": "water_level_m",
		"above": 10, "severity": "orange"}), 201)
	e.engine.Observe([]tsdb.Point{{Device: "qj-a-gauge", Metric: "water_level_m", TS: 1, Value: 11}})
	var id string
	for deadline := time.Now().Add(5 * time.Second); id == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		l := e.do("GET", "/api/v1/alerts?state=open", prov, nil)
		if items := l.body["items"].([]any); len(items) == 1 {
			id = items[0].(map[string]any)["id"].(string)
		}
	}
	if id == "" {
		t.Fatal("no alert")
	}
	for _, tc := range []struct {
		path   string
		body   any
		status int
	}{
		{"/api/v1/alerts/" + id + "/close", nil, 409},
		{"/api/v1/alerts/" + id + "/ack", map[string]any{"note": "收到"}, 200},
		{"/api/v1/alerts/" + id + "/dispatch", map[string]any{}, 422},
		{"/api/v1/alerts/" + id + "/dispatch", map[string]any{"department": "巧家县水务局"}, 200},
		{"/api/v1/alerts/" + id + "/resolve", `{"note": `, 400},
		{"/api/v1/alerts/" + id + "/resolve", nil, 200},
		{"/api/v1/alerts/alr_nope/ack", nil, 404},
	} {
		if r := e.do("POST", tc.path, prov, tc.body); r.status != tc.status {
			t.Errorf("%s %v: %d %s", tc.path, tc.body, r.status, r.raw)
		}
	}
	for _, q := range []string{"?state=gone", "?severity=purple", "?limit=0"} {
		e.mustStatus(e.do("GET", "/api/v1/alerts"+q, prov, nil), 422)
	}
	e.mustStatus(e.do("GET", "/api/v1/alerts/alr_nope", prov, nil), 404)
	a := e.do("GET", "/api/v1/alerts/"+id, prov, nil)
	if a.body["state"] != "resolved" || len(a.body["steps"].([]any)) != 4 {
		t.Fatalf("alert: %s", a.raw)
	}
}
