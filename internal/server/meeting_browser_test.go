package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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
	// ServerMetrics are the server's lookout_meeting_ series, read when
	// a step failed.
	ServerMetrics []string `json:"server_metrics"`
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
	res := runMeetingScript(t, node, chromium, scripts, urlA, urlB, "LOOKOUT_SCREENSHOT_DIR="+dir)
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

// runMeetingScript runs tests/browser/meeting.mjs for the two pages, with
// more of its environment in env, and fails the test unless it passed.
func runMeetingScript(t *testing.T, node, chromium, scripts, urlA, urlB string, env ...string) meetingResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 75*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(scripts, "meeting.mjs"))
	cmd.Dir = scripts
	cmd.Env = append(append(os.Environ(), "LOOKOUT_MEET_URL_A="+urlA, "LOOKOUT_MEET_URL_B="+urlB,
		"LOOKOUT_CHROMIUM="+chromium, "LOOKOUT_TIMEOUT_MS=60000", "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1"), env...)
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
		t.Fatalf("the meeting failed (%v): %s\nA: %v\nB: %v\nconsole: %q\nstderr: %s\nthe server's meeting figures then:\n%s",
			runErr, res.Error, res.A, res.B, res.Console, stderr.String(), strings.Join(res.ServerMetrics, "\n"))
	}
	return res
}

// Two Chromium participants publish through a link that loses one video
// packet in 20 on the way to the SFU (a NAT-like relay in front of its UDP
// port, the port's address advertised as 127.0.0.2; the pages signal no
// candidates of their own, so that the relay is the only path): the SFU asks for the
// lost packets, each browser sends them again, and the videos go on. The
// browsers retransmit about once per loss, not some twenty times (pion's
// NACK generator asked for a packet repaired over RTX until it left its
// log; sfu/meeting/nack.go).
func TestBrowserMeetingUplinkLoss(t *testing.T) {
	node, chromium, scripts := browserTools(t)
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	cfg.WebRTC.PublicIPs = []string{"127.0.0.2"}
	s := start(t, cfg, nil)
	defer stop(t, s)
	relay := startLossyRelay(t, "127.0.0.2", s.rtc.UDPAddr().(*net.UDPAddr).AddrPort(), 20)
	base := "http://" + s.HTTPAddr()
	tok, _ := provision(t, base)
	mustPost(t, base, tok, "/api/v1/rooms", map[string]any{"id": "flood-2", "name": "防汛会商", "org_id": "qj"}, 201)
	join := func(identity, name string) string {
		_, b := getJSON(t, "POST", base+"/api/v1/rooms/flood-2/tokens", tok, map[string]any{"identity": identity, "name": name, "role": "participant"})
		jt, _ := b["token"].(string)
		if jt == "" {
			t.Fatalf("token: %v", b)
		}
		return base + "/meet/#" + url.Values{"room": {"flood-2"}, "token": {jt}}.Encode()
	}
	res := runMeetingScript(t, node, chromium, scripts, join("qj-command", "巧家县指挥中心"), join("ys-command", "永善县指挥中心"),
		"LOOKOUT_SCREENSHOT_DIR="+t.TempDir(), "LOOKOUT_MEET_MEDIA_MS=8000", "LOOKOUT_MEET_BEHIND_NAT=1")
	dropped := relay.dropped.Load()
	var retransmitted float64
	for _, who := range []map[string]any{res.A, res.B} {
		st, _ := who["send_stats"].(map[string]any)
		r, _ := st["retransmitted"].(float64)
		retransmitted += r
	}
	framesOfB, _ := res.A["frames_of_b"].(float64)
	framesOfA, _ := res.B["frames_of_a"].(float64)
	t.Logf("the relay dropped %d of %d media packets; the browsers retransmitted %.0f; frames in 8 s: A's %.0f, B's %.0f",
		dropped, relay.media.Load(), retransmitted, framesOfA, framesOfB)
	if dropped < 20 {
		t.Fatalf("%d dropped", dropped)
	}
	// The losses are sent again (a browser retransmits only when asked),
	// each about once: the relay's count has the browsers' padding
	// probes too, which are retransmissions of packets that came and are
	// not asked for; pion's generator had each sent some ten times.
	if retransmitted < 10 || retransmitted > 2*float64(dropped) {
		t.Fatalf("%.0f retransmissions for %d packets lost", retransmitted, dropped)
	}
	// The videos go on (at 5% loss a browser's estimate may hold its
	// rate down, and the two browsers and the server share two cores).
	if framesOfA < 40 || framesOfB < 40 {
		t.Fatalf("frames decoded in 8 s: A's video %.0f, B's %.0f", framesOfA, framesOfB)
	}
}

// lossyRelay stands in front of the SFU's UDP port as a NAT does (each
// browser address gets a socket of its own towards the port) and drops
// one in every `every` RTP packets of more than 300 bytes (video, its
// retransmissions too; not audio) on their way to the SFU.
type lossyRelay struct {
	front          *net.UDPConn
	to             netip.AddrPort
	every          int64
	mu             sync.Mutex
	flows          map[netip.AddrPort]*net.UDPConn
	media, dropped atomic.Int64
}

func startLossyRelay(t *testing.T, ip string, to netip.AddrPort, every int64) *lossyRelay {
	t.Helper()
	front, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), to.Port())))
	if err != nil {
		t.Fatal(err)
	}
	r := &lossyRelay{front: front, to: to, every: every, flows: map[netip.AddrPort]*net.UDPConn{}}
	t.Cleanup(func() {
		front.Close()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, c := range r.flows {
			c.Close()
		}
	})
	go r.forward()
	return r
}

func (r *lossyRelay) forward() {
	buf := make([]byte, 1500)
	for {
		n, from, err := r.front.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		b := buf[:n]
		if n > 300 && b[0] >= 128 && b[0] <= 191 && !(b[1] >= 192 && b[1] <= 223) {
			if r.media.Add(1)%r.every == 0 {
				r.dropped.Add(1)
				continue
			}
		}
		back, err := r.flow(from)
		if err != nil {
			return
		}
		_, _ = back.WriteToUDPAddrPort(b, r.to)
	}
}

// flow is the socket that carries from's datagrams to the SFU, and the
// SFU's back to from.
func (r *lossyRelay) flow(from netip.AddrPort) (*net.UDPConn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.flows[from]; c != nil {
		return c, nil
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	r.flows[from] = c
	go func() {
		buf := make([]byte, 1500)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			_, _ = r.front.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	return c, nil
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
