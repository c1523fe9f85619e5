package server

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/lookout-cc/lookout/internal/testpeers"
)

// Real mosquitto clients against the embedded broker: a device connects
// with the credentials the API gave it, publishes under its own root only,
// and subscribes to its own cmd topic only.
func TestDeviceCredentialsAndTopicACL(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	_, login := getJSON(t, "POST", base+"/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "admin-password"})
	tok := login["token"].(string)
	if st, b := getJSON(t, "POST", base+"/api/v1/sites", tok, map[string]any{"id": "bht", "name": "白鹤滩", "kind": "reservoir", "org_id": "qj", "lat": 27.2, "lon": 102.9}); st != 201 {
		t.Fatalf("site: %d %v", st, b)
	}
	creds := map[string]string{}
	for _, id := range []string{"gauge-a", "gauge-b"} {
		st, b := getJSON(t, "POST", base+"/api/v1/devices", tok, map[string]any{"id": id, "kind": "water_level", "name": id, "site_id": "bht", "lat": 27.2, "lon": 102.9})
		if st != 201 {
			t.Fatalf("device: %d %v", st, b)
		}
		creds[id] = b["mqtt"].(map[string]any)["password"].(string)
	}
	host, port, _ := strings.Cut(s.MQTTAddr(), ":")
	svcUser, svcPass := s.broker.ServiceCredentials()
	sub, err := testpeers.FindBinary("mosquitto_sub", "", "/usr/bin/mosquitto_sub")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := testpeers.FindBinary("mosquitto_pub", "", "/usr/bin/mosquitto_pub")
	if err != nil {
		t.Fatal(err)
	}
	mqttArgs := func(user, pass string, extra ...string) []string {
		return append([]string{"-h", host, "-p", port, "-u", user, "-P", pass, "-V", "311"}, extra...)
	}

	// The server's view of everything devices publish.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := &syncBuffer{}
	watch := exec.CommandContext(ctx, sub, mqttArgs(svcUser, svcPass, "-t", "lookout/v1/devices/#", "-v", "-q", "1")...)
	watch.Stdout = seen
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = watch.Wait() }()
	// Probe until the watcher's subscription is in place.
	waitFor(t, 10*time.Second, func() bool {
		_ = exec.Command(pub, mqttArgs(svcUser, svcPass, "-t", "lookout/v1/devices/probe/status", "-m", "probe")...).Run()
		return strings.Contains(seen.String(), "probe/status probe")
	})

	run := func(args ...string) error {
		out, err := exec.Command(pub, args...).CombinedOutput()
		if err != nil {
			return &exec.ExitError{Stderr: out}
		}
		return nil
	}
	// Own topic: delivered.
	if err := run(mqttArgs("gauge-a", creds["gauge-a"], "-q", "1", "-t", "lookout/v1/devices/gauge-a/telemetry", "-m", `{"water_level_m":812.4}`)...); err != nil {
		t.Fatalf("own topic: %v", err)
	}
	// Another device's topic, and a topic outside the root: not delivered.
	_ = run(mqttArgs("gauge-a", creds["gauge-a"], "-q", "1", "-t", "lookout/v1/devices/gauge-b/telemetry", "-m", `{"water_level_m":1}`)...)
	_ = run(mqttArgs("gauge-a", creds["gauge-a"], "-q", "1", "-t", "lookout/v1/devices/gauge-a/cmd", "-m", `{"id":"x"}`)...)
	// Wrong password, another device's password, anonymous: refused.
	for name, args := range map[string][]string{
		"wrong password":   mqttArgs("gauge-a", "not-the-password", "-t", "lookout/v1/devices/gauge-a/telemetry", "-m", "{}"),
		"other's password": mqttArgs("gauge-a", creds["gauge-b"], "-t", "lookout/v1/devices/gauge-a/telemetry", "-m", "{}"),
		"anonymous":        {"-h", host, "-p", port, "-V", "311", "-t", "lookout/v1/devices/gauge-a/telemetry", "-m", "{}"},
	} {
		if err := run(args...); err == nil {
			t.Errorf("%s: connection accepted", name)
		}
	}
	// Subscribing: own cmd granted; another's cmd and wildcards refused
	// (granted QoS 0x80).
	for topic, want := range map[string]bool{
		"lookout/v1/devices/gauge-a/cmd": true,
		"lookout/v1/devices/gauge-b/cmd": false,
		"lookout/v1/devices/+/cmd":       false,
		"#":                              false,
	} {
		out, _ := exec.Command(sub, mqttArgs("gauge-a", creds["gauge-a"], "-t", topic, "-q", "1", "-W", "1", "-d")...).CombinedOutput()
		m := subackQoS.FindStringSubmatch(string(out))
		granted := m != nil && m[1] != "128"
		if granted != want {
			t.Errorf("subscribe %s: granted=%v, want %v:\n%s", topic, granted, want, out)
		}
	}

	waitFor(t, 3*time.Second, func() bool { return strings.Contains(seen.String(), "gauge-a/telemetry {") })
	cancel()
	_ = watch.Wait()
	got := seen.String()
	if !strings.Contains(got, `lookout/v1/devices/gauge-a/telemetry {"water_level_m":812.4}`) {
		t.Fatalf("own telemetry not delivered: %q", got)
	}
	if strings.Contains(got, "gauge-b/telemetry") || strings.Contains(got, "gauge-a/cmd") {
		t.Fatalf("refused publish delivered: %q", got)
	}
}

// subackQoS reads the granted QoS from mosquitto_sub -d; 128 is a refusal.
var subackQoS = regexp.MustCompile(`Subscribed \(mid: 1\): (\d+)`)

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond until it holds, and fails the test when the time is up.
func waitFor(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	if !eventually(within, cond) {
		t.Fatalf("condition not met within %s", within)
	}
}

// eventually polls cond until it holds or the time is up, and says which.
func eventually(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// Rotating a device's credentials closes the sessions opened with the old
// password at once, and the old password no longer connects.
func TestRotationDisconnectsOldSessions(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	tok, creds := provision(t, base, "gauge-r")
	lost := make(chan error, 1)
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + s.MQTTAddr()).SetClientID("gauge-r").
		SetUsername("gauge-r").SetPassword(creds["gauge-r"]).SetProtocolVersion(4).SetAutoReconnect(false).
		SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err }))
	if tk := c.Connect(); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("connect: %v", tk.Error())
	}
	defer c.Disconnect(50)
	st, b := getJSON(t, "POST", base+"/api/v1/devices/gauge-r/credentials", tok, nil)
	if st != 200 {
		t.Fatalf("rotate: %d %v", st, b)
	}
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("the session with the old password is still open")
	}
	for pw, want := range map[string]bool{creds["gauge-r"]: false, b["mqtt"].(map[string]any)["password"].(string): true} {
		c2 := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + s.MQTTAddr()).SetClientID("gauge-r-2").
			SetUsername("gauge-r").SetPassword(pw).SetProtocolVersion(4).SetAutoReconnect(false))
		tk := c2.Connect()
		tk.WaitTimeout(5 * time.Second)
		if (tk.Error() == nil) != want {
			t.Errorf("password (new=%v) connects: %v", want, tk.Error())
		}
		c2.Disconnect(50)
	}
}
