package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// wallOf matches wall events of one wall that cond accepts.
func wallOf(id string, cond func(w map[string]any) bool) func(sseEvent) bool {
	return func(ev sseEvent) bool {
		w, _ := ev.Data["data"].(map[string]any)
		return ev.Name == "wall" && w["id"] == id && cond(w)
	}
}

// tile returns tile i of a wall as JSON (keys sorted).
func tile(w map[string]any, i int) string {
	b, _ := json.Marshal(w["tiles"].([]any)[i])
	return string(b)
}

// With the demo on there is a wall 指挥大屏 whose large tile is the alert
// area. A threshold alert from real MQTT telemetry puts its site's camera
// there by itself; resolving the alert gives the tile back. The demo wall
// is made once: a restart leaves it as it is.
func TestAlertPinsItsCameraOnTheDemoWall(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	base := "http://" + s.HTTPAddr()
	tok, creds := provision(t, base, "gauge-w") // site bht, county qj

	st, w := getJSON(t, "GET", base+"/api/v1/walls/main", tok, nil)
	if st != 200 || w["name"] != "指挥大屏" || w["org_id"] != "cn" || w["layout"] != "1+5" || len(w["tiles"].([]any)) != 6 {
		t.Fatalf("demo wall: %d %v", st, w)
	}
	var shown []string
	for i := range 6 {
		shown = append(shown, tile(w, i))
	}
	if want := []string{`{"source":null}`, `{"source":{"id":"bht-dam","kind":"camera"}}`, `{"source":{"id":"xld-dam","kind":"camera"}}`,
		`{"source":{"id":"qj-gate","kind":"camera"}}`, `{"source":{"id":"xz-port-gate","kind":"camera"}}`, `{"source":null}`}; strings.Join(shown, ",") != strings.Join(want, ",") {
		t.Fatalf("demo wall tiles: %v", shown)
	}
	if area, _ := json.Marshal(w["alert_area"]); string(area) != "[0]" {
		t.Fatalf("demo wall alert area: %s", area)
	}

	mustPost(t, base, tok, "/api/v1/cameras", map[string]any{"id": "cam-bht", "name": "坝前", "site_id": "bht", "url": "rtsp://10.0.0.5/main", "lat": 27.2, "lon": 102.9}, 201)
	mustPost(t, base, tok, "/api/v1/rules", map[string]any{"id": "wall-high", "kind": "threshold", "device_id": "gauge-w", "metric": "level_w",
		"above": 10, "severity": "red"}, 201)
	wallStream := followEvents(t, base, tok, "?types=wall", "")
	alertStream := followEvents(t, base, tok, "?types=alert", "")
	mqttPublisher(t, s.MQTTAddr())("gauge-w", creds["gauge-w"], `{"level_w": 12}`)
	_, a := alertStream.next(5*time.Second, "raised", alertOf("wall-high", "raised")).alert()
	id := a["id"].(string)
	if f := a["feeds"].([]any); len(f) == 0 || f[0].(map[string]any)["camera_id"] != "cam-bht" {
		t.Fatalf("alert feeds: %v", a)
	}

	pinned := `{"alert_id":"` + id + `","source":{"id":"cam-bht","kind":"camera"}}`
	ev := wallStream.next(5*time.Second, "the alert's camera on tile 0", wallOf("main", func(w map[string]any) bool { return tile(w, 0) == pinned }))
	w = ev.Data["data"].(map[string]any)
	if w["updated_by"] != "system" || tile(w, 1) != `{"source":{"id":"bht-dam","kind":"camera"}}` || ev.Data["org_id"] != "cn" {
		t.Fatalf("pinned wall: %v", ev.Data)
	}
	if _, got := getJSON(t, "GET", base+"/api/v1/walls/main", tok, nil); tile(got, 0) != pinned || got["version"] != w["version"] {
		t.Fatalf("stored: %v", got)
	}

	mustPost(t, base, tok, "/api/v1/alerts/"+id+"/ack", map[string]any{"note": "已确认"}, 200)
	mustPost(t, base, tok, "/api/v1/alerts/"+id+"/resolve", map[string]any{"note": "已处置"}, 200)
	ev = wallStream.next(5*time.Second, "tile 0 given back", wallOf("main", func(w map[string]any) bool { return tile(w, 0) == `{"source":null}` }))
	restored := ev.Data["data"].(map[string]any)
	if restored["version"].(float64) != w["version"].(float64)+1 {
		t.Fatalf("restored: %v, pinned at version %v", restored, w["version"])
	}
	_, trail := getJSON(t, "GET", base+"/api/v1/audit?action=wall.&target=main", tok, nil)
	var steps []string
	for _, it := range trail["items"].([]any) {
		e := it.(map[string]any)
		steps = append(steps, e["actor"].(string)+" "+e["action"].(string)+" "+e["detail"].(map[string]any)["alert"].(string))
	}
	if strings.Join(steps, ",") != "system wall.unpin "+id+",system wall.pin "+id {
		t.Fatalf("audit: %v", steps)
	}

	// Restarted: the demo wall is the one there was.
	stop(t, s)
	s = start(t, cfg, nil)
	defer stop(t, s)
	base = "http://" + s.HTTPAddr()
	_, login := getJSON(t, "POST", base+"/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "admin-password"})
	_, again := getJSON(t, "GET", base+"/api/v1/walls/main", login["token"].(string), nil)
	if again["version"] != restored["version"] || tile(again, 0) != `{"source":null}` {
		t.Fatalf("after a restart: %v", again)
	}
}
