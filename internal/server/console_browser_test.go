package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/internal/testpeers"
)

// consoleRun is what tests/browser/console.mjs prints.
type consoleRun struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
	Steps []struct {
		Name    string          `json:"name"`
		OK      bool            `json:"ok"`
		Skipped bool            `json:"skipped"`
		MS      int             `json:"ms"`
		Error   string          `json:"error"`
		Detail  json.RawMessage `json:"detail"`
	} `json:"steps"`
	Figures map[string]float64 `json:"figures"`
	Console []string           `json:"console"`
}

// The console in headless Chromium, as a county water bureau's duty
// operator uses it: the login in Chinese (and English on the switch), the
// wall with a real ffmpeg camera live and its frames advancing, a camera
// dragged onto a tile, the camera dropping (its tile says so) and coming
// back (the tile plays again by itself), a tile patrol, a meeting
// participant (Chromium's fake camera on the meeting page) dragged onto a
// tile and leaving again, the big screen in a second window following a
// layout change, a water level published over MQTT crossing the threshold
// (the red alert appears, its camera is pinned to the wall's alert area
// and its chart opens, the alarm sounds until acknowledged), a brightness
// command to a lamp that acknowledges it, the language switch, and the
// map. Screenshots of the wall, the alert panel, the big screen, the
// device page and the map are kept in test-artifacts/console (or where
// LOOKOUT_CONSOLE_SHOTS says).
func TestConsoleInBrowser(t *testing.T) {
	node, chromium, scripts := browserTools(t)
	camStreet := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{Path: "street"})
	camDam := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{Path: "dam"})
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()

	st, login := getJSON(t, "POST", base+"/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "admin-password"})
	if st != 200 {
		t.Fatalf("login: %d", st)
	}
	admin := login["token"].(string)
	// The county water bureau (巧家县水务局, a demo organisation no demo
	// site belongs to): its reservoir and a street, a camera at each, a
	// gauge and a lamp.
	mustPost(t, base, admin, "/api/v1/sites", map[string]any{"id": "xs-dam", "name": "响水水库", "kind": "reservoir", "org_id": "qj-water", "lat": 27.05, "lon": 102.95}, 201)
	mustPost(t, base, admin, "/api/v1/sites", map[string]any{"id": "xs-street", "name": "新华街", "kind": "street", "org_id": "qj-water", "lat": 26.91, "lon": 102.92}, 201)
	mustPost(t, base, admin, "/api/v1/cameras", map[string]any{"id": "cam-street", "name": "新华街口", "site_id": "xs-street", "url": camStreet.URL, "lat": 26.91, "lon": 102.92}, 201)
	mustPost(t, base, admin, "/api/v1/cameras", map[string]any{"id": "cam-dam", "name": "响水坝前", "site_id": "xs-dam", "url": camDam.URL, "lat": 27.05, "lon": 102.95}, 201)
	gauge := mustPost(t, base, admin, "/api/v1/devices", map[string]any{"id": "gauge-xs", "kind": "water_level", "name": "响水水位计", "site_id": "xs-dam", "lat": 27.05, "lon": 102.95}, 201)
	lamp := mustPost(t, base, admin, "/api/v1/devices", map[string]any{"id": "lamp-xs", "kind": "streetlight", "name": "新华街 1 号灯", "site_id": "xs-street", "lat": 26.91, "lon": 102.92}, 201)
	mustPost(t, base, admin, "/api/v1/rules", map[string]any{"id": "xs-level", "name": "响水水库超设计洪水位", "kind": "threshold", "device_id": "gauge-xs",
		"metric": "water_level_m", "above": 1720.0, "clear_below": 1719.5, "severity": "red"}, 201)
	mustPost(t, base, admin, "/api/v1/users", map[string]any{"id": "duty", "display_name": "值班员小李", "org_id": "qj-water", "role": "operator", "password": "duty-password-1"}, 201)
	mustPost(t, base, admin, "/api/v1/walls", map[string]any{"id": "ops", "name": "水务局大屏", "org_id": "qj-water", "layout": "1+5", "alert_area": []int{0}}, 201)
	if st, b := getJSON(t, "PUT", base+"/api/v1/walls/ops/tiles/1", admin, map[string]any{"source": map[string]any{"kind": "camera", "id": "cam-street"}}); st != 200 {
		t.Fatalf("tile: %d %v", st, b)
	}

	// A meeting of the bureau, and a join link for a resettlement
	// officer whose camera the operator puts on the wall.
	mustPost(t, base, admin, "/api/v1/rooms", map[string]any{"id": "xs-room", "name": "防汛会商", "org_id": "qj-water"}, 201)
	join := mustPost(t, base, admin, "/api/v1/rooms/xs-room/tokens", map[string]any{"identity": "xiaowang", "name": "小王（安置点）"}, 201)
	meetURL := base + "/meet/#room=xs-room&token=" + join["token"].(string)

	lampClient := fakeLamp(t, s.MQTTAddr(), "lamp-xs", lamp["mqtt"].(map[string]any)["password"].(string), func(map[string]any) (bool, bool) { return true, true })
	defer lampClient.Disconnect(100)
	publish := mqttPublisher(t, s.MQTTAddr())
	gaugePass := gauge["mqtt"].(map[string]any)["password"].(string)
	// A boat of the reservoir, reporting its position three times, for
	// the map's vessel with heading and track.
	boat := mustPost(t, base, admin, "/api/v1/devices", map[string]any{"id": "boat-xs", "kind": "vessel", "name": "响水巡逻艇", "site_id": "xs-dam", "lat": 27.04, "lon": 102.94}, 201)
	boatPass := boat["mqtt"].(map[string]any)["password"].(string)
	now := time.Now()
	for i, pos := range [][2]float64{{27.040, 102.940}, {27.044, 102.946}, {27.048, 102.952}} {
		publish("boat-xs", boatPass, fmt.Sprintf(`{"ts": %d, "values": {"lat": %g, "lon": %g, "sog": 6.5, "cog": 48, "heading": 47}}`,
			now.Add(time.Duration(i-3)*time.Minute).UnixMilli(), pos[0], pos[1]))
	}
	// Some history for the alert's chart, below the threshold.
	for _, v := range []float64{1717.2, 1718.0, 1718.9} {
		publish("gauge-xs", gaugePass, fmt.Sprintf(`{"water_level_m": %g}`, v))
	}
	// What the browser script asks for on its way: the alert, and camera
	// A dropping and coming back.
	triggers := http.NewServeMux()
	triggers.HandleFunc("POST /alert", func(w http.ResponseWriter, r *http.Request) {
		publish("gauge-xs", gaugePass, `{"water_level_m": 1720.6}`)
		w.WriteHeader(http.StatusNoContent)
	})
	triggers.HandleFunc("POST /camera-a/stop", func(w http.ResponseWriter, r *http.Request) {
		camStreet.Stop()
		w.WriteHeader(http.StatusNoContent)
	})
	triggers.HandleFunc("POST /camera-a/start", func(w http.ResponseWriter, r *http.Request) {
		camStreet.Start()
		w.WriteHeader(http.StatusNoContent)
	})
	trigger := httptest.NewServer(triggers)
	defer trigger.Close()

	for _, cam := range []string{"cam-street", "cam-dam"} {
		waitFor(t, 20*time.Second, func() bool {
			_, c := getJSON(t, "GET", base+"/api/v1/cameras/"+cam, admin, nil)
			return c["state"] == "live"
		})
	}

	shots := artifactsDir(t)
	runConsole(t, node, chromium, scripts, 150*time.Second,
		"LOOKOUT_BASE="+base,
		"LOOKOUT_USER=duty", "LOOKOUT_PASSWORD=duty-password-1", "LOOKOUT_ORG_NAME=巧家县水务局",
		"LOOKOUT_WALL=ops", "LOOKOUT_CAMERA_A=cam-street", "LOOKOUT_CAMERA_B=cam-dam", "LOOKOUT_LAMP=lamp-xs",
		"LOOKOUT_TRIGGER="+trigger.URL,
		"LOOKOUT_MEET_URL="+meetURL, "LOOKOUT_PARTICIPANT=xiaowang",
		"LOOKOUT_SHOTS="+shots,
	)
	for _, name := range []string{"wall.png", "alerts.png", "screen.png", "device.png", "map.png"} {
		if fi, err := os.Stat(filepath.Join(shots, name)); err != nil || fi.Size() < 5000 {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}

	// The camera clicked on the map went onto the wall: the first empty
	// tile outside the alert area.
	_, wall := getJSON(t, "GET", base+"/api/v1/walls/ops", admin, nil)
	onWall := false
	for _, tile := range wall["tiles"].([]any) {
		if src, _ := tile.(map[string]any)["source"].(map[string]any); src != nil && src["id"] == "cam-dam" {
			onWall = true
		}
	}
	if !onWall {
		t.Errorf("the camera clicked on the map is not on the wall: %v", wall["tiles"])
	}

	// What the browser did is on the record: the tile the operator set,
	// the pin the server made, the acknowledgement and the command.
	_, audit := getJSON(t, "GET", base+"/api/v1/audit?limit=500", admin, nil)
	seen := map[string]bool{}
	for _, it := range audit["items"].([]any) {
		e := it.(map[string]any)
		seen[fmt.Sprint(e["action"], " by ", e["actor"])] = true
	}
	for _, want := range []string{"wall.tile by duty", "wall.pin by system", "wall.unpin by system", "alert.ack by duty", "alert.dispatch by duty",
		"alert.resolve by duty", "alert.close by duty", "command.send by duty", "meeting.watch by duty"} {
		if !seen[want] {
			t.Errorf("audit log lacks %q", want)
		}
	}
}

// runConsole runs tests/browser/console.mjs with env (LOOKOUT_* settings)
// within timeout, logs its steps and figures, and fails the test on a
// failed step.
func runConsole(t *testing.T, node, chromium, scripts string, timeout time.Duration, env ...string) consoleRun {
	t.Helper()
	return runBrowserScript(t, node, chromium, scripts, "console.mjs", timeout, nil, env...)
}

// runBrowserScript runs one of tests/browser's scripts with env within
// timeout, logs its steps and figures, and fails the test on a failed
// step. The script's last line of output is its result: a consoleRun, and
// whatever else the script reports, which out (when not nil) is decoded
// from too.
func runBrowserScript(t *testing.T, node, chromium, scripts, script string, timeout time.Duration, out any, env ...string) consoleRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(scripts, script))
	cmd.Dir = scripts
	cmd.Env = append(append(os.Environ(), env...),
		"LOOKOUT_CHROMIUM="+chromium,
		fmt.Sprintf("LOOKOUT_TIMEOUT_MS=%d", (timeout-10*time.Second).Milliseconds()),
		"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	var res consoleRun
	line := []byte(lastLine(stdout.String()))
	err := json.Unmarshal(line, &res)
	if err == nil && out != nil {
		err = json.Unmarshal(line, out)
	}
	if err != nil {
		t.Fatalf("%s (%v): no result: %v\nstdout: %s\nstderr: %s", script, runErr, err, stdout.String(), stderr.String())
	}
	for _, s := range res.Steps {
		switch {
		case s.Skipped:
			t.Logf("skipped  %s", s.Name)
		case s.OK:
			t.Logf("ok %6d ms  %s %s", s.MS, s.Name, s.Detail)
		default:
			t.Errorf("FAILED after %d ms: %s: %s", s.MS, s.Name, s.Error)
		}
	}
	t.Logf("figures: %v", res.Figures)
	if len(res.Console) > 0 {
		t.Logf("the pages' console: %q", res.Console)
	}
	if runErr != nil || !res.OK {
		t.Fatalf("%s failed (%v): %s\nstderr: %s", script, runErr, res.Error, stderr.String())
	}
	return res
}

// The server restarts (on the same address, as after an upgrade) under a
// console showing a live wall: the page is not reloaded, its live
// indicator shows the loss, the tile plays again by itself on the new
// server, and a change made there reaches the page.
func TestConsoleSurvivesServerRestart(t *testing.T) {
	node, chromium, scripts := browserTools(t)
	cam := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{Path: "street"})
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	var mu sync.Mutex
	s := start(t, cfg, nil)
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		stop(t, s)
	}()
	addr := s.HTTPAddr()
	base := "http://" + addr
	_, login := getJSON(t, "POST", base+"/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "admin-password"})
	admin := login["token"].(string)
	mustPost(t, base, admin, "/api/v1/sites", map[string]any{"id": "xs-street", "name": "新华街", "kind": "street", "org_id": "qj-water", "lat": 26.91, "lon": 102.92}, 201)
	mustPost(t, base, admin, "/api/v1/cameras", map[string]any{"id": "cam-street", "name": "新华街口", "site_id": "xs-street", "url": cam.URL, "lat": 26.91, "lon": 102.92}, 201)
	mustPost(t, base, admin, "/api/v1/users", map[string]any{"id": "duty", "display_name": "值班员小李", "org_id": "qj-water", "role": "operator", "password": "duty-password-1"}, 201)
	mustPost(t, base, admin, "/api/v1/walls", map[string]any{"id": "ops", "name": "水务局大屏", "org_id": "qj-water", "layout": "1+5"}, 201)
	if st, b := getJSON(t, "PUT", base+"/api/v1/walls/ops/tiles/1", admin, map[string]any{"source": map[string]any{"kind": "camera", "id": "cam-street"}}); st != 200 {
		t.Fatalf("tile: %d %v", st, b)
	}
	waitFor(t, 20*time.Second, func() bool {
		_, c := getJSON(t, "GET", base+"/api/v1/cameras/cam-street", admin, nil)
		return c["state"] == "live"
	})
	triggers := http.NewServeMux()
	triggers.HandleFunc("POST /restart", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		stop(t, s)
		again := cfg
		again.HTTP.Addr = addr
		s = start(t, again, nil)
		w.WriteHeader(http.StatusNoContent)
	})
	triggers.HandleFunc("POST /layout-4", func(w http.ResponseWriter, r *http.Request) {
		_, login := getJSON(t, "POST", base+"/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "admin-password"})
		if st, _ := getJSON(t, "PATCH", base+"/api/v1/walls/ops", login["token"].(string), map[string]any{"layout": "4"}); st != 200 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	trigger := httptest.NewServer(triggers)
	defer trigger.Close()
	runConsole(t, node, chromium, scripts, 120*time.Second,
		"LOOKOUT_SCENARIO=restart",
		"LOOKOUT_BASE="+base,
		"LOOKOUT_USER=duty", "LOOKOUT_PASSWORD=duty-password-1", "LOOKOUT_ORG_NAME=巧家县水务局",
		"LOOKOUT_WALL=ops", "LOOKOUT_CAMERA_A=cam-street",
		"LOOKOUT_TRIGGER="+trigger.URL,
		"LOOKOUT_SHOTS="+t.TempDir(),
	)
}

// A hearing officer's console: the petitions page instead of the wall,
// a petition recorded (a wrong ID number refused on the form), the
// petitioner whole in the officer's view and masked in the list, its
// hearing scheduled.
func TestConsolePetitionsInBrowser(t *testing.T) {
	node, chromium, scripts := browserTools(t)
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	_, login := getJSON(t, "POST", base+"/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "admin-password"})
	admin := login["token"].(string)
	mustPost(t, base, admin, "/api/v1/users", map[string]any{"id": "officer-li", "display_name": "接访员李", "org_id": "qj-water", "role": "hearing_officer", "password": "hearing-password-1"}, 201)
	shots := artifactsDir(t)
	runConsole(t, node, chromium, scripts, 90*time.Second,
		"LOOKOUT_SCENARIO=petitions",
		"LOOKOUT_BASE="+base,
		"LOOKOUT_USER=officer-li", "LOOKOUT_PASSWORD=hearing-password-1", "LOOKOUT_ORG_NAME=巧家县水务局",
		"LOOKOUT_SHOTS="+shots,
	)
	_, list := getJSON(t, "GET", base+"/api/v1/petitions", admin, nil)
	items, _ := list["items"].([]any)
	var recorded []map[string]any // besides the demo's
	for _, it := range items {
		if p := it.(map[string]any); p["created_by"] == "officer-li" {
			recorded = append(recorded, p)
		}
	}
	if len(recorded) != 1 || recorded[0]["state"] != "scheduled" {
		t.Fatalf("petitions after the run: %v", list)
	}
}

// artifactsDir is where the browser tests keep their screenshots after the
// run: test-artifacts/console (ignored by git), or LOOKOUT_CONSOLE_SHOTS.
func artifactsDir(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("LOOKOUT_CONSOLE_SHOTS"); dir != "" {
		return dir
	}
	dir, err := filepath.Abs("../../test-artifacts/console")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
