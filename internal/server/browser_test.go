package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/internal/testpeers"
)

// browserTools finds node, Debian's Chromium and the npm packages of
// tests/browser. Without them the test is skipped, with what to run, on a
// developer's machine; in CI (CI=true) it fails instead.
func browserTools(t *testing.T) (node, chromium, scripts string) {
	t.Helper()
	scripts, _ = filepath.Abs("../../tests/browser")
	var missing []string
	node, err := exec.LookPath("node")
	if err != nil {
		missing = append(missing, "node")
	}
	chromium = os.Getenv("LOOKOUT_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, chromium)
	}
	if _, err := os.Stat(filepath.Join(scripts, "node_modules", "playwright-core", "package.json")); err != nil {
		missing = append(missing, "tests/browser/node_modules (npm ci)")
	}
	if len(missing) > 0 {
		msg := "browser test needs " + strings.Join(missing, ", ") + ": run `make test` (or `make test-deps`), which installs them"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return node, chromium, scripts
}

// playerResult is what tests/browser/whep_player.mjs prints.
type playerResult struct {
	OK             bool     `json:"ok"`
	Error          string   `json:"error"`
	State          string   `json:"state"`
	Status         string   `json:"status"`
	PageError      string   `json:"page_error"`
	FirstFrameMS   float64  `json:"first_frame_ms"`
	Width          int      `json:"width"`
	Height         int      `json:"height"`
	Frames         int      `json:"frames"`
	FramesAdvanced int      `json:"frames_advanced"`
	Dropped        int      `json:"dropped"`
	TimeAdvanced   float64  `json:"current_time_advanced"`
	Paused         bool     `json:"paused"`
	Presented      int      `json:"presented"`
	DroppedAdv     int      `json:"dropped_advanced"`
	Screenshot     string   `json:"screenshot"`
	Console        []string `json:"console"`
}

// lastLine is the last line of a script's output: its result.
func lastLine(out string) string {
	out = strings.TrimSpace(out)
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		return out[i+1:]
	}
	return out
}

// runPlayer opens page in Chromium through whep_player.mjs, within 40 s,
// and returns what it saw and whether it exited 0.
func runPlayer(t *testing.T, node, chromium, scripts, page, shot string) (playerResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(scripts, "whep_player.mjs"))
	cmd.Dir = scripts
	cmd.Env = append(os.Environ(),
		"LOOKOUT_PLAYER_URL="+page,
		"LOOKOUT_WANT_SIZE=640x360",
		"LOOKOUT_SCREENSHOT="+shot,
		"LOOKOUT_CHROMIUM="+chromium,
		"LOOKOUT_TIMEOUT_MS=30000",
		"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	var res playerResult
	if err := json.Unmarshal([]byte(lastLine(stdout.String())), &res); err != nil {
		t.Fatalf("whep_player.mjs (%v): no result: %v\nstdout: %s\nstderr: %s", runErr, err, stdout.String(), stderr.String())
	}
	if runErr != nil && stderr.Len() > 0 {
		t.Logf("whep_player.mjs stderr: %s", stderr.String())
	}
	return res, runErr
}

// Lookout's player page, in headless Chromium, plays a camera (a real
// ffmpeg H.264 stream over RTSP) over WHEP: the video has the camera's size
// and its frames advance; leaving the page hangs the session up. A refused
// token shows as a failure with the server's reason.
func TestBrowserPlaysCameraOverWHEP(t *testing.T) {
	node, chromium, scripts := browserTools(t)
	cam := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{})
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	tok, _ := provision(t, base)
	mustPost(t, base, tok, "/api/v1/cameras", map[string]any{"id": "cam-dam", "name": "坝前", "site_id": "bht", "url": cam.URL, "lat": 27.2, "lon": 102.9}, 201)
	viewers := func() float64 {
		_, c := getJSON(t, "GET", base+"/api/v1/cameras/cam-dam", tok, nil)
		st, _ := c["stream"].(map[string]any)
		v, _ := st["viewers"].(float64)
		return v
	}
	waitFor(t, 15*time.Second, func() bool {
		_, c := getJSON(t, "GET", base+"/api/v1/cameras/cam-dam", tok, nil)
		st, _ := c["stream"].(map[string]any)
		src, _ := st["source"].(map[string]any)
		keyframes, _ := src["keyframes"].(float64)
		return c["state"] == "live" && st["codec"] == "H264" && keyframes >= 1
	})
	pageFor := func(token string) string {
		return base + "/player/#" + url.Values{"camera": {"cam-dam"}, "token": {token}}.Encode()
	}

	// LOOKOUT_PLAYER_SCREENSHOT keeps the screenshot where it says;
	// otherwise it goes with the test's temporary directory.
	shot := os.Getenv("LOOKOUT_PLAYER_SCREENSHOT")
	if shot == "" {
		shot = filepath.Join(t.TempDir(), "player.png")
	}
	began := time.Now()
	res, err := runPlayer(t, node, chromium, scripts, pageFor(tok), shot)
	t.Logf("browser run took %s; first frame %.0f ms after the page loaded; %dx%d, %d frames (%d in the last 2 s, %d dropped, %d presented); screenshot %s",
		time.Since(began).Round(time.Millisecond), res.FirstFrameMS, res.Width, res.Height, res.Frames, res.FramesAdvanced, res.DroppedAdv, res.Presented, res.Screenshot)
	if len(res.Console) > 0 {
		t.Logf("the page's console: %q", res.Console)
	}
	if err != nil || !res.OK {
		t.Fatalf("the page did not play (%v): %s, state %q %q\nconsole: %q", err, res.Error, res.State, res.Status, res.Console)
	}
	if res.Width != 640 || res.Height != 360 {
		t.Errorf("video %dx%d, want 640x360", res.Width, res.Height)
	}
	// 25 fps for 2 s: 50 frames decoded and shown; ask for half, so a
	// loaded machine passes.
	if res.FramesAdvanced < 25 || res.Presented < 25 || res.TimeAdvanced < 1 {
		t.Errorf("in 2 s the video decoded %d frames, showed %d and advanced %.2f s", res.FramesAdvanced, res.Presented, res.TimeAdvanced)
	}
	if res.FirstFrameMS <= 0 || res.FirstFrameMS > 10000 {
		t.Errorf("first frame %.0f ms after the page loaded", res.FirstFrameMS)
	}
	if res.State != "playing" || !strings.Contains(res.Status, "播放中") {
		t.Errorf("the page says %q (%s)", res.Status, res.State)
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 1000 {
		t.Errorf("screenshot %s: %v", shot, err)
	}
	// Leaving the page sent DELETE on the session, and the session ended
	// well before its ICE timeout (15 s). The browser closes the page's
	// peer connection as it unloads, which ends the session too, so the
	// DELETE may find it gone already (404).
	deletes := func() float64 {
		series := `lookout_http_requests_total{code="%d",method="DELETE",route="/api/v1/whep/sessions/:id"}`
		return metricValue(t, base, fmt.Sprintf(series, 204)) + metricValue(t, base, fmt.Sprintf(series, 404))
	}
	if !eventually(5*time.Second, func() bool { return deletes() == 1 }) {
		t.Errorf("leaving the page sent %v DELETEs of the session, want 1", deletes())
	}
	waitFor(t, 5*time.Second, func() bool { return viewers() == 0 })

	res, err = runPlayer(t, node, chromium, scripts, pageFor("not.a.token"), filepath.Join(t.TempDir(), "refused.png"))
	if err == nil || res.OK || res.State != "failed" || !strings.Contains(res.Status, "连接失败") || !strings.Contains(res.PageError, "invalid_token") {
		t.Errorf("a refused token: %v, state %q %q, error %q (%s)", err, res.State, res.Status, res.PageError, res.Error)
	}
}
