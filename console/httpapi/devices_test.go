package httpapi

import (
	"net/http"
	"strings"
	"testing"
)

func TestSitesAndDevicesAreScopedAndCredentialsShownOnce(t *testing.T) {
	e := newEnv(t)
	prov := e.login("admin", adminPassword)
	e.mustStatus(e.do("POST", "/api/v1/users", prov, map[string]any{"id": "qj-admin", "org_id": "qj", "role": "admin", "password": "qiaojia-pass"}), 201)
	qj := e.login("qj-admin", "qiaojia-pass")

	e.mustStatus(e.do("POST", "/api/v1/sites", prov, map[string]any{"id": "baihetan", "name": "白鹤滩水库", "kind": "reservoir", "org_id": "qj", "lat": 27.2, "lon": 102.9}), 201)
	e.mustStatus(e.do("POST", "/api/v1/sites", prov, map[string]any{"id": "xiluodu", "name": "溪洛渡水库", "kind": "reservoir", "org_id": "ys", "lat": 28.26, "lon": 103.65}), 201)
	e.mustStatus(e.do("POST", "/api/v1/sites", qj, map[string]any{"id": "ys-street", "name": "x", "kind": "street", "org_id": "ys", "lat": 28, "lon": 103}), 403)

	r := e.do("POST", "/api/v1/devices", qj, map[string]any{"id": "bht-gauge-1", "kind": "water_level", "name": "白鹤滩坝前水位计", "site_id": "baihetan", "lat": 27.21, "lon": 102.9})
	e.mustStatus(r, http.StatusCreated)
	mqtt, _ := r.body["mqtt"].(map[string]any)
	if mqtt["username"] != "bht-gauge-1" || len(mqtt["password"].(string)) < 30 || r.body["org_id"] != "qj" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("created device: %s", r.raw)
	}
	if ok := e.do("GET", "/api/v1/devices/bht-gauge-1", qj, nil); ok.status != 200 || strings.Contains(ok.raw, mqtt["password"].(string)) || strings.Contains(ok.raw, "mqtt") {
		t.Fatalf("device read shows credentials: %s", ok.raw)
	}
	if _, ok := e.do("GET", "/api/v1/devices/bht-gauge-1", qj, nil).body["org_id"]; !ok {
		t.Fatal("no org_id")
	}

	// The county cannot add devices to another county's site, nor see them.
	e.mustStatus(e.do("POST", "/api/v1/devices", qj, map[string]any{"id": "xld-gauge", "kind": "water_level", "name": "x", "site_id": "xiluodu", "lat": 28, "lon": 103}), 403)
	e.mustStatus(e.do("POST", "/api/v1/devices", prov, map[string]any{"id": "xld-gauge", "kind": "water_level", "name": "溪洛渡水位计", "site_id": "xiluodu", "lat": 28, "lon": 103}), 201)
	e.mustStatus(e.do("GET", "/api/v1/devices/xld-gauge", qj, nil), 403)
	e.mustStatus(e.do("GET", "/api/v1/sites/xiluodu", qj, nil), 403)
	if n := e.do("GET", "/api/v1/devices", qj, nil).body["item_count"]; n != 1.0 {
		t.Fatalf("county lists %v devices", n)
	}
	if n := e.do("GET", "/api/v1/devices", prov, nil).body["item_count"]; n != 2.0 {
		t.Fatalf("province lists %v devices", n)
	}

	for _, tt := range []struct {
		body  map[string]any
		code  int
		field string
	}{
		{map[string]any{"id": "bht-gauge-1", "kind": "water_level", "name": "dup", "site_id": "baihetan", "lat": 27, "lon": 102}, 409, ""},
		{map[string]any{"id": "g2", "kind": "toaster", "name": "x", "site_id": "baihetan", "lat": 27, "lon": 102}, 422, "kind"},
		{map[string]any{"id": "g2", "kind": "generic", "name": "x", "site_id": "nowhere", "lat": 27, "lon": 102}, 422, "site_id"},
		{map[string]any{"id": "g2", "kind": "generic", "name": "x", "site_id": "baihetan", "lat": 97, "lon": 102}, 422, "lat"},
		{map[string]any{"id": "G 2", "kind": "generic", "name": "x", "site_id": "baihetan", "lat": 27, "lon": 102}, 422, "id"},
	} {
		r := e.do("POST", "/api/v1/devices", prov, tt.body)
		if r.status != tt.code || (tt.field != "" && !strings.Contains(r.raw, `"field":"`+tt.field+`"`)) {
			t.Errorf("%v: %d %s", tt.body, r.status, r.raw)
		}
	}
}
