package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/internal/testpeers"
)

// sseEvent is one event read off GET /api/v1/events.
type sseEvent struct {
	ID   string
	Name string
	Data map[string]any
}

// alert returns the event's alert and action, for alert events.
func (e sseEvent) alert() (string, map[string]any) {
	a, _ := e.Data["data"].(map[string]any)
	if a == nil {
		return "", nil
	}
	al, _ := a["alert"].(map[string]any)
	act, _ := a["action"].(string)
	return act, al
}

// eventStream follows GET /api/v1/events as a browser would, until the
// test ends.
type eventStream struct {
	t      *testing.T
	ch     chan sseEvent
	cancel context.CancelFunc
	done   chan struct{}
}

func followEvents(t *testing.T, base, tok, query, lastID string) *eventStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/events"+query, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		cancel()
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &eventStream{t: t, ch: make(chan sseEvent, 1024), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Name != "" || ev.ID != "" {
					s.ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.ID = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				ev.Name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.Data)
			}
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *eventStream) close() {
	s.cancel()
	<-s.done
}

// next waits for an event that match accepts, skipping others.
func (s *eventStream) next(within time.Duration, what string, match func(sseEvent) bool) sseEvent {
	s.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev := <-s.ch:
			if match(ev) {
				return ev
			}
		case <-deadline:
			s.t.Fatalf("no event: %s", what)
		}
	}
}

// alertOf matches alert events of a rule with an action.
func alertOf(rule, action string) func(sseEvent) bool {
	return func(ev sseEvent) bool {
		act, a := ev.alert()
		return ev.Name == "alert" && act == action && a["rule_id"] == rule
	}
}

// mqttPublisher publishes as a device with the real mosquitto client.
func mqttPublisher(t *testing.T, addr string) func(device, pass, payload string) {
	host, port, _ := strings.Cut(addr, ":")
	pub, err := testpeers.FindBinary("mosquitto_pub", "", "/usr/bin/mosquitto_pub")
	if err != nil {
		t.Fatal(err)
	}
	return func(device, pass, payload string) {
		t.Helper()
		cmd := exec.Command(pub, "-h", host, "-p", port, "-u", device, "-P", pass, "-V", "311", "-q", "1",
			"-t", "lookout/v1/devices/"+device+"/telemetry", "-m", payload)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_pub: %v %s", err, out)
		}
	}
}

func mustPost(t *testing.T, base, tok, path string, body any, want int) map[string]any {
	t.Helper()
	st, b := getJSON(t, "POST", base+path, tok, body)
	if st != want {
		t.Fatalf("POST %s: %d %v", path, st, b)
	}
	return b
}

// End to end: rules from the API, telemetry from a real mosquitto client,
// alerts on the events stream with their cameras; repeats update, a worse
// reading escalates, the hysteresis band holds, a normal reading clears;
// a vessel leaving its port; a silent gauge. Then a restart with an alert
// active: the same alert goes on.
func TestAlertsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	base := "http://" + s.HTTPAddr()
	tok, creds := provision(t, base, "gauge-a", "gauge-b")
	levels := map[string]any{"flood_limit_m": 785, "normal_m": 825, "design_flood_m": 827.71}
	if st, b := getJSON(t, "PATCH", base+"/api/v1/sites/bht", tok, map[string]any{"levels": levels}); st != 200 {
		t.Fatalf("levels: %d %v", st, b)
	}
	mustPost(t, base, tok, "/api/v1/cameras", map[string]any{"id": "cam-dam", "name": "坝前", "site_id": "bht", "url": "rtsp://admin:secret@10.0.0.5/main", "lat": 27.201, "lon": 102.9}, 201)
	mustPost(t, base, tok, "/api/v1/sites", map[string]any{"id": "port", "name": "港口", "kind": "port", "org_id": "qj", "lat": 26.9, "lon": 102.95}, 201)
	mustPost(t, base, tok, "/api/v1/cameras", map[string]any{"id": "cam-gate", "name": "港口闸口", "site_id": "port", "url": "rtsp://10.0.0.6/main", "lat": 26.9, "lon": 102.95}, 201)
	boat := mustPost(t, base, tok, "/api/v1/devices", map[string]any{"id": "boat-7", "kind": "vessel", "name": "闽狮渔07", "site_id": "port", "lat": 26.9, "lon": 102.95}, 201)
	creds["boat-7"] = boat["mqtt"].(map[string]any)["password"].(string)

	mustPost(t, base, tok, "/api/v1/rules", map[string]any{"id": "levels", "name": "水库水位超汛限", "kind": "threshold", "site_id": "bht", "metric": "water_level_m",
		"steps": []any{
			map[string]any{"severity": "orange", "above": map[string]any{"level": "flood_limit", "offset_m": 1}},
			map[string]any{"severity": "red", "above": map[string]any{"level": "design_flood"}},
		}, "clear_below": map[string]any{"level": "flood_limit"}}, 201)
	mustPost(t, base, tok, "/api/v1/rules", map[string]any{"id": "port-leave", "kind": "geofence", "site_id": "port", "on": "leave", "debounce_s": 5,
		"polygon": [][2]float64{{26.89, 102.94}, {26.89, 102.96}, {26.91, 102.96}, {26.91, 102.94}}, "severity": "yellow"}, 201)
	mustPost(t, base, tok, "/api/v1/rules", map[string]any{"id": "rise", "kind": "rate", "device_id": "gauge-b", "metric": "water_level_m",
		"rise_per_hour": 0.5, "window_s": 60, "severity": "orange"}, 201)
	mustPost(t, base, tok, "/api/v1/rules", map[string]any{"id": "silent", "kind": "no_data", "device_id": "gauge-a", "after_s": 10, "severity": "blue"}, 201)

	events := followEvents(t, base, tok, "?types=alert", "")
	publish := mqttPublisher(t, s.MQTTAddr())
	level := func(v float64) { publish("gauge-a", creds["gauge-a"], fmt.Sprintf(`{"water_level_m": %g}`, v)) }

	level(785.5) // over the flood limit, under the orange bound
	level(786.4)
	ev := events.next(5*time.Second, "raised", alertOf("levels", "raised"))
	_, a := ev.alert()
	id := a["id"].(string)
	feeds := a["feeds"].([]any)
	// The site's own camera first, then the demo's Baihetan dam camera,
	// 1.7 km away.
	if a["severity"] != "orange" || a["state"] != "active" || a["device_id"] != "gauge-a" || len(feeds) != 2 ||
		feeds[0].(map[string]any)["camera_id"] != "cam-dam" || feeds[1].(map[string]any)["camera_id"] != "bht-dam" {
		t.Fatalf("raised: %v", a)
	}
	level(786.6) // a repeat: the same alert, no new one
	level(828)   // past the design flood level
	ev = events.next(5*time.Second, "escalated", alertOf("levels", "escalated"))
	if _, a := ev.alert(); a["id"] != id || a["severity"] != "red" || a["count"].(float64) != 3 {
		t.Fatalf("escalated: %v", a)
	}
	level(785.5) // under the bound, over the clear bound: it stays
	level(784.5)
	ev = events.next(5*time.Second, "cleared", alertOf("levels", "cleared"))
	if _, a := ev.alert(); a["id"] != id || a["cleared_at"] == nil {
		t.Fatalf("cleared: %v", a)
	}
	_, list := getJSON(t, "GET", base+"/api/v1/alerts?state=open&severity=red&rule_id=levels", tok, nil)
	if list["item_count"].(float64) != 1 {
		t.Fatalf("open red alerts: %v", list)
	}

	// A fast rise: a metre in fifty seconds (the readings carry their time).
	now := time.Now().UnixMilli()
	publish("gauge-b", creds["gauge-b"], fmt.Sprintf(`{"ts": %d, "values": {"water_level_m": 700}}`, now-50_000))
	publish("gauge-b", creds["gauge-b"], fmt.Sprintf(`{"ts": %d, "values": {"water_level_m": 701}}`, now))
	ev = events.next(5*time.Second, "rise", alertOf("rise", "raised"))
	if _, a := ev.alert(); a["severity"] != "orange" || a["value"].(float64) < 70 || a["value"].(float64) > 74 {
		t.Fatalf("rise (m/h): %v", a)
	}

	// A vessel leaves its port: the port's camera comes with it.
	publish("boat-7", creds["boat-7"], `{"lat": 26.9, "lon": 102.95}`)
	publish("boat-7", creds["boat-7"], `{"lat": 26.85, "lon": 103.0}`)
	ev = events.next(10*time.Second, "left port (after the five seconds of debounce)", alertOf("port-leave", "raised"))
	if _, a := ev.alert(); a["position"] == nil || len(a["feeds"].([]any)) != 1 || a["feeds"].([]any)[0].(map[string]any)["camera_id"] != "cam-gate" {
		t.Fatalf("vessel: %v", a)
	}

	// The gauge falls silent: no_data after ten seconds.
	ev = events.next(15*time.Second, "silent", alertOf("silent", "raised"))
	if _, a := ev.alert(); a["severity"] != "blue" || a["value"].(float64) < 10 {
		t.Fatalf("silent: %v", a)
	}

	// The operator acknowledges; steps out of order are 409.
	if st, b := getJSON(t, "POST", base+"/api/v1/alerts/"+id+"/resolve", tok, map[string]any{"note": "x"}); st != 409 {
		t.Fatalf("resolve before ack: %d %v", st, b)
	}
	mustPost(t, base, tok, "/api/v1/alerts/"+id+"/ack", map[string]any{"note": "值班员已确认"}, 200)
	events.next(5*time.Second, "acknowledged", alertOf("levels", "acknowledged"))

	// Lookout restarts with the level alert open (cleared) and the gauge
	// high again after: the same alert fires again; none is doubled.
	stop(t, s)
	s = start(t, cfg, nil)
	defer stop(t, s)
	base = "http://" + s.HTTPAddr()
	_, login := getJSON(t, "POST", base+"/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "admin-password"})
	tok = login["token"].(string)
	events = followEvents(t, base, tok, "?types=alert", "")
	publish = mqttPublisher(t, s.MQTTAddr())
	publish("gauge-a", creds["gauge-a"], `{"water_level_m": 786.5}`)
	ev = events.next(5*time.Second, "refired after restart", alertOf("levels", "refired"))
	if _, a := ev.alert(); a["id"] != id || a["state"] != "acknowledged" {
		t.Fatalf("after restart: %v", a)
	}
	_, list = getJSON(t, "GET", base+"/api/v1/alerts?rule_id=levels", tok, nil)
	if list["item_count"].(float64) != 1 {
		t.Fatalf("alerts of the rule after restart: %v", list)
	}
	_, full := getJSON(t, "GET", base+"/api/v1/alerts/"+id, tok, nil)
	var steps []string
	for _, st := range full["steps"].([]any) {
		steps = append(steps, st.(map[string]any)["step"].(string))
	}
	if strings.Join(steps, ",") != "raised,escalated,cleared,acknowledged,refired" {
		t.Fatalf("steps: %v", steps)
	}
}

// The events stream carries only what the listener may see: a county's
// operator gets the alerts of their county, not the neighbour's; the
// province gets both. A listener that reconnects with Last-Event-ID gets
// what it missed; one whose id is from before a restart is told of the gap.
func TestEventsStreamScopedAndResumable(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	tok, creds := provision(t, base, "gauge-qj") // site bht, county qj
	mustPost(t, base, tok, "/api/v1/sites", map[string]any{"id": "ys-site", "name": "溪洛渡", "kind": "reservoir", "org_id": "ys", "lat": 28.26, "lon": 103.64}, 201)
	made := mustPost(t, base, tok, "/api/v1/devices", map[string]any{"id": "gauge-ys", "kind": "water_level", "name": "g", "site_id": "ys-site", "lat": 28.26, "lon": 103.64}, 201)
	creds["gauge-ys"] = made["mqtt"].(map[string]any)["password"].(string)
	mustPost(t, base, tok, "/api/v1/rules", map[string]any{"id": "high", "kind": "threshold", "device_kind": "water_level", "metric": "level_x",
		"above": 10, "severity": "yellow"}, 201)
	mustPost(t, base, tok, "/api/v1/users", map[string]any{"id": "ys-duty", "org_id": "ys", "role": "operator", "password": "yongshan-duty"}, 201)
	_, login := getJSON(t, "POST", base+"/api/v1/auth/login", "", map[string]string{"username": "ys-duty", "password": "yongshan-duty"})
	ysTok := login["token"].(string)

	province := followEvents(t, base, tok, "?types=alert", "")
	county := followEvents(t, base, ysTok, "", "")
	publish := mqttPublisher(t, s.MQTTAddr())
	publish("gauge-qj", creds["gauge-qj"], `{"level_x": 11}`)
	publish("gauge-ys", creds["gauge-ys"], `{"level_x": 12}`)
	fromQJ := func(ev sseEvent) bool {
		_, a := ev.alert()
		return a["rule_id"] == "high" && a["device_id"] == "gauge-qj"
	}
	fromYS := func(ev sseEvent) bool {
		_, a := ev.alert()
		return a["rule_id"] == "high" && a["device_id"] == "gauge-ys"
	}
	province.next(5*time.Second, "province sees qj", fromQJ)
	last := province.next(5*time.Second, "province sees ys", fromYS)
	// The county stream: its own alert, never the neighbour's (events are
	// in order, so once its own has come, the other would have come first).
	seen := county.next(5*time.Second, "county sees ys", func(ev sseEvent) bool {
		if fromQJ(ev) {
			t.Fatalf("the ys operator got a qj alert: %v", ev.Data)
		}
		return fromYS(ev)
	})
	if seen.Name != "alert" {
		t.Fatalf("county event: %+v", seen)
	}
	// Registry changes are events too, for those who may see them: a
	// camera of each county; the ys operator hears of its own only, and
	// never of a camera's password.
	mustPost(t, base, tok, "/api/v1/cameras", map[string]any{"id": "cam-qj", "name": "qj", "site_id": "bht", "url": "rtsp://10.0.0.7/main", "lat": 27.2, "lon": 102.9}, 201)
	mustPost(t, base, tok, "/api/v1/cameras", map[string]any{"id": "cam-ys", "name": "ys", "site_id": "ys-site", "url": "rtsp://admin:hunter2@10.0.0.8/main", "lat": 28.26, "lon": 103.64}, 201)
	cam := county.next(5*time.Second, "ys camera event", func(ev sseEvent) bool {
		if ev.Name != "camera" {
			return false
		}
		c, _ := ev.Data["data"].(map[string]any)["camera"].(map[string]any)
		if c["id"] == "cam-qj" {
			t.Fatalf("the ys operator heard of a qj camera")
		}
		return c["id"] == "cam-ys"
	})
	if raw, _ := json.Marshal(cam.Data); strings.Contains(string(raw), "hunter2") || cam.Data["data"].(map[string]any)["action"] != "created" {
		t.Fatalf("camera event: %s", raw)
	}
	_, ys := getJSON(t, "GET", base+"/api/v1/alerts?rule_id=high", ysTok, nil)
	if ys["item_count"].(float64) != 1 {
		t.Fatalf("ys alerts: %v", ys)
	}

	// The province's console drops off; meanwhile the qj alert clears.
	// Reconnecting with the last id it saw, it gets exactly that.
	province.close()
	publish("gauge-qj", creds["gauge-qj"], `{"level_x": 5}`)
	publish("gauge-ys", creds["gauge-ys"], `{"level_x": 5}`)
	county.next(5*time.Second, "county: its own clear, and not the other's before it", func(ev sseEvent) bool {
		if fromQJ(ev) {
			t.Fatalf("the ys operator got a qj alert: %v", ev.Data)
		}
		act, _ := ev.alert()
		return fromYS(ev) && act == "cleared"
	})
	resumed := followEvents(t, base, tok, "?types=alert", last.ID)
	ev := resumed.next(5*time.Second, "missed clear", func(ev sseEvent) bool { act, a := ev.alert(); return act == "cleared" && a["device_id"] == "gauge-qj" })
	if ev.ID == last.ID {
		t.Fatalf("replayed the last seen event %s again", ev.ID)
	}
	// An id from before a restart (another epoch) cannot be replayed.
	gap := followEvents(t, base, tok, "?types=alert", "1-5")
	gap.next(5*time.Second, "gap", func(ev sseEvent) bool { return ev.Name == "gap" })
	if st, _ := getJSON(t, "GET", base+"/api/v1/events?types=weather", tok, nil); st != 422 {
		t.Fatalf("unknown type: %d", st)
	}
}

// Rules from files under alerts.rule_files load at start and are changed
// only there; a bad file stops the start, naming the file, the rule and
// the field.
func TestRuleFilesLoadAtStart(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "rules.yaml")
	good := "rules:\n  - id: lamp-fault\n    name: 路灯故障\n    kind: threshold\n    device_kind: streetlight\n    metric: fault\n    above: 0\n    severity: yellow\n"
	if err := os.WriteFile(file, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, filepath.Join(dir, "data"))
	cfg.Bootstrap.AdminPassword = "admin-password"
	cfg.Alerts.RuleFiles = []string{file}
	s := start(t, cfg, nil)
	base := "http://" + s.HTTPAddr()
	_, login := getJSON(t, "POST", base+"/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "admin-password"})
	tok := login["token"].(string)
	st, r := getJSON(t, "GET", base+"/api/v1/rules/lamp-fault", tok, nil)
	if st != 200 || r["source"] != "file:"+file || r["org_id"] != "cn" {
		t.Fatalf("file rule: %d %v", st, r)
	}
	if st, _ := getJSON(t, "GET", base+"/api/v1/rules/reservoir-levels", tok, nil); st != 200 {
		t.Fatalf("the demo's rules: %d", st)
	}
	if st, b := getJSON(t, "DELETE", base+"/api/v1/rules/lamp-fault", tok, nil); st != 409 || b["error"].(map[string]any)["code"] != "rule_from_file" {
		t.Fatalf("delete a file rule: %d %v", st, b)
	}
	stop(t, s)

	bad := strings.Replace(good, "metric: fault", "metrc: fault", 1)
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	s = New(Params{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "test"})
	err := s.Start(context.Background())
	if err == nil {
		stop(t, s)
		t.Fatal("started with a bad rule file")
	}
	for _, want := range []string{file, "lamp-fault", `"metrc"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// An alert saves the moments before it from a camera that shows it (an
// always-on camera of its site): the clip is recorded with the alert and
// served as MP4.
func TestAlertSavesAClip(t *testing.T) {
	cam := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{GOP: 10})
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	tok, creds := provision(t, base, "gauge-c")
	mustPost(t, base, tok, "/api/v1/cameras", map[string]any{"id": "cam-live", "name": "坝前", "site_id": "bht", "url": cam.URL, "lat": 27.2, "lon": 102.9}, 201)
	waitFor(t, 15*time.Second, func() bool {
		_, c := getJSON(t, "GET", base+"/api/v1/cameras/cam-live", tok, nil)
		st, _ := c["stream"].(map[string]any)
		pb, _ := st["prebuffer"].(map[string]any)
		return pb != nil && pb["frames"].(float64) > 25
	})
	mustPost(t, base, tok, "/api/v1/rules", map[string]any{"id": "clip-high", "kind": "threshold", "device_id": "gauge-c", "metric": "water_level_m",
		"above": 10, "severity": "red"}, 201)
	events := followEvents(t, base, tok, "?types=alert", "")
	mqttPublisher(t, s.MQTTAddr())("gauge-c", creds["gauge-c"], `{"water_level_m": 12}`)
	ev := events.next(20*time.Second, "the alert with its clip", alertOf("clip-high", "clip"))
	_, a := ev.alert()
	ids := a["clips"].([]any)
	if len(ids) != 1 {
		t.Fatalf("clips: %v", a["clips"])
	}
	req, _ := http.NewRequest("GET", base+"/api/v1/clips/"+ids[0].(string), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	head := make([]byte, 8)
	if _, err := io.ReadFull(resp.Body, head); err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "video/mp4" || string(head[4:8]) != "ftyp" {
		t.Fatalf("clip: %d %s % x %v", resp.StatusCode, resp.Header.Get("Content-Type"), head, err)
	}
	_, trail := getJSON(t, "GET", base+"/api/v1/audit?action=clip.create", tok, nil)
	if items := trail["items"].([]any); len(items) != 1 || items[0].(map[string]any)["actor"] != "alerts" {
		t.Fatalf("audit: %v", trail)
	}
}
