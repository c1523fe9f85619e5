package main

import (
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
	"slices"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// commands measures command round trips: N devices connected to the
// embedded broker, each answering its commands at once; N commands sent
// at the same time, as one group command (--group) or as N API calls with
// --concurrency in flight; each timed from the API call until
// GET /commands/{id} says acked. A command is polled only once its device
// has sent the ack, and only once every device has, so the bench's own
// reads do not load the server while it works; the time is taken from the
// command's done_at (the server's clock, which is this machine's).
func commands(argv []string, out io.Writer) error {
	fs := flag.NewFlagSet("commands", flag.ContinueOnError)
	binary := fs.String("binary", "bin/lookout", "the lookout binary")
	n := fs.Int("devices", 1000, "devices, one command each")
	workersFlag := fs.Int("concurrency", 100, "API calls in flight at once (without --group)")
	groupFlag := fs.Bool("group", false, "send the N commands as one group command to the site")
	rounds := fs.Int("rounds", 1, "bursts, one after the other; figures over all")
	pprofAddr := fs.String("pprof", "", "serve lookout's pprof on this address (for profiling a burst)")
	pahoDevices := fs.Bool("paho-devices", false, "simulate the devices with paho clients instead of the lean client")
	if err := fs.Parse(argv); err != nil {
		return err
	}
	if *n < 1 || *n > 10_000 || *workersFlag < 1 || *workersFlag > 1000 || *rounds < 1 || *rounds > 100 {
		return errors.New("--devices 1-10000, --concurrency 1-1000, --rounds 1-100")
	}
	dir, err := os.MkdirTemp("", "lookout-bench-commands")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	httpAddr, _ := freeAddr()
	mqttAddr, _ := freeAddr()
	args := []string{"serve"}
	if *pprofAddr != "" {
		conf := filepath.Join(dir, "lookout.yaml")
		if err := os.WriteFile(conf, []byte("bootstrap:\n  root_org: {id: cn, name: bench, kind: national}\ndebug:\n  pprof_addr: "+*pprofAddr+"\n"), 0o600); err != nil {
			return err
		}
		args = append(args, "--config", conf)
	}
	lk := exec.Command(*binary, args...)
	lk.Env = append(os.Environ(), "LOOKOUT_WEBRTC_ADDR=127.0.0.1:0", "LOOKOUT_TURN_ADDR=127.0.0.1:0", "LOOKOUT_DATA_DIR="+filepath.Join(dir, "data"), "LOOKOUT_HTTP_ADDR="+httpAddr,
		"LOOKOUT_MQTT_ADDR="+mqttAddr, "LOOKOUT_ADMIN_PASSWORD=bench-admin-password", "LOOKOUT_DEMO=0")
	if err := lk.Start(); err != nil {
		return err
	}
	defer func() { _ = lk.Process.Signal(syscall.SIGTERM); _ = lk.Wait() }()
	api := &apiClient{base: "http://" + httpAddr}
	// Connections are kept, as browsers keep theirs: without this the
	// client opens and closes one per call beyond the default two idle.
	api.http.Transport = &http.Transport{MaxIdleConnsPerHost: 2000, MaxConnsPerHost: 2000}
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
	var leanDevices []*leanDevice
	// ackSent[i] is told when device i has published its ack.
	ackSent := make([]chan struct{}, *n)
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
		signal := make(chan struct{}, 1)
		ackSent[i] = signal
		if !*pahoDevices {
			d, err := dialLeanDevice(mqttAddr, id, made.MQTT.Password, signal)
			if err != nil {
				return err
			}
			leanDevices = append(leanDevices, d)
			defer d.close()
			go d.serve()
			continue
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
			select {
			case signal <- struct{}{}:
			default:
			}
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

	// With --pprof, a CPU profile and an execution trace of lookout over
	// the first bursts, to lookout-cpu.prof and lookout.trace.
	profiled := make(chan error, 2)
	for _, p := range []struct{ url, file string }{{"profile?seconds=3", "lookout-cpu.prof"}, {"trace?seconds=1", "lookout.trace"}} {
		if *pprofAddr == "" {
			profiled <- nil
			continue
		}
		go func() {
			resp, err := http.Get("http://" + *pprofAddr + "/debug/pprof/" + p.url)
			if err == nil {
				defer resp.Body.Close()
				var f *os.File
				if f, err = os.Create(p.file); err == nil {
					_, err = io.Copy(f, resp.Body)
					f.Close()
				}
			}
			profiled <- err
		}()
	}
	// With --pprof, the allocations of the bursts: lookout's allocation
	// profile before and after them, for pprof -diff_base.
	saveAllocs := func(file string) error {
		if *pprofAddr == "" {
			return nil
		}
		return saveURL("http://"+*pprofAddr+"/debug/pprof/allocs", file)
	}
	if err := saveAllocs("lookout-allocs-before.prof"); err != nil {
		return err
	}
	var lat []time.Duration
	var states []string
	var total time.Duration
	var burstP99 []time.Duration // each burst's own p99: how much the bursts differ
	serverBefore, _ := cpuTicks(lk.Process.Pid)
	var ruBefore, ruAfter syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ruBefore)
	for range *rounds {
		l, st, took, err := commandBurst(api, *n, *workersFlag, *groupFlag, ackSent, leanDevices)
		if err != nil {
			return err
		}
		lat, states, total = append(lat, l...), append(states, st...), total+took
		own := slices.Clone(l)
		slices.Sort(own)
		burstP99 = append(burstP99, own[min(len(own)-1, len(own)*99/100)])
	}
	serverAfter, _ := cpuTicks(lk.Process.Pid)
	if err := saveAllocs("lookout-allocs-after.prof"); err != nil {
		return err
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ruAfter)
	benchCPU := time.Duration(ruAfter.Utime.Nano()+ruAfter.Stime.Nano()-ruBefore.Utime.Nano()-ruBefore.Stime.Nano()) / time.Duration(*rounds)
	serverCPU := time.Duration(serverAfter-serverBefore) * time.Second / time.Duration(clockTicks()) / time.Duration(*rounds)
	for range 2 {
		if err := <-profiled; err != nil {
			return fmt.Errorf("profile: %w", err)
		}
	}
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
	how := fmt.Sprintf("%d API calls at once", *workersFlag)
	if *groupFlag {
		how = "all in one group command"
	}
	devices := "lean MQTT clients"
	if *pahoDevices {
		devices = "paho clients"
	}
	fmt.Fprintf(out, "commands: %d devices (%s) on the embedded broker, one set_brightness each, %s; %d round(s)\n", *n, devices, how, *rounds)
	fmt.Fprintf(out, "  acked %d of %d in %s\n", acked, len(states), total.Round(time.Millisecond))
	fmt.Fprintf(out, "  API call to acked (its done_at): p50 %s  p99 %s  max %s\n", p(0.5), p(0.99), p(1))
	slices.Sort(burstP99)
	fmt.Fprintf(out, "  p99 of each burst: fastest %s, median %s, slowest %s\n", burstP99[0].Round(100*time.Microsecond),
		burstP99[len(burstP99)/2].Round(100*time.Microsecond), burstP99[len(burstP99)-1].Round(100*time.Microsecond))
	fmt.Fprintf(out, "  CPU per burst: lookout %s, the simulated devices (this process) %s\n", serverCPU.Round(time.Millisecond), benchCPU.Round(time.Millisecond))
	if q50, q99, err := api.histogramQuantiles("lookout_command_ack_seconds"); err == nil {
		fmt.Fprintf(out, "  accepted to acked, the server's histogram: p50 <= %s  p99 <= %s\n", q50, q99)
	}
	if acked != len(states) {
		return fmt.Errorf("%d commands not acked", len(states)-acked)
	}
	return nil
}

// settle is how long the bench waits, once every device has sent its ack,
// before it reads the results: lookout may still be taking the last acks,
// and reading a thousand results at once would compete with them. The
// times are the server's own (done_at), so waiting does not change them.
const settle = 200 * time.Millisecond

// commandBurst sends one command to each of n devices at once and returns
// each one's time from its API call to acked, and its final state.
// verbose prints the time each group call took to answer, on stderr.
var verbose = os.Getenv("LOOKOUT_BENCH_VERBOSE") != ""

func commandBurst(api *apiClient, n, workers int, group bool, ackSent []chan struct{}, lean []*leanDevice) ([]time.Duration, []string, time.Duration, error) {
	lat := make([]time.Duration, n)
	states := make([]string, n)
	// follow waits for command id of device i to be acked, and records
	// the time from start.
	// follow waits until device i has acked, then (when all n are in
	// flight) until every device has, so that reading the results does not
	// load the server while it works, then reads command id until it is acked, and records the
	// time from start to its done_at. Both clocks are this machine's.
	var allAcked sync.WaitGroup
	allAcked.Add(n)
	follow := func(i int, id string, start time.Time) {
		select {
		case <-ackSent[i]:
		case <-time.After(10 * time.Second):
		}
		allAcked.Done()
		if workers >= n {
			allAcked.Wait() // with fewer in flight, the others are not sent yet
			time.Sleep(settle)
		}
		var cmd struct {
			State     string
			CreatedAt time.Time `json:"created_at"`
			SentAt    time.Time `json:"sent_at"`
			DoneAt    time.Time `json:"done_at"`
		}
		for deadline := time.Now().Add(10 * time.Second); cmd.State != "acked" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			_ = api.do("GET", "/api/v1/commands/"+id, nil, &cmd)
		}
		lat[i], states[i] = cmd.DoneAt.Sub(start), cmd.State
		if verbose && i%100 == 0 {
			fmt.Fprintf(os.Stderr, "lamp-%d: created +%s sent +%s acked +%s\n", i, cmd.CreatedAt.Sub(start).Round(time.Millisecond),
				cmd.SentAt.Sub(start).Round(time.Millisecond), cmd.DoneAt.Sub(start).Round(time.Millisecond))
		}
	}
	refused := func() {
		allAcked.Done()
	}
	var wg sync.WaitGroup
	began := time.Now()
	if group {
		var g struct {
			ID      string
			Results []struct {
				DeviceID string `json:"device_id"`
				Command  *struct{ ID string }
			}
		}
		if err := api.do("POST", "/api/v1/command-groups", map[string]any{"site_id": "bench", "name": "set_brightness",
			"params": map[string]any{"level": 30}}, &g); err != nil {
			return nil, nil, 0, err
		}
		if verbose {
			fmt.Fprintf(os.Stderr, "group call answered in %s\n", time.Since(began).Round(100*time.Microsecond))
		}
		// Wait for every device's ack, then read the group (one call)
		// until every command has ended.
		deadline := time.After(10 * time.Second)
		for i := range ackSent {
			select {
			case <-ackSent[i]:
			case <-deadline:
			}
		}
		var now struct {
			Summary struct{ Done bool }
			Results []struct {
				DeviceID string `json:"device_id"`
				Command  *struct {
					State     string
					CreatedAt time.Time `json:"created_at"`
					SentAt    time.Time `json:"sent_at"`
					DoneAt    time.Time `json:"done_at"`
				}
			}
		}
		time.Sleep(settle)
		for end := time.Now().Add(10 * time.Second); !now.Summary.Done && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if err := api.do("GET", "/api/v1/command-groups/"+g.ID, nil, &now); err != nil {
				return nil, nil, 0, err
			}
		}
		for _, r := range now.Results {
			i, _ := strconv.Atoi(r.DeviceID[len("lamp-"):])
			lat[i], states[i] = r.Command.DoneAt.Sub(began), r.Command.State
			if verbose && i%100 == 99 {
				got := "?"
				if i < len(lean) {
					got = time.Unix(0, lean[i].got.Load()).Sub(began).Round(time.Millisecond).String()
				}
				fmt.Fprintf(os.Stderr, "lamp-%d: created +%s sent +%s at the device +%s acked +%s\n", i, r.Command.CreatedAt.Sub(began).Round(time.Millisecond),
					r.Command.SentAt.Sub(began).Round(time.Millisecond), got, r.Command.DoneAt.Sub(began).Round(time.Millisecond))
			}
		}
		for _, r := range g.Results {
			if r.Command == nil {
				i, _ := strconv.Atoi(r.DeviceID[len("lamp-"):])
				states[i] = "refused"
			}
		}
	} else {
		jobs := make(chan int)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range jobs {
					start := time.Now()
					var cmd struct{ ID string }
					if err := api.do("POST", fmt.Sprintf("/api/v1/devices/lamp-%d/commands", i),
						map[string]any{"name": "set_brightness", "params": map[string]any{"level": i % 101}}, &cmd); err != nil {
						states[i] = err.Error()
						refused()
						continue
					}
					follow(i, cmd.ID, start)
				}
			}()
		}
		for i := 0; i < n; i++ {
			jobs <- i
		}
		close(jobs)
	}
	wg.Wait()
	return lat, states, time.Since(began), nil
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
