package main

import (
	"bufio"
	"bytes"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/internal/sqldb"
)

var binary string

func sqlOpen(path string) (*sql.DB, error) { return sqldb.OpenFile(path) }

// TestMain builds the real binary once; the tests run it as an operator
// would.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lookout-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "lookout")
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.version=v0.0.0-test", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func command(t *testing.T, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "LOOKOUT_DATA_DIR="+t.TempDir(), "LOOKOUT_HTTP_ADDR="+freeAddr(t), "LOOKOUT_MQTT_ADDR="+freeAddr(t), "LOOKOUT_WEBRTC_ADDR=127.0.0.1:0", "LOOKOUT_TURN_ADDR=127.0.0.1:0")
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

func TestVersionAndUsage(t *testing.T) {
	out, err := command(t, nil, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "lookout v0.0.0-test go") {
		t.Fatalf("version: %q %v", out, err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"launch"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), `unknown command "launch"`) {
		t.Fatalf("unknown command: %d %q", code, stderr.String())
	}
}

// A start that cannot go on exits non-zero with one clear line.
func TestBadStartsExitWithOneLine(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"typo in a key", []string{"serve", "--config", write("typo.yaml", "htpp:\n  addr: 127.0.0.1:1\n")}, nil, "'htpp' is not a known key (line 1)"},
		{"missing file", []string{"serve", "--config", filepath.Join(dir, "nope.yaml")}, nil, "nope.yaml does not exist"},
		{"bad duration", []string{"serve", "--config", write("dur.yaml", "auth:\n  token_ttl: forever\n")}, nil, "'auth.token_ttl' must be a duration"},
		{"bad value", []string{"serve", "--config", write("mode.yaml", "mqtt:\n  mode: cloud\n")}, nil, "'mqtt.mode' must be embedded or external"},
		{"address in use", []string{"serve"}, []string{"LOOKOUT_HTTP_ADDR=" + taken.Addr().String()}, "start http: listen tcp " + taken.Addr().String() + ": bind: address already in use"},
		{"bad LOOKOUT_DEMO", []string{"serve"}, []string{"LOOKOUT_DEMO=perhaps"}, "LOOKOUT_DEMO must be 0 or 1"},
		{"stray argument", []string{"serve", "extra"}, nil, "serve takes no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := command(t, tt.env, tt.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() == 0 {
				t.Fatalf("exit: %v", err)
			}
			last := lastLine(stderr.String())
			if !strings.HasPrefix(last, "lookout: ") || !strings.Contains(last, tt.want) {
				t.Fatalf("last line %q does not say %q; all:\n%s", last, tt.want, stderr.String())
			}
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// SIGTERM and SIGINT stop the server cleanly, well within 10 s.
func TestSignalsStopTheServer(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := command(t, []string{"LOOKOUT_ADMIN_PASSWORD=signal-test-pw"}, "serve")
			addr := ""
			for _, e := range cmd.Env {
				if v, ok := strings.CutPrefix(e, "LOOKOUT_HTTP_ADDR="); ok {
					addr = v
				}
			}
			stderr, _ := cmd.StderrPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// A failed test leaves no server running (its Wait is the
			// goroutine's below).
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			var logs bytes.Buffer
			logDone := make(chan struct{})
			go func() {
				defer close(logDone)
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					logs.WriteString(sc.Text() + "\n")
				}
			}()
			waitHealthy(t, "http://"+addr+"/healthz")
			sent := time.Now()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { <-logDone; done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("exit after %s: %v\n%s", sig, err, logs.String())
				}
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("still running 10 s after %s", sig)
			}
			if took := time.Since(sent); took > 10*time.Second {
				t.Fatalf("stop took %s", took)
			}
			if !strings.Contains(logs.String(), "msg=stopped") {
				t.Fatalf("no clean stop in the log:\n%s", logs.String())
			}
		})
	}
}

func waitHealthy(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not healthy within 10 s", url)
}

// lookout audit verify passes on a server's log and names the first entry
// that was tampered with.
func TestAuditVerify(t *testing.T) {
	dataDir := t.TempDir()
	env := []string{"LOOKOUT_DATA_DIR=" + dataDir, "LOOKOUT_ADMIN_PASSWORD=audit-test-pw"}
	cmd := command(t, env, "serve")
	cmd.Env = append(cmd.Env, env...)
	addr := ""
	for _, e := range cmd.Env {
		if v, ok := strings.CutPrefix(e, "LOOKOUT_HTTP_ADDR="); ok {
			addr = v
		}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A failed test leaves no server running.
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	waitHealthy(t, "http://"+addr+"/healthz")
	for _, pw := range []string{"wrong-pw-1", "audit-test-pw"} {
		resp, err := http.Post("http://"+addr+"/api/v1/auth/login", "application/json", strings.NewReader(`{"username":"admin","password":"`+pw+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	verify := func() (string, error) {
		c := exec.Command(binary, "audit", "verify")
		c.Env = append(os.Environ(), "LOOKOUT_DATA_DIR="+dataDir)
		out, err := c.CombinedOutput()
		return string(out), err
	}
	out, err := verify() // while the server runs
	// Two logins, and the demo's rules loaded from configs/demo/rules.yaml.
	if err != nil || !strings.Contains(out, "audit log intact: 6 entries") {
		t.Fatalf("verify: %v %s", err, out)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()

	db, err := sqlOpen(filepath.Join(dataDir, "lookout.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Exec(`DROP TRIGGER audit_log_no_update`)
	if _, err := db.Exec(`UPDATE audit_log SET result = result || '-forged' WHERE seq = 1`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out, err = verify()
	if err == nil || !strings.Contains(out, "entry 1 was changed") {
		t.Fatalf("tampered log: %v %s", err, out)
	}
}
