package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// ingest measures telemetry through a real Mosquitto into the store:
// sustained rate, loss, publish-to-queryable latency, CPU per 1000 messages
// and resident memory of the lookout process under that load.
func ingest(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	binary := fs.String("binary", "bin/lookout", "the lookout binary")
	mosquittoBin := fs.String("mosquitto", "/usr/sbin/mosquitto", "the mosquitto binary")
	qos := fs.Int("qos", 0, "MQTT QoS of the publishers (0 or 1)")
	rate := fs.Int("rate", 30000, "messages per second to offer, all publishers together")
	duration := fs.Duration("duration", 60*time.Second, "how long to publish")
	devices := fs.Int("devices", 100, "devices publishing")
	publishers := fs.Int("publishers", 4, "MQTT connections publishing")
	store := fs.String("store", "embedded", "embedded or influxdb (then --influx-url, --influx-token, --influx-bucket)")
	influxURL := fs.String("influx-url", "", "InfluxDB URL")
	influxToken := fs.String("influx-token", "", "InfluxDB token (user:password for 1.8)")
	influxBucket := fs.String("influx-bucket", "", "InfluxDB bucket (db/rp for 1.8)")
	pprofAddr := fs.String("pprof", "", "serve lookout's pprof on this address (to profile it under load)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *qos != 0 && *qos != 1 {
		return errors.New("--qos must be 0 or 1")
	}
	if *duration > 10*time.Minute || *rate > 500_000 || *devices < 1 || *publishers < 1 {
		return errors.New("--duration at most 10m, --rate at most 500000, at least one device and publisher")
	}
	tsdbConf := "tsdb:\n  backend: embedded\n"
	if *store == "influxdb" {
		tsdbConf = fmt.Sprintf("tsdb:\n  backend: influxdb\n  influxdb:\n    url: %s\n    token: %q\n    bucket: %s\n", *influxURL, *influxToken, *influxBucket)
	}
	n, err := startNode(*binary, *mosquittoBin, tsdbConf, *pprofAddr)
	if err != nil {
		return err
	}
	defer n.stop()
	api, mqttAddr, lk, mosq := n.api, n.mqttAddr, n.lookout, n.mosquitto
	if err := api.post("/api/v1/sites", map[string]any{"id": "bench", "name": "bench", "kind": "reservoir", "org_id": "yn", "lat": 27, "lon": 102}); err != nil {
		return err
	}
	for i := 0; i <= *devices; i++ { // the last one is the latency probe
		if err := api.post("/api/v1/devices", map[string]any{"id": fmt.Sprintf("bench-%d", i), "kind": "generic", "name": "bench", "site_id": "bench", "lat": 27, "lon": 102}); err != nil {
			return err
		}
	}
	probeID := fmt.Sprintf("bench-%d", *devices)

	// Publishers.
	var clients []paho.Client
	for i := 0; i < *publishers; i++ {
		o := paho.NewClientOptions().AddBroker("tcp://" + mqttAddr).SetClientID(fmt.Sprintf("bench-pub-%d", i)).
			SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false).SetWriteTimeout(10 * time.Second)
		c := paho.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return fmt.Errorf("publisher connect: %v", tok.Error())
		}
		defer c.Disconnect(100)
		clients = append(clients, c)
	}
	t0 := time.Now().Add(-time.Hour).UnixMilli() // synthetic times: unique per device and message
	seq := make([]atomic.Int64, *devices)
	var published, failed atomic.Int64
	cpu0, _ := cpuTicks(lk.Process.Pid)
	mcpu0, _ := cpuTicks(mosq.Process.Pid)
	var peakRSS atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	var wg sync.WaitGroup
	perPublisher := float64(*rate) / float64(*publishers) // msg/s
	begin := time.Now()
	for p, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			var sent float64
			var window []paho.Token
			dev := p
			for {
				select {
				case <-ctx.Done():
					for _, tok := range window {
						if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
							failed.Add(1)
						}
					}
					return
				case <-tick.C:
				}
				// Pace by the clock, not by ticks: a tick missed while
				// waiting for acknowledgements is made up at the next.
				due := perPublisher * time.Since(begin).Seconds()
				for ; sent < due; sent++ {
					d := dev % *devices
					dev += *publishers
					n := seq[d].Add(1)
					payload := `{"ts":` + strconv.FormatInt(t0+n, 10) + `,"water_level_m":` + strconv.FormatInt(n, 10) + `}`
					tok := c.Publish("lookout/v1/devices/bench-"+strconv.Itoa(d)+"/telemetry", byte(*qos), false, payload)
					published.Add(1)
					if *qos == 1 {
						window = append(window, tok)
						if len(window) >= 500 {
							for _, tk := range window {
								if !tk.WaitTimeout(30*time.Second) || tk.Error() != nil {
									failed.Add(1)
								}
							}
							window = window[:0]
						}
					}
				}
			}
		}()
	}
	// Latency probes: publish a value, poll until the API shows it.
	var lat []time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		probe := clients[0]
		for i := 1; ctx.Err() == nil; i++ {
			sent := time.Now()
			probe.Publish("lookout/v1/devices/"+probeID+"/telemetry", byte(*qos), false, fmt.Sprintf(`{"probe":%d}`, i))
			for ctx.Err() == nil {
				if v, ok := api.latest(probeID, "probe"); ok && int(v) >= i {
					lat = append(lat, time.Since(sent))
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if rss, err := residentKiB(lk.Process.Pid); err == nil && rss > peakRSS.Load() {
				peakRSS.Store(rss)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	wg.Wait()
	elapsed := *duration
	cpu1, _ := cpuTicks(lk.Process.Pid)
	mcpu1, _ := cpuTicks(mosq.Process.Pid)

	// Let the pipeline finish, then count what the store holds.
	var accepted float64
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		accepted, _ = api.metric("lookout_ingest_messages_total")
		written, _ := api.metric("lookout_ingest_points_written_total")
		if written >= accepted && accepted >= float64(published.Load()-failed.Load())-float64(len(lat)+1) {
			break
		}
	}
	var stored int64
	for d := 0; d < *devices; d++ {
		n, err := api.count(fmt.Sprintf("bench-%d", d), t0, t0+seq[d].Load()+1)
		if err != nil {
			return err
		}
		stored += int64(n)
	}
	var want int64
	for d := range seq {
		want += seq[d].Load()
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))].Round(time.Millisecond)
	}
	tck := float64(clockTicks())
	cpuSec := float64(cpu1-cpu0) / tck
	fmt.Fprintf(out, "ingest through Mosquitto into the %s store, QoS %d, %s, %d devices, %d publishers\n", *store, *qos, elapsed, *devices, *publishers)
	fmt.Fprintf(out, "  offered %d msg/s; published %d (%.0f msg/s), publish errors %d\n", *rate, published.Load(), float64(published.Load())/elapsed.Seconds(), failed.Load())
	fmt.Fprintf(out, "  stored %d of %d points: lost %d\n", stored, want, want-stored)
	fmt.Fprintf(out, "  publish to queryable (%d probes): p50 %s  p99 %s  max %s\n", len(lat), pct(0.5), pct(0.99), pct(1))
	fmt.Fprintf(out, "  lookout CPU %.2f s over the run = %.1f ms per 1000 messages (%.0f%% of one core); mosquitto CPU %.0f%% of one core\n",
		cpuSec, 1e6*cpuSec/float64(max(published.Load(), 1)), 100*cpuSec/elapsed.Seconds(), 100*float64(mcpu1-mcpu0)/tck/elapsed.Seconds())
	fmt.Fprintf(out, "  lookout peak resident memory %.1f MiB\n", float64(peakRSS.Load())/1024)
	if want != stored {
		return fmt.Errorf("lost %d points", want-stored)
	}
	return nil
}

// node is a Mosquitto on a free loopback port (anonymous publishers) and
// a lookout (demo off) reading from it, logged in as the first admin.
type node struct {
	api       *apiClient
	mqttAddr  string
	lookout   *exec.Cmd
	mosquitto *exec.Cmd
	dir       string
}

// startNode starts a node; tsdbConf is the tsdb section of lookout.yaml.
func startNode(binary, mosquittoBin, tsdbConf, pprofAddr string) (*node, error) {
	dir, err := os.MkdirTemp("", "lookout-bench")
	if err != nil {
		return nil, err
	}
	n := &node{dir: dir}
	fail := func(err error) (*node, error) {
		n.stop()
		return nil, err
	}
	n.mqttAddr, _ = freeAddr()
	_, mqttPort, _ := strings.Cut(n.mqttAddr, ":")
	conf := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\nmax_inflight_messages 1000\nlog_dest none\n", mqttPort)
	if os.Geteuid() == 0 {
		conf += "user root\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "mosquitto.conf"), []byte(conf), 0o600); err != nil {
		return fail(err)
	}
	n.mosquitto = exec.Command(mosquittoBin, "-c", filepath.Join(dir, "mosquitto.conf"))
	if err := n.mosquitto.Start(); err != nil {
		n.mosquitto = nil
		return fail(fmt.Errorf("mosquitto: %w", err))
	}
	httpAddr, _ := freeAddr()
	cfg := fmt.Sprintf("data_dir: %s\nlog:\n  level: warn\nhttp:\n  addr: %s\nbootstrap:\n  root_org: {id: yn, name: 云南省, kind: province}\n  admin_password: bench-admin-password\nmqtt:\n  mode: external\n  external:\n    url: tcp://%s\n    username: lookout-bench\n    client_id: lookout-bench\n%sdemo:\n  enabled: false\nwebrtc:\n  udp_addr: 127.0.0.1:0\n  tcp_addr: 127.0.0.1:0\ndebug:\n  pprof_addr: %q\n",
		filepath.Join(dir, "data"), httpAddr, n.mqttAddr, tsdbConf, pprofAddr)
	if err := os.WriteFile(filepath.Join(dir, "lookout.yaml"), []byte(cfg), 0o600); err != nil {
		return fail(err)
	}
	n.lookout = exec.Command(binary, "serve", "--config", filepath.Join(dir, "lookout.yaml"))
	n.lookout.Stderr = os.Stderr
	if err := n.lookout.Start(); err != nil {
		n.lookout = nil
		return fail(err)
	}
	n.api = &apiClient{base: "http://" + httpAddr}
	if err := n.api.waitHealthy(20 * time.Second); err != nil {
		return fail(err)
	}
	if err := n.api.login(); err != nil {
		return fail(err)
	}
	return n, nil
}

func (n *node) stop() {
	for _, p := range []*exec.Cmd{n.lookout, n.mosquitto} {
		if p != nil {
			_ = p.Process.Signal(syscall.SIGTERM)
			_ = p.Wait()
		}
	}
	os.RemoveAll(n.dir)
}

// cpuTicks is utime+stime of a process, in clock ticks.
func cpuTicks(pid int) (int64, error) {
	user, system, err := cpuSplit(pid)
	return user + system, err
}

// cpuSplit is a process's time in user space and in the kernel (utime and
// stime), in clock ticks.
func cpuSplit(pid int) (user, system int64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command name, which may hold spaces.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	user, _ = strconv.ParseInt(f[11], 10, 64)
	system, _ = strconv.ParseInt(f[12], 10, 64)
	return user, system, nil
}

// clockTicks is USER_HZ, 100 on Linux.
func clockTicks() int64 { return 100 }

type apiClient struct {
	base  string
	token string
	http  http.Client
}

func (a *apiClient) waitHealthy(within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := a.http.Get(a.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("lookout not healthy within %s", within)
}

func (a *apiClient) do(method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		js, _ := json.Marshal(body)
		rd = bytes.NewReader(js)
	}
	req, _ := http.NewRequest(method, a.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s %s", method, path, resp.Status, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func (a *apiClient) login() error {
	var r struct{ Token string }
	if err := a.do("POST", "/api/v1/auth/login", map[string]string{"username": "admin", "password": "bench-admin-password"}, &r); err != nil {
		return err
	}
	a.token = r.Token
	return nil
}

func (a *apiClient) post(path string, body any) error { return a.do("POST", path, body, nil) }

func (a *apiClient) latest(device, metric string) (float64, bool) {
	var d struct {
		Latest map[string]struct{ Value float64 } `json:"latest"`
	}
	if err := a.do("GET", "/api/v1/devices/"+device, nil, &d); err != nil {
		return 0, false
	}
	v, ok := d.Latest[metric]
	return v.Value, ok
}

func (a *apiClient) count(device string, from, to int64) (int, error) {
	var r struct {
		Points []json.RawMessage `json:"points"`
	}
	err := a.do("GET", fmt.Sprintf("/api/v1/devices/%s/telemetry?metric=water_level_m&from=%d&to=%d", device, from, to), nil, &r)
	return len(r.Points), err
}

func (a *apiClient) metric(series string) (float64, error) {
	resp, err := a.http.Get(a.base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return 0, fmt.Errorf("no %s", series)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}
