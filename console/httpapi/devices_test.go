package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/ingest/tsdb"
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

func TestTelemetryQueryAndLatest(t *testing.T) {
	e := newEnv(t)
	prov := e.login("admin", adminPassword)
	e.mustStatus(e.do("POST", "/api/v1/sites", prov, map[string]any{"id": "bht", "name": "白鹤滩", "kind": "reservoir", "org_id": "qj", "lat": 27.2, "lon": 102.9}), 201)
	e.mustStatus(e.do("POST", "/api/v1/devices", prov, map[string]any{"id": "g1", "kind": "water_level", "name": "g1", "site_id": "bht", "lat": 27.2, "lon": 102.9}), 201)

	r := e.do("GET", "/api/v1/devices/g1", prov, nil)
	if r.body["last_seen"] != nil || len(r.body["latest"].(map[string]any)) != 0 {
		t.Fatalf("a silent device: %s", r.raw)
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Minute)
	var ps []tsdb.Point
	for i := 0; i < 120; i++ { // one a second for two minutes, value = second
		ps = append(ps, tsdb.Point{Device: "g1", Metric: "water_level_m", TS: base.Add(time.Duration(i) * time.Second).UnixMilli(), Value: float64(i)})
	}
	ps = append(ps, tsdb.Point{Device: "g1", Metric: "state", TS: base.UnixMilli(), Text: "正常", IsText: true})
	if err := e.store.Write(context.Background(), ps); err != nil {
		t.Fatal(err)
	}
	from, to := strconv.FormatInt(base.UnixMilli(), 10), base.Add(2*time.Minute).Format(time.RFC3339)
	r = e.do("GET", "/api/v1/devices/g1/telemetry?metric=water_level_m&from="+from+"&to="+to, prov, nil)
	if pts := r.body["points"].([]any); r.status != 200 || len(pts) != 120 {
		t.Fatalf("raw: %d %d", r.status, len(r.body["points"].([]any)))
	}
	r = e.do("GET", "/api/v1/devices/g1/telemetry?metric=water_level_m&from="+from+"&to="+to+"&step=60", prov, nil)
	pts := r.body["points"].([]any)
	if len(pts) != 2 || pts[0].(map[string]any)["value"] != 29.5 || pts[1].(map[string]any)["value"] != 89.5 {
		t.Fatalf("step=60: %s", r.raw)
	}
	r = e.do("GET", "/api/v1/devices/g1", prov, nil)
	latest := r.body["latest"].(map[string]any)
	if latest["water_level_m"].(map[string]any)["value"] != 119.0 || latest["state"].(map[string]any)["text"] != "正常" || r.body["last_seen"] == nil {
		t.Fatalf("latest: %s", r.raw)
	}
	for q, field := range map[string]string{
		"":                                 "metric",
		"metric=m&from=yesterday":          "from",
		"metric=m&to=soon":                 "to",
		"metric=m&step=fast":               "step",
		"metric=m&step=-5s":                "step",
		"metric=m&from=2&to=1":             "from",
		"metric=m&from=0&to=9999999999999": "from",
	} {
		r := e.do("GET", "/api/v1/devices/g1/telemetry?"+q, prov, nil)
		if r.status != 422 || !strings.Contains(r.raw, `"field":"`+field+`"`) {
			t.Errorf("?%s: %d %s", q, r.status, r.raw)
		}
	}
	e.mustStatus(e.do("GET", "/api/v1/devices/nope/telemetry?metric=m", prov, nil), 404)
}

func TestRotateCredentials(t *testing.T) {
	e := newEnv(t)
	prov := e.login("admin", adminPassword)
	e.mustStatus(e.do("POST", "/api/v1/sites", prov, map[string]any{"id": "bht", "name": "白鹤滩", "kind": "reservoir", "org_id": "qj", "lat": 27.2, "lon": 102.9}), 201)
	r := e.do("POST", "/api/v1/devices", prov, map[string]any{"id": "g1", "kind": "water_level", "name": "g1", "site_id": "bht", "lat": 27.2, "lon": 102.9})
	old := r.body["mqtt"].(map[string]any)["password"].(string)
	r = e.do("POST", "/api/v1/devices/g1/credentials", prov, nil)
	e.mustStatus(r, 200)
	fresh := r.body["mqtt"].(map[string]any)["password"].(string)
	if fresh == old || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("rotation: %s", r.raw)
	}
	if _, ok := e.devices.AuthenticateDevice("g1", old); ok {
		t.Fatal("the old password still authenticates")
	}
	if _, ok := e.devices.AuthenticateDevice("g1", fresh); !ok {
		t.Fatal("the new password does not authenticate")
	}
	e.mustStatus(e.do("POST", "/api/v1/devices/nope/credentials", prov, nil), 404)
}

func TestSiteLevelsUpdateAndDelete(t *testing.T) {
	e := newEnv(t)
	prov := e.login("admin", adminPassword)
	r := e.do("POST", "/api/v1/sites", prov, map[string]any{"id": "bht", "name": "白鹤滩水库", "kind": "reservoir", "org_id": "qj", "lat": 27.2, "lon": 102.9,
		"levels": map[string]any{"dead_m": 765, "flood_limit_m": 785, "normal_m": 825, "design_flood_m": 827.71, "check_flood_m": 832.34}})
	e.mustStatus(r, 201)
	if r.body["levels"].(map[string]any)["flood_limit_m"] != 785.0 {
		t.Fatalf("levels: %s", r.raw)
	}
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"levels": map[string]any{"flood_limit_m": 790, "normal_m": 780}}, "levels.normal_m"},
		{map[string]any{"levels": map[string]any{"dead_m": 1e6}}, "levels.dead_m"},
		{map[string]any{"lat": 91}, "lat"},
	} {
		r := e.do("PATCH", "/api/v1/sites/bht", prov, tc.body)
		if r.status != 422 || !strings.Contains(r.raw, `"field":"`+tc.field+`"`) {
			t.Errorf("%v: %d %s", tc.body, r.status, r.raw)
		}
	}
	e.mustStatus(e.do("POST", "/api/v1/sites", prov, map[string]any{"id": "st", "name": "街道", "kind": "street", "org_id": "qj", "lat": 27, "lon": 102,
		"levels": map[string]any{"normal_m": 1}}), 422)
	r = e.do("PATCH", "/api/v1/sites/bht", prov, map[string]any{"name": "白鹤滩", "levels": map[string]any{"flood_limit_m": 786, "normal_m": 825}})
	e.mustStatus(r, 200)
	if got := e.do("GET", "/api/v1/sites/bht", prov, nil); got.body["name"] != "白鹤滩" || got.body["levels"].(map[string]any)["flood_limit_m"] != 786.0 {
		t.Fatalf("after patch: %s", got.raw)
	}
	e.mustStatus(e.do("POST", "/api/v1/devices", prov, map[string]any{"id": "g1", "kind": "water_level", "name": "g1", "site_id": "bht", "lat": 27.2, "lon": 102.9}), 201)
	r = e.do("DELETE", "/api/v1/sites/bht", prov, nil)
	if r.status != 409 || r.errCode() != "site_has_devices" {
		t.Fatalf("delete with devices: %d %s", r.status, r.raw)
	}
	e.mustStatus(e.do("POST", "/api/v1/sites", prov, map[string]any{"id": "empty", "name": "空", "kind": "street", "org_id": "qj", "lat": 27, "lon": 102}), 201)
	e.mustStatus(e.do("DELETE", "/api/v1/sites/empty", prov, nil), 204)
	e.mustStatus(e.do("GET", "/api/v1/sites/empty", prov, nil), 404)
}
