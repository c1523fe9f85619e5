package server

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/lookout-cc/lookout/internal/config"
	"github.com/lookout-cc/lookout/internal/sqldb"
	"github.com/lookout-cc/lookout/internal/testpeers"
)

func waitCommand(t *testing.T, base, tok, id, want string, within time.Duration) map[string]any {
	t.Helper()
	var cmd map[string]any
	deadline := time.Now().Add(within)
	for {
		_, cmd = getJSON(t, "GET", base+"/api/v1/commands/"+id, tok, nil)
		if cmd["state"] == want {
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("command %s is %v after %s, want %s: %v", id, cmd["state"], within, want, cmd)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fakeLamp is a device under the test's control: it connects with its own
// credentials, says online, and answers commands as told.
func fakeLamp(t *testing.T, mqttAddr, id, password string, answer func(cmd map[string]any) (ok bool, reply bool)) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker("tcp://"+mqttAddr).SetClientID("fake-"+id).SetUsername(id).SetPassword(password).
		SetProtocolVersion(4).SetCleanSession(true).SetWill("lookout/v1/devices/"+id+"/status", "offline", 1, true)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("lamp connect: %v", tok.Error())
	}
	c.Subscribe("lookout/v1/devices/"+id+"/cmd", 1, func(pc paho.Client, m paho.Message) {
		var cmd map[string]any
		json.Unmarshal(m.Payload(), &cmd)
		if os.Getenv("LOOKOUT_TEST_LOG") != "" {
			fmt.Fprintf(os.Stderr, "LAMP got %s\n", m.Payload())
		}
		ok, reply := answer(cmd)
		if !reply {
			return
		}
		ack := fmt.Sprintf(`{"id": %q, "ok": %t}`, cmd["id"], ok)
		if !ok {
			ack = fmt.Sprintf(`{"id": %q, "ok": false, "error": "lamp driver fault"}`, cmd["id"])
		}
		pc.Publish("lookout/v1/devices/"+id+"/cmd/ack", 1, false, ack)
		pc.Publish("lookout/v1/devices/"+id+"/cmd/ack", 1, false, ack) // a duplicate changes nothing
	}).WaitTimeout(5 * time.Second)
	c.Publish("lookout/v1/devices/"+id+"/status", 1, true, "online").WaitTimeout(5 * time.Second)
	return c
}

func TestCommandsLifecycle(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Bootstrap.AdminPassword = "admin-password"
	cfg.Demo.Interval = config.Duration(50 * time.Millisecond)
	s := start(t, cfg, nil)
	base := "http://" + s.HTTPAddr()
	tok, _ := provision(t, base)
	send := func(device string, body map[string]any) (int, map[string]any) {
		return getJSON(t, "POST", base+"/api/v1/devices/"+device+"/commands", tok, body)
	}

	// The demo lamp (the simulator, over MQTT) does what it is told.
	waitFor(t, 10*time.Second, func() bool {
		_, d := getJSON(t, "GET", base+"/api/v1/devices/sl-qj-01", tok, nil)
		return d["online"] == true
	})
	st, cmd := send("sl-qj-01", map[string]any{"name": "set_brightness", "params": map[string]any{"level": 30}})
	if st != 202 || (cmd["state"] != "pending" && cmd["state"] != "sent" && cmd["state"] != "acked") {
		t.Fatalf("send: %d %v", st, cmd)
	}
	waitCommand(t, base, tok, cmd["id"].(string), "acked", 5*time.Second)

	// Refusals, each naming what is wrong.
	for _, tc := range []struct {
		device string
		body   map[string]any
		status int
		field  string
	}{
		{"sl-qj-01", map[string]any{"name": "explode"}, 422, "name"},
		{"sl-qj-01", map[string]any{"name": "set_brightness", "params": map[string]any{"level": 300}}, 422, "params.level"},
		{"sl-qj-01", map[string]any{"name": "set_brightness", "params": map[string]any{"lvl": 3}}, 422, "params.lvl"},
		{"sl-qj-01", map[string]any{"name": "set_power", "params": map[string]any{}}, 422, "params.on"},
		{"sl-qj-01", map[string]any{"name": "set_power", "params": map[string]any{"on": true}, "timeout_s": 9999}, 422, "timeout_s"},
		{"nope", map[string]any{"name": "set_power"}, 404, ""},
		{"bht-gauge-dam", map[string]any{"name": "set_power", "params": map[string]any{"on": true}}, 422, "name"},
	} {
		st, b := send(tc.device, tc.body)
		e, _ := b["error"].(map[string]any)
		if st != tc.status || (tc.field != "" && e["field"] != tc.field) {
			t.Errorf("%s %v: %d %v", tc.device, tc.body, st, b)
		}
	}

	// A lamp that has never connected: refused at once, or queued.
	st, b := getJSON(t, "POST", base+"/api/v1/devices", tok, map[string]any{"id": "lamp-x", "kind": "streetlight", "name": "x", "site_id": "bht", "lat": 27.2, "lon": 102.9})
	if st != 201 {
		t.Fatalf("lamp: %d %v", st, b)
	}
	pass := b["mqtt"].(map[string]any)["password"].(string)
	if st, b := send("lamp-x", map[string]any{"name": "set_power", "params": map[string]any{"on": true}}); st != 409 {
		t.Fatalf("offline, not queued: %d %v", st, b)
	}
	_, queued := send("lamp-x", map[string]any{"name": "set_power", "params": map[string]any{"on": true}, "queue": true, "expires_s": 60})
	_, expiring := send("lamp-x", map[string]any{"name": "set_power", "params": map[string]any{"on": false}, "queue": true, "expires_s": 2})
	if queued["state"] != "pending" || expiring["state"] != "pending" {
		t.Fatalf("queued: %v %v", queued, expiring)
	}

	// Lookout restarts with both pending: neither is lost, deadlines hold.
	stop(t, s)
	s = start(t, cfg, nil)
	defer stop(t, s)
	base = "http://" + s.HTTPAddr()
	_, login := getJSON(t, "POST", base+"/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "admin-password"})
	tok = login["token"].(string)
	waitCommand(t, base, tok, expiring["id"].(string), "expired", 5*time.Second)
	if _, c := getJSON(t, "GET", base+"/api/v1/commands/"+queued["id"].(string), tok, nil); c["state"] != "pending" {
		t.Fatalf("queued command after restart: %v", c)
	}

	// The lamp connects: the queued command is delivered and acked. Then
	// a refusal and a silence.
	mode := "ok"
	lamp := fakeLamp(t, s.MQTTAddr(), "lamp-x", pass, func(map[string]any) (bool, bool) {
		switch mode {
		case "fail":
			return false, true
		case "silent":
			return false, false
		}
		return true, true
	})
	defer lamp.Disconnect(100)
	waitCommand(t, base, tok, queued["id"].(string), "acked", 5*time.Second)
	mode = "fail"
	_, c := send("lamp-x", map[string]any{"name": "set_brightness", "params": map[string]any{"level": 10}})
	failed := waitCommand(t, base, tok, c["id"].(string), "failed", 5*time.Second)
	if failed["error"] != "lamp driver fault" {
		t.Fatalf("failed command: %v", failed)
	}
	mode = "silent"
	_, c = send("lamp-x", map[string]any{"name": "set_brightness", "params": map[string]any{"level": 20}, "timeout_s": 3})
	waitCommand(t, base, tok, c["id"].(string), "sent", 5*time.Second)
	// The step to sent waits a moment for the ack to be stored with it;
	// with no ack coming it is stored on its own, well before the timeout.
	db, err := sqldb.OpenFile(filepath.Join(dir, sqldb.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var state string
		var sentAt sql.NullInt64
		if err := db.QueryRow(`SELECT state, sent_at FROM commands WHERE id = ?`, c["id"]).Scan(&state, &sentAt); err != nil {
			t.Fatal(err)
		}
		if state == "sent" && sentAt.Valid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the step to sent is not stored: %s %v", state, sentAt)
		}
	}
	waitCommand(t, base, tok, c["id"].(string), "timeout", 5*time.Second)

	// An ack for a command no one sent is counted and ignored.
	lamp.Publish("lookout/v1/devices/lamp-x/cmd/ack", 1, false, `{"id": "cmd_made_up", "ok": true}`).WaitTimeout(5 * time.Second)
	waitFor(t, 5*time.Second, func() bool { return metricValue(t, base, "lookout_command_acks_unknown_total") == 1 })

	// The Last Will: a device that vanishes without a goodbye (its process
	// killed) is offline at once.
	lamp.Disconnect(100)
	host, port, _ := strings.Cut(s.MQTTAddr(), ":")
	subBin, err := testpeers.FindBinary("mosquitto_sub", "", "/usr/bin/mosquitto_sub")
	if err != nil {
		t.Fatal(err)
	}
	pubBin, _ := testpeers.FindBinary("mosquitto_pub", "", "/usr/bin/mosquitto_pub")
	ghost := exec.Command(subBin, "-h", host, "-p", port, "-u", "lamp-x", "-P", pass, "-V", "311", "-i", "lamp-x-2",
		"--will-topic", "lookout/v1/devices/lamp-x/status", "--will-payload", "offline", "--will-retain", "--will-qos", "1",
		"-t", "lookout/v1/devices/lamp-x/cmd")
	ghostOut := &syncBuffer{}
	ghost.Stdout = ghostOut
	if err := ghost.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(pubBin, "-h", host, "-p", port, "-u", "lamp-x", "-P", pass, "-V", "311", "-r", "-q", "1",
		"-t", "lookout/v1/devices/lamp-x/status", "-m", "online").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	online := func() any { _, d := getJSON(t, "GET", base+"/api/v1/devices/lamp-x", tok, nil); return d["state"] }
	waitFor(t, 5*time.Second, func() bool { return online() == "online" })
	// The ghost is connected (and its Will registered) once it prints a
	// command sent to it. A command sent before it subscribed never
	// reaches it (commands are not retained): a probe each second until
	// one does.
	var probes []string
	var probed time.Time
	waitFor(t, 15*time.Second, func() bool {
		for _, id := range probes {
			if strings.Contains(ghostOut.String(), id) {
				return true
			}
		}
		if time.Since(probed) >= time.Second {
			_, c := send("lamp-x", map[string]any{"name": "set_power", "params": map[string]any{"on": true}, "timeout_s": 1})
			probes, probed = append(probes, c["id"].(string)), time.Now()
		}
		return false
	})
	ghost.Process.Kill()
	ghost.Wait()
	waitFor(t, 5*time.Second, func() bool { return online() == "offline" })
	// Every step is in the audit log.
	_, a := getJSON(t, "GET", base+"/api/v1/audit?action=command.&limit=1000", tok, nil)
	seen := map[string]bool{}
	for _, it := range a["items"].([]any) {
		seen[it.(map[string]any)["action"].(string)] = true
	}
	for _, act := range []string{"command.send", "command.acked", "command.failed", "command.timeout", "command.expired"} {
		if !seen[act] {
			t.Errorf("no %s in the audit log", act)
		}
	}
}
