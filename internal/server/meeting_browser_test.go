package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// meetingResult is what tests/browser/meeting.mjs prints.
type meetingResult struct {
	OK          bool           `json:"ok"`
	Error       string         `json:"error"`
	Steps       map[string]int `json:"steps"`
	A           map[string]any `json:"a"`
	B           map[string]any `json:"b"`
	Screenshots []string       `json:"screenshots"`
	Console     []string       `json:"console"`
}

// Two participants meet through Lookout's meeting page in headless
// Chromium with fake camera and microphone: both join with join tokens the
// API issued, each sees the other's video with frames advancing, the
// active speaker follows whoever has the microphone open, one restarts
// ICE on both its connections (a network change) and the video goes on
// both ways, and when one browser dies without a goodbye the other sees it
// leave. Screenshots (A
// at desktop size, B at phone size) go to LOOKOUT_MEETING_SCREENSHOTS or
// the test's temporary directory.
func TestBrowserMeeting(t *testing.T) {
	node, chromium, scripts := browserTools(t)
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	// The SFU's direct sender (the default) carries this meeting:
	// Chromium must decrypt its SRTP, and follow it through an ICE
	// restart; the counter below proves it did.
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	tok, _ := provision(t, base)
	mustPost(t, base, tok, "/api/v1/rooms", map[string]any{"id": "flood-1", "name": "防汛会商", "org_id": "qj"}, 201)
	join := func(identity, name, role string) string {
		_, b := getJSON(t, "POST", base+"/api/v1/rooms/flood-1/tokens", tok, map[string]any{"identity": identity, "name": name, "role": role})
		jt, _ := b["token"].(string)
		if jt == "" {
			t.Fatalf("token: %v", b)
		}
		return base + "/meet/#" + url.Values{"room": {"flood-1"}, "token": {jt}}.Encode()
	}
	urlA, urlB := join("qj-command", "巧家县指挥中心", "host"), join("ys-command", "永善县指挥中心", "participant")

	dir := os.Getenv("LOOKOUT_MEETING_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 75*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(scripts, "meeting.mjs"))
	cmd.Dir = scripts
	cmd.Env = append(os.Environ(), "LOOKOUT_MEET_URL_A="+urlA, "LOOKOUT_MEET_URL_B="+urlB, "LOOKOUT_SCREENSHOT_DIR="+dir,
		"LOOKOUT_CHROMIUM="+chromium, "LOOKOUT_TIMEOUT_MS=60000", "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	began := time.Now()
	runErr := cmd.Run()
	line := strings.TrimSpace(stdout.String())
	if i := strings.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	var res meetingResult
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		t.Fatalf("meeting.mjs (%v): no result: %v\nstdout: %s\nstderr: %s", runErr, err, stdout.String(), stderr.String())
	}
	t.Logf("browser run took %s; steps (ms) %v; screenshots %v", time.Since(began).Round(time.Millisecond), res.Steps, res.Screenshots)
	if runErr != nil || !res.OK {
		t.Fatalf("the meeting failed (%v): %s\nA: %v\nB: %v\nconsole: %q\nstderr: %s", runErr, res.Error, res.A, res.B, res.Console, stderr.String())
	}
	for _, who := range []map[string]any{res.A, res.B} {
		for _, key := range []string{"video_of_a", "video_of_b"} {
			if v, ok := who[key].(map[string]any); ok {
				if w, _ := v["width"].(float64); w <= 0 {
					t.Errorf("%s: %v", key, v)
				}
			}
		}
	}
	if n := metricValue(t, base, "lookout_webrtc_direct_packets_total"); n < 100 {
		t.Errorf("the direct sender sent %v packets of the meeting", n)
	}
	// Chromium's feedback (transport-wide, receiver reports, NACKs) came
	// back through the direct senders' intake, not pion's.
	if n := metricValue(t, base, "lookout_webrtc_direct_rtcp_total"); n < 20 {
		t.Errorf("the direct senders took %v RTCP datagrams of the meeting", n)
	}
	for _, shot := range res.Screenshots {
		if fi, err := os.Stat(shot); err != nil || fi.Size() < 1000 {
			t.Errorf("screenshot %s: %v", shot, err)
		}
	}
	// The room is empty again once the browsers are gone.
	waitFor(t, 10*time.Second, func() bool { return len(s.meetings.Participants()["flood-1"]) == 0 })
}

// The joined message carries the built-in TURN server's credentials, and
// the signaling endpoint refuses a forged token with its close code.
func TestMeetingJoinCarriesTURN(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	cfg.TURN.UDPAddr, cfg.TURN.TCPAddr = "127.0.0.1:0", "127.0.0.1:0"
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	tok, _ := provision(t, base)
	mustPost(t, base, tok, "/api/v1/rooms", map[string]any{"id": "r1", "name": "会商", "org_id": "qj"}, 201)
	_, b := getJSON(t, "POST", base+"/api/v1/rooms/r1/tokens", tok, map[string]any{"identity": "p1", "name": "一号"})
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+s.HTTPAddr()+"/rtc/signal", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := ws.WriteJSON(map[string]any{"type": "join", "token": b["token"]}); err != nil {
		t.Fatal(err)
	}
	var joined struct {
		Type       string `json:"type"`
		ICEServers []struct {
			URLs       []string `json:"urls"`
			Username   string   `json:"username"`
			Credential string   `json:"credential"`
		} `json:"ice_servers"`
	}
	if err := ws.ReadJSON(&joined); err != nil || joined.Type != "joined" {
		t.Fatalf("joined: %+v %v", joined, err)
	}
	var urls []string
	for _, is := range joined.ICEServers {
		urls = append(urls, is.URLs...)
		if !strings.HasSuffix(is.Username, ":p1") || is.Credential == "" {
			t.Errorf("TURN credentials %q %q", is.Username, is.Credential)
		}
	}
	all := strings.Join(urls, " ")
	if !strings.Contains(all, "turn:127.0.0.1:") || !strings.Contains(all, "transport=udp") || !strings.Contains(all, "transport=tcp") {
		t.Fatalf("ICE servers %v", urls)
	}

	forged, _, err := websocket.DefaultDialer.Dial("ws://"+s.HTTPAddr()+"/rtc/signal", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer forged.Close()
	_ = forged.SetReadDeadline(time.Now().Add(10 * time.Second))
	_ = forged.WriteJSON(map[string]any{"type": "join", "token": "eyJhbGciOiJIUzI1NiJ9.e30.forged"})
	var refusal map[string]any
	if err := forged.ReadJSON(&refusal); err != nil || refusal["code"] != "bad_token" {
		t.Fatalf("forged token: %v %v", refusal, err)
	}
	if _, _, err := forged.ReadMessage(); !websocket.IsCloseError(err, 4401) {
		t.Fatalf("forged token closed with %v, want 4401", err)
	}
}
