package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// commands measures command round trips: N devices connected to the
// embedded broker, each answering its commands at once; N commands sent
// through the API at the same time; each timed from the API call until
// GET /commands/{id} says acked.
func commands(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("commands", flag.ContinueOnError)
	binary := fs.String("binary", "bin/lookout", "the lookout binary")
	n := fs.Int("devices", 1000, "devices, one command each")
	workers := fs.Int("concurrency", 100, "API calls in flight at once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *n > 10_000 || *workers < 1 || *workers > 1000 {
		return errors.New("--devices 1-10000, --concurrency 1-1000")
	}
	dir, err := os.MkdirTemp("", "lookout-bench-commands")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	httpAddr, _ := freeAddr()
	mqttAddr, _ := freeAddr()
	lk := exec.Command(*binary, "serve")
	lk.Env = append(os.Environ(), "LOOKOUT_DATA_DIR="+filepath.Join(dir, "data"), "LOOKOUT_HTTP_ADDR="+httpAddr,
		"LOOKOUT_MQTT_ADDR="+mqttAddr, "LOOKOUT_ADMIN_PASSWORD=bench-admin-password", "LOOKOUT_DEMO=0")
	if err := lk.Start(); err != nil {
		return err
	}
	defer func() { _ = lk.Process.Signal(syscall.SIGTERM); _ = lk.Wait() }()
	api := &apiClient{base: "http://" + httpAddr}
	if err := api.waitHealthy(20 * time.Second); err != nil {
		return err
	}
	if err := api.login(); err != nil {
		return err
	}
	if err := api.post("/api/v1/sites", map[string]any{"id": "bench", "name": "bench", "kind": "street", "org_id": "cn", "lat": 27, "lon": 102}); err != nil {
		return err
	}
	var clients []paho.Client
	defer func() {
		for _, c := range clients {
			c.Disconnect(50)
		}
	}()
	for i := 0; i < *n; i++ {
		id := fmt.Sprintf("lamp-%d", i)
		var made struct {
			MQTT struct{ Username, Password string } `json:"mqtt"`
		}
		if err := api.do("POST", "/api/v1/devices", map[string]any{"id": id, "kind": "streetlight", "name": id, "site_id": "bench", "lat": 27, "lon": 102}, &made); err != nil {
			return err
		}
		c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + mqttAddr).SetClientID(id).SetUsername(id).
			SetPassword(made.MQTT.Password).SetProtocolVersion(4).SetAutoReconnect(false))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return fmt.Errorf("device %s: %v", id, tok.Error())
		}
		clients = append(clients, c)
		c.Subscribe("lookout/v1/devices/"+id+"/cmd", 1, func(pc paho.Client, m paho.Message) {
			var cmd struct{ ID string }
			_ = json.Unmarshal(m.Payload(), &cmd)
			pc.Publish("lookout/v1/devices/"+id+"/cmd/ack", 1, false, `{"id":"`+cmd.ID+`","ok":true}`)
		}).WaitTimeout(10 * time.Second)
		c.Publish("lookout/v1/devices/"+id+"/status", 1, true, "online").WaitTimeout(10 * time.Second)
	}
	// Every device is online before the clock starts.
	for i := 0; i < *n; i++ {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			var d struct{ Online bool }
			if err := api.do("GET", fmt.Sprintf("/api/v1/devices/lamp-%d", i), nil, &d); err == nil && d.Online {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("lamp-%d not online", i)
			}
		}
	}

	lat := make([]time.Duration, *n)
	states := make([]string, *n)
	jobs := make(chan int)
	var wg sync.WaitGroup
	began := time.Now()
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				start := time.Now()
				var cmd struct{ ID, State string }
				if err := api.do("POST", fmt.Sprintf("/api/v1/devices/lamp-%d/commands", i),
					map[string]any{"name": "set_brightness", "params": map[string]any{"level": i % 101}}, &cmd); err != nil {
					states[i] = err.Error()
					continue
				}
				for deadline := start.Add(10 * time.Second); cmd.State != "acked" && time.Now().Before(deadline); {
					// Polling is the bench's own load on the server, so it
					// is sparse (20 ms); the server's histogram gives the
					// exact figure.
					time.Sleep(20 * time.Millisecond)
					_ = api.do("GET", "/api/v1/commands/"+cmd.ID, nil, &cmd)
				}
				lat[i], states[i] = time.Since(start), cmd.State
			}
		}()
	}
	for i := 0; i < *n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	total := time.Since(began)
	acked := 0
	for _, s := range states {
		if s == "acked" {
			acked++
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p := func(q float64) time.Duration {
		return lat[min(len(lat)-1, int(float64(len(lat))*q))].Round(100 * time.Microsecond)
	}
	fmt.Fprintf(out, "commands: %d devices on the embedded broker, one set_brightness each, %d API calls at once\n", *n, *workers)
	fmt.Fprintf(out, "  acked %d of %d in %s\n", acked, *n, total.Round(time.Millisecond))
	fmt.Fprintf(out, "  API call to acked, seen by polling every 20 ms: p50 %s  p99 %s  max %s\n", p(0.5), p(0.99), p(1))
	if q50, q99, err := api.histogramQuantiles("lookout_command_ack_seconds"); err == nil {
		fmt.Fprintf(out, "  accepted to acked, the server's histogram: p50 <= %s  p99 <= %s\n", q50, q99)
	}
	if acked != *n {
		return fmt.Errorf("%d commands not acked", *n-acked)
	}
	return nil
}

// histogramQuantiles reads a Prometheus histogram from /metrics and returns
// the upper bounds of the buckets holding its 50th and 99th percentiles.
func (a *apiClient) histogramQuantiles(name string) (time.Duration, time.Duration, error) {
	resp, err := a.http.Get(a.base + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	re := regexp.MustCompile(`(?m)^` + name + `_bucket\{le="([^"]+)"\} (\S+)$`)
	type bucket struct{ le, count float64 }
	var bs []bucket
	for _, m := range re.FindAllSubmatch(body, -1) {
		le, _ := strconv.ParseFloat(string(m[1]), 64)
		n, _ := strconv.ParseFloat(string(m[2]), 64)
		bs = append(bs, bucket{le, n})
	}
	if len(bs) == 0 || bs[len(bs)-1].count == 0 {
		return 0, 0, errors.New("no histogram")
	}
	total := bs[len(bs)-1].count
	q := func(f float64) time.Duration {
		for _, b := range bs {
			if b.count >= f*total {
				return time.Duration(b.le * float64(time.Second))
			}
		}
		return 0
	}
	return q(0.5), q(0.99), nil
}
