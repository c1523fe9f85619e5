package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lookout-cc/lookout/internal/config"
)

// Every test here checks, at the end, that stopped servers left no goroutine
// behind.
//
// paho's Disconnect, and a reconnect under way when it is called, leave a
// goroutine that sleeps out its quiesce or backoff time (a second) after
// the client is gone: bounded, so not a leak.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/eclipse/paho%2emqtt%2egolang.(*client).Disconnect.func1"),
		goleak.IgnoreAnyFunction("github.com/eclipse/paho%2emqtt%2egolang.(*client).reconnect"))
}

func testConfig(t *testing.T, dataDir string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = dataDir
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.MQTT.Embedded.Addr = "127.0.0.1:0"
	cfg.WebRTC.UDPAddr, cfg.WebRTC.TCPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Bootstrap.RootOrg = config.OrgSeed{ID: "cn", Name: "全国演示指挥中心", Kind: "national"}
	cfg.Demo.Enabled = true
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func start(t *testing.T, cfg config.Config, notice io.Writer) *Server {
	t.Helper()
	var log *slog.Logger
	if os.Getenv("LOOKOUT_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	} else {
		// A failed test shows the server's last words: what a flaky
		// step in CI is read against.
		tail := &logTail{}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("the server's last %d log lines (info and above, and the debug lines of meetings and pion):\n%s", logTailLines, tail.String())
			}
		})
		log = slog.New(meetingDebug{Handler: slog.NewTextHandler(tail, &slog.HandlerOptions{Level: slog.LevelDebug})})
	}
	s := New(Params{Config: cfg, Log: log, Version: "test", Notice: notice})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// logTailLines is how many of a server's last log lines a failed test
// shows.
const logTailLines = 200

// meetingDebug passes info and above, and of the debug lines the
// meetings' (layer choices, connection states) and pion's (its info:
// ICE's states and pairs): what a stalled video in a browser test is read
// against, few enough to keep.
type meetingDebug struct {
	slog.Handler
	pion bool // a logger of pion's (pionlog's "pion" attribute)
}

func (h meetingDebug) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelDebug || r.Level < slog.LevelInfo && !h.pion && !strings.HasPrefix(r.Message, "meeting ") {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h meetingDebug) WithAttrs(attrs []slog.Attr) slog.Handler {
	pion := h.pion
	for _, a := range attrs {
		pion = pion || a.Key == "pion"
	}
	return meetingDebug{h.Handler.WithAttrs(attrs), pion}
}

func (h meetingDebug) WithGroup(name string) slog.Handler {
	return meetingDebug{h.Handler.WithGroup(name), h.pion}
}

// logTail keeps a server's last log lines (slog's handler writes one line
// a call).
type logTail struct {
	mu    sync.Mutex
	lines []string
}

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == logTailLines {
		l.lines = append(l.lines[:0], l.lines[1:]...)
	}
	l.lines = append(l.lines, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func stop(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StopTimeout)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// client makes requests without keeping connections, so no goroutine of
// the HTTP client outlives the test.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

func getJSON(t *testing.T, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		js, _ := json.Marshal(body)
		rd = bytes.NewReader(js)
	}
	req, _ := http.NewRequest(method, url, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestFirstStartRestartAndStop(t *testing.T) {
	dir := t.TempDir()
	var notice bytes.Buffer
	s := start(t, testConfig(t, dir), &notice)
	base := "http://" + s.HTTPAddr()

	// The first start printed a random admin password, once.
	out := notice.String()
	i := strings.Index(out, "with password ")
	if i < 0 {
		t.Fatalf("no password printed: %q", out)
	}
	password := strings.Fields(out[i+len("with password "):])[0]

	status, health := getJSON(t, "GET", base+"/healthz", "", nil)
	if status != 200 || health["status"] != "ok" {
		t.Fatalf("healthz %d %v", status, health)
	}
	status, login := getJSON(t, "POST", base+"/api/v1/auth/login", "", map[string]string{"username": "admin", "password": password})
	if status != 200 {
		t.Fatalf("login %d %v", status, login)
	}
	token := login["token"].(string)
	status, list := getJSON(t, "GET", base+"/api/v1/orgs", token, nil)
	if status != 200 || list["item_count"].(float64) != 10 {
		t.Fatalf("demo orgs: %d %v", status, list)
	}

	// A component that goes down is named by /healthz.
	if err := s.broker.Close(); err != nil {
		t.Fatal(err)
	}
	status, health = getJSON(t, "GET", base+"/healthz", "", nil)
	comps, _ := json.Marshal(health["components"])
	if status != 503 || health["status"] != "unavailable" || !strings.Contains(string(comps), `{"error":"mqtt listener not accepting connections","name":"mqtt_broker","ok":false}`) {
		t.Fatalf("healthz with the broker down: %d %s", status, comps)
	}
	stop(t, s)

	// Restart on the same data: no new password, the old token still
	// works, the demo data is not duplicated.
	notice.Reset()
	s = start(t, testConfig(t, dir), &notice)
	defer stop(t, s)
	if strings.Contains(notice.String(), "password") {
		t.Fatalf("second start printed a password: %q", notice.String())
	}
	base = "http://" + s.HTTPAddr()
	status, list = getJSON(t, "GET", base+"/api/v1/orgs", token, nil)
	if status != 200 || list["item_count"].(float64) != 10 {
		t.Fatalf("after restart: %d %v", status, list)
	}
}

func TestAdminPasswordFromConfig(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "chosen-password"
	cfg.Demo.Enabled = false
	var notice bytes.Buffer
	s := start(t, cfg, &notice)
	defer stop(t, s)
	if notice.Len() != 0 {
		t.Fatalf("printed %q although the password was given", notice.String())
	}
	status, _ := getJSON(t, "POST", "http://"+s.HTTPAddr()+"/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "chosen-password"})
	if status != 200 {
		t.Fatalf("login with the configured password: %d", status)
	}
	status, list := getJSON(t, "GET", "http://"+s.HTTPAddr()+"/api/v1/orgs", "", nil)
	if status != 401 {
		t.Fatalf("orgs without token: %d %v", status, list)
	}
}

// A start that fails part way stops what it had started, and says which
// component failed.
func TestFailedStartUndoesItself(t *testing.T) {
	first := start(t, testConfig(t, t.TempDir()), nil)
	defer stop(t, first)
	cfg := testConfig(t, t.TempDir())
	cfg.HTTP.Addr = first.HTTPAddr() // taken
	s := New(Params{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	err := s.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "start http") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("start on a taken port: %v", err)
	}
	if s.started != nil {
		t.Fatalf("components left started: %v", s.started)
	}
}
