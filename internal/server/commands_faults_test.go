package server

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/lookout-cc/lookout/internal/testpeers"
)

// Disabling a connected device closes its session at once, refuses it
// when it tries again, and refuses commands to it (409).
func TestDisablingADeviceDisconnectsAndRefusesIt(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	tok, creds := provision(t, base, "gauge-d")
	lost := make(chan error, 1)
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + s.MQTTAddr()).SetClientID("gauge-d").
		SetUsername("gauge-d").SetPassword(creds["gauge-d"]).SetProtocolVersion(4).SetAutoReconnect(false).
		SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err }))
	if tk := c.Connect(); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("connect: %v", tk.Error())
	}
	defer c.Disconnect(50)
	if st, b := getJSON(t, "PATCH", base+"/api/v1/devices/gauge-d", tok, map[string]any{"disabled": true}); st != 200 || b["disabled"] != true {
		t.Fatalf("disable: %d %v", st, b)
	}
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("the disabled device's session is still open")
	}
	pub, _ := testpeers.FindBinary("mosquitto_pub", "", "/usr/bin/mosquitto_pub")
	host, port, _ := strings.Cut(s.MQTTAddr(), ":")
	out, err := exec.Command(pub, "-h", host, "-p", port, "-u", "gauge-d", "-P", creds["gauge-d"], "-V", "311",
		"-t", "lookout/v1/devices/gauge-d/telemetry", "-m", `{"water_level_m": 1}`).CombinedOutput()
	if err == nil || !strings.Contains(strings.ToLower(string(out)), "not authori") {
		t.Fatalf("a disabled device connected: %v %s", err, out)
	}
	if st, b := getJSON(t, "POST", base+"/api/v1/devices/gauge-d/commands", tok, map[string]any{"name": "reboot", "queue": true}); st != 409 || b["error"].(map[string]any)["code"] != "device_disabled" {
		t.Fatalf("command to a disabled device: %d %v", st, b)
	}
	// Enabled again, it connects with the same password.
	if st, _ := getJSON(t, "PATCH", base+"/api/v1/devices/gauge-d", tok, map[string]any{"disabled": false}); st != 200 {
		t.Fatal("enable")
	}
	if out, err := exec.Command(pub, "-h", host, "-p", port, "-u", "gauge-d", "-P", creds["gauge-d"], "-V", "311",
		"-t", "lookout/v1/devices/gauge-d/telemetry", "-m", `{"water_level_m": 1}`).CombinedOutput(); err != nil {
		t.Fatalf("enabled device: %v %s", err, out)
	}
}

// A device that takes a command and vanishes before acking: a command
// that was not queued ends timeout; a queued one goes back to pending and
// is delivered and acked when the device is back.
func TestDeviceLeavesBetweenPublishAndAck(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	tok, _ := provision(t, base)
	st, b := getJSON(t, "POST", base+"/api/v1/devices", tok, map[string]any{"id": "lamp-v", "kind": "streetlight", "name": "v", "site_id": "bht", "lat": 27.2, "lon": 102.9})
	if st != 201 {
		t.Fatalf("lamp: %d %v", st, b)
	}
	pass := b["mqtt"].(map[string]any)["password"].(string)
	send := func(body map[string]any) string {
		st, c := getJSON(t, "POST", base+"/api/v1/devices/lamp-v/commands", tok, body)
		if st != 202 {
			t.Fatalf("send: %d %v", st, c)
		}
		return c["id"].(string)
	}

	// The device: a mosquitto_sub that prints its commands and never acks,
	// with a Last Will.
	host, port, _ := strings.Cut(s.MQTTAddr(), ":")
	subBin, err := testpeers.FindBinary("mosquitto_sub", "", "/usr/bin/mosquitto_sub")
	if err != nil {
		t.Fatal(err)
	}
	pubBin, _ := testpeers.FindBinary("mosquitto_pub", "", "/usr/bin/mosquitto_pub")
	mute := exec.Command(subBin, "-h", host, "-p", port, "-u", "lamp-v", "-P", pass, "-V", "311", "-i", "lamp-v-mute",
		"--will-topic", "lookout/v1/devices/lamp-v/status", "--will-payload", "offline", "--will-retain", "--will-qos", "1",
		"-q", "1", "-t", "lookout/v1/devices/lamp-v/cmd")
	got := &syncBuffer{}
	mute.Stdout = got
	if err := mute.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mute.Process.Kill(); _ = mute.Wait() }()
	if out, err := exec.Command(pubBin, "-h", host, "-p", port, "-u", "lamp-v", "-P", pass, "-V", "311", "-r", "-q", "1",
		"-t", "lookout/v1/devices/lamp-v/status", "-m", "online").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	waitFor(t, 5*time.Second, func() bool {
		_, d := getJSON(t, "GET", base+"/api/v1/devices/lamp-v", tok, nil)
		return d["online"] == true
	})
	once := send(map[string]any{"name": "set_power", "params": map[string]any{"on": true}, "timeout_s": 2})
	queued := send(map[string]any{"name": "set_brightness", "params": map[string]any{"level": 40}, "queue": true, "timeout_s": 30})
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(got.String(), once) && strings.Contains(got.String(), queued) })
	waitCommand(t, base, tok, queued, "sent", 5*time.Second)

	// It vanishes without a goodbye.
	_ = mute.Process.Kill()
	_ = mute.Wait()
	waitCommand(t, base, tok, queued, "pending", 5*time.Second)
	waitCommand(t, base, tok, once, "timeout", 5*time.Second)

	// Back, and answering: the queued command arrives again and is acked.
	lamp := fakeLamp(t, s.MQTTAddr(), "lamp-v", pass, func(map[string]any) (bool, bool) { return true, true })
	defer lamp.Disconnect(100)
	acked := waitCommand(t, base, tok, queued, "acked", 5*time.Second)
	if acked["sent_at"] == nil {
		t.Fatalf("acked without sent_at: %v", acked)
	}
	_, a := getJSON(t, "GET", base+"/api/v1/audit?action=command.requeued&target=lamp-v", tok, nil)
	if items := a["items"].([]any); len(items) != 1 {
		t.Fatalf("requeue audited %d times", len(items))
	}
}

// One request switches every lamp of a site; each lamp (a real MQTT
// client) acks, and the group's summary says so.
func TestGroupCommandToEveryLampOfASite(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	tok, _ := provision(t, base)
	if st, b := getJSON(t, "POST", base+"/api/v1/sites", tok, map[string]any{"id": "qj-c", "name": "巧家安置点", "kind": "community", "org_id": "qj", "lat": 26.9, "lon": 102.9}); st != 201 {
		t.Fatalf("site: %d %v", st, b)
	}
	const lamps = 20
	for i := range lamps {
		id := fmt.Sprintf("qj-c-%02d", i)
		st, b := getJSON(t, "POST", base+"/api/v1/devices", tok, map[string]any{"id": id, "kind": "streetlight", "name": id, "site_id": "qj-c", "lat": 26.9, "lon": 102.9})
		if st != 201 {
			t.Fatalf("lamp: %d %v", st, b)
		}
		answer := func(map[string]any) (bool, bool) { return true, true }
		if i == lamps-1 {
			answer = func(map[string]any) (bool, bool) { return false, true } // a faulty lamp
		}
		c := fakeLamp(t, s.MQTTAddr(), id, b["mqtt"].(map[string]any)["password"].(string), answer)
		defer c.Disconnect(50)
	}
	waitFor(t, 5*time.Second, func() bool {
		_, d := getJSON(t, "GET", fmt.Sprintf("%s/api/v1/devices/qj-c-%02d", base, lamps-1), tok, nil)
		return d["online"] == true
	})
	st, g := getJSON(t, "POST", base+"/api/v1/command-groups", tok, map[string]any{"site_id": "qj-c", "name": "set_brightness", "params": map[string]any{"level": 30}})
	if st != 202 {
		t.Fatalf("group: %d %v", st, g)
	}
	var sum map[string]any
	waitFor(t, 10*time.Second, func() bool {
		_, g := getJSON(t, "GET", base+"/api/v1/command-groups/"+g["id"].(string), tok, nil)
		sum = g["summary"].(map[string]any)
		return sum["done"] == true
	})
	if sum["devices"] != float64(lamps) || sum["acked"] != float64(lamps-1) || sum["failed"] != 1.0 {
		t.Fatalf("summary: %v", sum)
	}
	// The console's view of one lamp: set to 30, and the command acked.
	_, d := getJSON(t, "GET", base+"/api/v1/devices/qj-c-00", tok, nil)
	want := d["desired"].(map[string]any)["brightness"].(map[string]any)
	if want["value"] != 30.0 || want["command"].(map[string]any)["state"] != "acked" {
		t.Fatalf("desired: %v", want)
	}
	// The group's entry, by who asked, lists each lamp's command; a lamp's
	// own trail has its command's end, by the lamp, naming who asked,
	// what and the group.
	_, trail := getJSON(t, "GET", base+"/api/v1/audit?target="+g["id"].(string), tok, nil)
	items := trail["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("group trail: %v", trail)
	}
	asked := items[0].(map[string]any)
	var cmd00 string
	for _, m := range g["results"].([]any) {
		if m := m.(map[string]any); m["device_id"] == "qj-c-00" {
			cmd00 = m["command"].(map[string]any)["id"].(string)
		}
	}
	if commands := asked["detail"].(map[string]any)["commands"].(map[string]any); asked["action"] != "command.group" || asked["actor"] != "admin" ||
		len(commands) != lamps || commands["qj-c-00"] != cmd00 || cmd00 == "" {
		t.Fatalf("group entry: %v (qj-c-00's command %q)", asked, cmd00)
	}
	_, trail = getJSON(t, "GET", base+"/api/v1/audit?target=qj-c-00&action=command.", tok, nil)
	items = trail["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("lamp trail: %v", trail)
	}
	acked := items[0].(map[string]any)
	if detail := acked["detail"].(map[string]any); acked["action"] != "command.acked" || acked["actor"] != "device:qj-c-00" ||
		detail["by"] != "admin" || detail["group"] != g["id"] || detail["command"] != cmd00 || detail["params"].(map[string]any)["level"] != 30.0 {
		t.Fatalf("lamp trail: %v", acked)
	}
}
