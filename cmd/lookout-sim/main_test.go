package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// lookout-sim provisions the demo through the API of a running lookout
// (demo off), plays the devices over its embedded broker and serves the
// cameras that lookout pulls.
func TestSimulatorAgainstARunningServer(t *testing.T) {
	dir := t.TempDir()
	for _, b := range []string{"lookout", "lookout-sim"} {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, b), "../"+b).CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v %s", b, err, out)
		}
	}
	httpAddr, mqttAddr := freeAddr(t), freeAddr(t)
	srv := exec.Command(filepath.Join(dir, "lookout"), "serve")
	srv.Env = append(os.Environ(), "LOOKOUT_WEBRTC_ADDR=127.0.0.1:0", "LOOKOUT_TURN_ADDR=127.0.0.1:0", "LOOKOUT_DATA_DIR="+filepath.Join(dir, "data"), "LOOKOUT_HTTP_ADDR="+httpAddr,
		"LOOKOUT_MQTT_ADDR="+mqttAddr, "LOOKOUT_ADMIN_PASSWORD=sim-admin-password", "LOOKOUT_DEMO=0")
	var srvLog lockedBuffer
	srv.Stderr = &srvLog
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Signal(syscall.SIGTERM); srv.Wait() }()
	api := &client{base: "http://" + httpAddr}
	deadline := time.Now().Add(10 * time.Second)
	for api.call("POST", "/api/v1/auth/login", map[string]string{"username": "admin", "password": "sim-admin-password"}, &api.login) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("server not up; it said:\n%s", srvLog.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The demo organisations come with LOOKOUT_DEMO; without it, make the
	// ones the demo sites belong to.
	for _, o := range [][2]string{{"yn", ""}, {"zt", "yn"}, {"qj", "zt"}, {"ys", "zt"}, {"fj", ""}, {"qz", "fj"}, {"ss", "qz"}} {
		parent := o[1]
		if parent == "" {
			parent = "cn"
		}
		kind := map[string]string{"yn": "province", "fj": "province", "zt": "prefecture", "qz": "prefecture"}[o[0]]
		if kind == "" {
			kind = "county"
		}
		if err := api.call("POST", "/api/v1/orgs", map[string]any{"id": o[0], "parent_id": parent, "name": o[0], "kind": kind}, nil); err != nil {
			t.Fatal(err)
		}
	}

	sim := exec.Command(filepath.Join(dir, "lookout-sim"), "--api", "http://"+httpAddr, "--mqtt", "tcp://"+mqttAddr,
		"--password", "sim-admin-password", "--interval", "100ms")
	var simLog strings.Builder
	sim.Stderr = &simLog
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	level := func() (float64, bool) {
		req, _ := http.NewRequest("GET", "http://"+httpAddr+"/api/v1/devices/xld-gauge-dam", nil)
		req.Header.Set("Authorization", "Bearer "+api.login.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, false
		}
		defer resp.Body.Close()
		var d struct {
			Latest map[string]struct{ Value float64 } `json:"latest"`
		}
		json.NewDecoder(resp.Body).Decode(&d)
		v, ok := d.Latest["water_level_m"]
		return v.Value, ok
	}
	deadline = time.Now().Add(15 * time.Second)
	for {
		if v, ok := level(); ok && v > 557 && v < 560 { // held under its flood-limit level, 560 m
			break
		}
		if time.Now().After(deadline) {
			sim.Process.Kill()
			sim.Wait()
			t.Fatalf("no Xiluodu level from the simulator; it said:\n%s", simLog.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Its demo cameras are registered at its RTSP server and go live.
	deadline = time.Now().Add(15 * time.Second)
	for {
		var cam struct {
			URL   string `json:"url"`
			Mode  string `json:"mode"`
			State string `json:"state"`
		}
		err := api.call("GET", "/api/v1/cameras/xld-dam", nil, &cam)
		if err == nil && cam.State == "live" {
			if !strings.HasPrefix(cam.URL, "rtsp://127.0.0.1:") || !strings.HasSuffix(cam.URL, "/xld-dam") || cam.Mode != "always" {
				t.Fatalf("camera %+v", cam)
			}
			break
		}
		if time.Now().After(deadline) {
			sim.Process.Kill()
			sim.Wait()
			t.Fatalf("Xiluodu dam camera not live (%+v, %v); the simulator said:\n%s", cam, err, simLog.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	sim.Process.Signal(syscall.SIGTERM)
	if err := sim.Wait(); err != nil {
		t.Fatalf("simulator exit: %v\n%s", err, simLog.String())
	}
}
