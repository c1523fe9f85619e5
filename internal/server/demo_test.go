package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/lookout-cc/lookout/internal/config"
	"github.com/lookout-cc/lookout/internal/testpeers"
)

// With the demo on, the simulated devices report over the embedded broker
// with their own credentials: gauges have levels, the port's AIS receiver
// makes vessels, and a streetlight answers a command on its cmd topic.
func TestDemoDevicesComeAlive(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	cfg.Demo.Interval = config.Duration(50 * time.Millisecond)
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	_, login := getJSON(t, "POST", base+"/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "admin-password"})
	tok := login["token"].(string)

	waitFor(t, 10*time.Second, func() bool {
		_, d := getJSON(t, "GET", base+"/api/v1/devices/bht-gauge-dam", tok, nil)
		l, _ := d["latest"].(map[string]any)
		return l["water_level_m"] != nil
	})
	_, d := getJSON(t, "GET", base+"/api/v1/devices/bht-gauge-dam", tok, nil)
	if lvl := d["latest"].(map[string]any)["water_level_m"].(map[string]any)["value"].(float64); lvl < 782 || lvl > 785 { // held under its flood-limit level, 785 m
		t.Fatalf("Baihetan level %v m", lvl)
	}
	waitFor(t, 10*time.Second, func() bool {
		st, v := getJSON(t, "GET", base+"/api/v1/devices/vessel-412440101", tok, nil)
		return st == 200 && v["name"] == "MIN SHI YU 01" && v["site_id"] == "xiangzhi-port"
	})

	// A command to a lamp, as the console will send it, answered on cmd/ack.
	user, pass := s.broker.ServiceCredentials()
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + s.MQTTAddr()).SetClientID("test-commander").
		SetUsername(user).SetPassword(pass).SetProtocolVersion(4))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(100)
	acks := make(chan map[string]any, 4)
	c.Subscribe("lookout/v1/devices/sl-qj-01/cmd/ack", 1, func(_ paho.Client, m paho.Message) {
		var a map[string]any
		_ = json.Unmarshal(m.Payload(), &a)
		acks <- a
	}).WaitTimeout(5 * time.Second)
	for _, tc := range []struct {
		cmd string
		ok  bool
	}{
		{`{"id": "c1", "name": "set_brightness", "params": {"level": 30}}`, true},
		{`{"id": "c2", "name": "set_brightness", "params": {"level": 300}}`, false},
		{`{"id": "c3", "name": "explode", "params": {}}`, false},
	} {
		c.Publish("lookout/v1/devices/sl-qj-01/cmd", 1, false, tc.cmd).WaitTimeout(5 * time.Second)
		select {
		case a := <-acks:
			if a["ok"] != tc.ok || (!tc.ok && a["error"] == "") {
				t.Fatalf("%s: ack %v", tc.cmd, a)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no ack", tc.cmd)
		}
	}
	waitFor(t, 5*time.Second, func() bool {
		_, d := getJSON(t, "GET", base+"/api/v1/devices/sl-qj-01", tok, nil)
		l, _ := d["latest"].(map[string]any)
		b, _ := l["brightness"].(map[string]any)
		return b != nil && b["value"] == 30.0
	})
}

// With the demo on, the demo cameras are registered with the demo RTSP
// server's URLs, pulled, live, and play over WHEP; after a restart, when
// that server listens on another port, they are moved to it and live again.
func TestDemoCamerasGoLive(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Bootstrap.AdminPassword = "admin-password"
	live := func(s *Server) (string, string) {
		t.Helper()
		base := "http://" + s.HTTPAddr()
		_, login := getJSON(t, "POST", base+"/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "admin-password"})
		tok := login["token"].(string)
		_, list := getJSON(t, "GET", base+"/api/v1/cameras", tok, nil)
		var ids []string
		for _, it := range list["items"].([]any) {
			c := it.(map[string]any)
			ids = append(ids, c["id"].(string))
			if c["mode"] != "always" || !strings.HasPrefix(c["url"].(string), "rtsp://"+s.demoCams.Addr()+"/") {
				t.Fatalf("camera %v", c)
			}
		}
		if strings.Join(ids, " ") != "bht-dam qj-gate xld-dam xz-port-gate" {
			t.Fatalf("cameras %v", ids)
		}
		waitFor(t, 10*time.Second, func() bool {
			_, c := getJSON(t, "GET", base+"/api/v1/cameras/qj-gate", tok, nil)
			st, _ := c["stream"].(map[string]any)
			return c["state"] == "live" && st["codec"] == "H264" && st["fps"].(float64) > 10
		})
		return base, tok
	}

	s := start(t, cfg, nil)
	base, tok := live(s)
	v := testpeers.NewViewer(t)
	st, loc, answer := whepPost(t, base, tok, "xz-port-gate", v.Offer(t))
	if st != 201 {
		t.Fatalf("whep: %d %.80s", st, answer)
	}
	v.Answer(t, answer)
	waitFor(t, 10*time.Second, func() bool { return len(v.Packets()) > 20 })
	getJSON(t, "DELETE", base+loc, tok, nil)
	firstAddr := s.demoCams.Addr()
	stop(t, s)

	s = start(t, cfg, nil)
	defer stop(t, s)
	if s.demoCams.Addr() == firstAddr {
		t.Logf("the demo RTSP server got the same port again: %s", firstAddr)
	}
	live(s)
}
