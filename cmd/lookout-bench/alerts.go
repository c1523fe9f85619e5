package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// alerts measures the time from a sensor's publish to the alert event on
// GET /api/v1/events, while other telemetry flows through the same node
// and many rules are loaded. A probe gauge goes over its bound and back
// under its clear bound in turn; every crossing is an alert event (raised,
// refired or cleared), timed from the publish to the event's arrival at
// the bench's events stream. The background devices each have rules that
// they never break, so every one of their points is evaluated against
// them.
func alerts(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("alerts", flag.ContinueOnError)
	binary := fs.String("binary", "bin/lookout", "the lookout binary")
	mosquittoBin := fs.String("mosquitto", "/usr/sbin/mosquitto", "the mosquitto binary")
	rate := fs.Int("rate", 10000, "background telemetry, messages per second")
	devices := fs.Int("devices", 100, "background devices")
	rules := fs.Int("rules", 1000, "rules loaded (spread over the background devices; one is the probe's)")
	duration := fs.Duration("duration", 60*time.Second, "how long to measure")
	interval := fs.Duration("interval", 200*time.Millisecond, "between two probe crossings")
	pprofAddr := fs.String("pprof", "", "serve lookout's pprof on this address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *duration > 10*time.Minute || *rate > 100_000 || *devices < 1 || *rules < 1 || *rules > 100_000 {
		return errors.New("--duration at most 10m, --rate at most 100000, --rules 1-100000, at least one device")
	}
	n, err := startNode(*binary, *mosquittoBin, "tsdb:\n  backend: embedded\n", *pprofAddr)
	if err != nil {
		return err
	}
	defer n.stop()
	api := n.api
	if err := api.post("/api/v1/sites", map[string]any{"id": "bench", "name": "bench", "kind": "reservoir", "org_id": "yn", "lat": 27, "lon": 102}); err != nil {
		return err
	}
	for i := 0; i <= *devices; i++ { // the last one is the probe
		if err := api.post("/api/v1/devices", map[string]any{"id": fmt.Sprintf("bench-%d", i), "kind": "water_level", "name": "bench", "site_id": "bench", "lat": 27, "lon": 102}); err != nil {
			return err
		}
	}
	probeID := fmt.Sprintf("bench-%d", *devices)
	if err := api.post("/api/v1/rules", map[string]any{"id": "probe", "kind": "threshold", "device_id": probeID, "metric": "water_level_m",
		"above": 100, "clear_below": 50, "severity": "red"}); err != nil {
		return err
	}
	for i := 1; i < *rules; i++ {
		// Rules that hold no alarm for the background values (which count
		// up from 1): over a billion, or under minus one.
		rule := map[string]any{"id": fmt.Sprintf("quiet-%d", i), "kind": "threshold", "device_id": fmt.Sprintf("bench-%d", i%*devices),
			"metric": "water_level_m", "severity": "yellow"}
		if i%2 == 0 {
			rule["above"] = 1e9
		} else {
			rule["below"] = -1
		}
		if err := api.post("/api/v1/rules", rule); err != nil {
			return err
		}
	}

	// The events stream, as the console follows it.
	type arrival struct {
		value float64
		at    time.Time
	}
	arrivals := make(chan arrival, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", api.base+"/api/v1/events?types=alert", nil)
	req.Header.Set("Authorization", "Bearer "+api.token)
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("events: %s", resp.Status)
	}
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			at := time.Now()
			var ev struct {
				Data struct {
					Alert struct {
						RuleID string  `json:"rule_id"`
						Value  float64 `json:"value"`
					} `json:"alert"`
				} `json:"data"`
			}
			if json.Unmarshal([]byte(line), &ev) == nil && ev.Data.Alert.RuleID == "probe" {
				arrivals <- arrival{ev.Data.Alert.Value, at}
			}
		}
	}()

	// Background telemetry, QoS 0 over four connections.
	var pubs []paho.Client
	for i := 0; i < 5; i++ {
		c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + n.mqttAddr).SetClientID(fmt.Sprintf("bench-pub-%d", i)).
			SetProtocolVersion(4).SetAutoReconnect(false))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return fmt.Errorf("publisher: %v", tok.Error())
		}
		defer c.Disconnect(100)
		pubs = append(pubs, c)
	}
	probe, background := pubs[0], pubs[1:]
	runCtx, stop := context.WithTimeout(context.Background(), *duration)
	defer stop()
	var published atomic.Int64
	var wg sync.WaitGroup
	begin := time.Now()
	per := float64(*rate) / float64(len(background))
	for p, c := range background {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			var sent float64
			dev := p
			for {
				select {
				case <-runCtx.Done():
					return
				case <-tick.C:
				}
				for due := per * time.Since(begin).Seconds(); sent < due; sent++ {
					d := dev % *devices
					dev += len(background)
					c.Publish("lookout/v1/devices/bench-"+strconv.Itoa(d)+"/telemetry", 0, false, `{"water_level_m":`+strconv.Itoa(int(sent)+1)+`}`)
					published.Add(1)
				}
			}
		}()
	}
	cpu0, _ := cpuTicks(n.lookout.Process.Pid)

	// The probe: over the bound (value 1000+i), then under the clear bound
	// (value -i), each crossing timed until its event arrives.
	var lat []time.Duration
	lost := 0
	for i := 1; runCtx.Err() == nil; i++ {
		value := float64(1000 + i)
		if i%2 == 0 {
			value = float64(-i)
		}
		sent := time.Now()
		probe.Publish("lookout/v1/devices/"+probeID+"/telemetry", 0, false, `{"water_level_m":`+strconv.FormatFloat(value, 'f', -1, 64)+`}`)
		timeout := time.After(5 * time.Second)
	wait:
		for {
			select {
			case a := <-arrivals:
				if a.value == value {
					lat = append(lat, a.at.Sub(sent))
					break wait
				}
			case <-timeout:
				lost++
				break wait
			}
		}
		time.Sleep(*interval)
	}
	wg.Wait()
	cpu1, _ := cpuTicks(n.lookout.Process.Pid)
	elapsed := time.Since(begin)
	if len(lat) == 0 {
		return errors.New("no probe event arrived")
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration {
		return lat[min(len(lat)-1, int(float64(len(lat))*p))].Round(100 * time.Microsecond)
	}
	dropped, _ := api.metric("lookout_alert_queue_messages")
	fmt.Fprintf(out, "alerts: %d rules, %d msg/s of other telemetry from %d devices through Mosquitto, %s\n", *rules, *rate, *devices, elapsed.Round(time.Second))
	fmt.Fprintf(out, "  background published %d (%.0f msg/s)\n", published.Load(), float64(published.Load())/elapsed.Seconds())
	fmt.Fprintf(out, "  publish to alert event on the events stream (%d crossings, %d without an event): p50 %s  p99 %s  max %s\n",
		len(lat), lost, pct(0.5), pct(0.99), pct(1))
	fmt.Fprintf(out, "  lookout CPU %.0f%% of one core; alert engine queue at the end %.0f\n", 100*float64(cpu1-cpu0)/float64(clockTicks())/elapsed.Seconds(), dropped)
	if lost > 0 {
		return fmt.Errorf("%d crossings without an event", lost)
	}
	return nil
}
