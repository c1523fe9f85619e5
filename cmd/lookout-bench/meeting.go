package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lookout-cc/lookout/internal/config"
	"github.com/lookout-cc/lookout/internal/server"
)

// meeting measures the meeting SFU (sfu/meeting) with pion participants on
// loopback that speak the signaling protocol as a browser does.
//
// The fan-out (default): one publisher sends simulcast VP8 (rids l, m, h
// at 150, 500 and 900 kbit/s, 30 frames/s each) and Opus-sized audio (50
// packets/s, with the audio level) to --subscribers receivers, who ask
// for the high layer as a browser's large tile does; the SFU starts each
// on the low layer and its allocator climbs. After --warmup, for
// --duration, every receiver counts its packets against their sequence
// numbers (loss) and reads from each the publisher's send time (the delay
// through the SFU, both ends in this process on one clock).
//
// Rooms (--rooms N): N rooms of --per-room participants who all publish
// (VP8 at 300 kbit/s, no simulcast, and audio) and receive everyone
// else; lookout's resident memory, heap and goroutines are sampled every
// --sample over --duration, to show whether memory stays flat.
//
// lookout runs as its own process (--binary, as the other measurements
// start it), so its CPU and memory are its own; the participants all run
// in this process. --in-process runs the server in this process instead
// (the test does, so that it needs no built binary).
//
// The receivers decrypt their media on their sockets' readers and hand it
// to pion's track once (--intake, the default since 2026-12-02), as
// lookout's direct receiver does and as a browser's network thread does;
// --intake=false reads it through pion's path, each packet handed between
// four goroutines, as every figure before that date. The load generator
// shares the two cores with lookout, and with the intake it takes a sixth
// less of them: lookout's CPU per Mbit/s is no lower for it, but its
// forwarding delay waits less often for a core (docs/BENCHMARKS.md,
// "Meetings").
//
// --compare OTHER measures the fan-out with --binary and OTHER in turn,
// --pairs times each, and prints their figures side by side: this
// virtual machine's speed drifts by a fifth from one hour to the next,
// and only alternating runs tell two builds apart.
func meeting(argv []string, out io.Writer) error {
	fs := flag.NewFlagSet("meeting", flag.ContinueOnError)
	binary := fs.String("binary", "bin/lookout", "the lookout binary")
	inProcess := fs.Bool("in-process", false, "run the server in the bench's own process instead of --binary")
	subscribers := fs.Int("subscribers", 200, "fan-out: receivers of the one publisher")
	duration := fs.Duration("duration", 30*time.Second, "how long to measure")
	warmup := fs.Duration("warmup", 10*time.Second, "how long the layers may climb, once everyone receives, before measuring")
	rooms := fs.Int("rooms", 0, "rooms of --per-room participants who all publish and receive everyone (0: the fan-out)")
	perRoom := fs.Int("per-room", 6, "participants per room, with --rooms")
	sample := fs.Duration("sample", 10*time.Second, "with --rooms: how often memory and goroutines are sampled")
	pprofAddr := fs.String("pprof", "", "serve lookout's pprof on this address, and write its CPU profile over the measurement (at most 60 s) to lookout-meeting-cpu.prof")
	cpuProfile := fs.String("cpuprofile", "", "write this process's CPU profile over the measurement to this file")
	ratesFlag := fs.String("rates", "150,500,900", "fan-out: the publisher's simulcast layers l,m,h in kbit/s (LiveKit's load tester sends about 150,500,1700)")
	audio := fs.Bool("audio", true, "fan-out: the publisher sends audio too (50 packets/s)")
	directSend := fs.Bool("direct-send", true, "lookout sends meeting media with its direct sender (webrtc.direct_send, the default); false: through pion's SRTP path, to compare the two")
	directReceive := fs.Bool("direct-receive", true, "lookout takes publishers' media off its UDP port with its direct receiver (webrtc.direct_receive, the default); false: through pion's path, to compare the two")
	intake := fs.Bool("intake", true, "the receivers decrypt their media on their socket's reader and hand it to pion's track, as lookout's direct receiver does: the load generator takes a sixth less of the two cores it shares with lookout (docs/BENCHMARKS.md); false: through pion's four goroutine hand-overs, as every figure before 2026-12-02")
	nice := fs.Int("nice", 0, "run the participants at this CPU priority (nice 1-19, below lookout's own), so that where the two contend for the cores lookout comes first, as a server does not share its machine with its clients; 0: the same priority")
	pacing := fs.Float64("pacing", 2.5, "publishers pace their video packets at this many times the video's bitrate, as browsers do (Chrome: 2.5); 0 sends each frame's packets at once")
	compare := fs.String("compare", "", "fan-out: also measure this other lookout binary, in --pairs runs alternating with --binary, and print both side by side (on a machine whose speed drifts, only alternating runs compare two builds)")
	pairs := fs.Int("pairs", 3, "with --compare: how many runs of each binary")
	slice := fs.Duration("server-slice", 0, "ask Linux's scheduler for this slice (100µs-100ms) for every thread of lookout (sched_setattr's sched_runtime): shorter runs a woken thread sooner, longer lets it run longer before it is preempted; 0: the kernel's default (docs/BENCHMARKS.md: neither helped)")
	if err := fs.Parse(argv); err != nil {
		return err
	}
	switch {
	case *duration < time.Second || *duration > 30*time.Minute || *warmup < 0 || *warmup > 5*time.Minute:
		return errors.New("--duration 1s-30m, --warmup at most 5m")
	case *rooms == 0 && (*subscribers < 1 || *subscribers > 499):
		return errors.New("--subscribers 1-499 (a room holds at most 500)")
	case *rooms < 0 || *rooms > 100 || *rooms > 0 && (*perRoom < 2 || *perRoom > 16 || *rooms**perRoom > 500):
		return errors.New("--rooms 0-100, --per-room 2-16, at most 500 participants in all")
	case *sample < time.Second:
		return errors.New("--sample at least 1s")
	case *pacing != 0 && (*pacing < 1 || *pacing > 100):
		return errors.New("--pacing 0 or 1-100")
	case *nice < 0 || *nice > 19:
		return errors.New("--nice 0-19")
	case *slice != 0 && (*slice < 100*time.Microsecond || *slice > 100*time.Millisecond || *inProcess):
		return errors.New("--server-slice 100µs-100ms, for lookout in its own process")
	case *compare != "" && (*rooms > 0 || *pairs < 1 || *pairs > 20):
		return errors.New("--compare measures the fan-out (no --rooms), with --pairs 1-20")
	}
	var rates []int
	for _, f := range strings.Split(*ratesFlag, ",") {
		kbit, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || kbit < 30 || kbit > 8000 {
			return fmt.Errorf("--rates: %q is not a bitrate of 30-8000 kbit/s", f)
		}
		rates = append(rates, kbit*1000)
	}
	if len(rates) != 3 {
		return errors.New("--rates: three layers, l,m,h")
	}
	if *nice > 0 && !*inProcess {
		if err := yieldToServer(*nice); err != nil {
			return fmt.Errorf("--nice: %w", err)
		}
	}
	o := meetOpts{nice: *nice, subscribers: *subscribers, duration: *duration, warmup: *warmup, rooms: *rooms, perRoom: *perRoom, sample: *sample,
		pprofAddr: *pprofAddr, cpuProfile: *cpuProfile, pacing: *pacing, rates: rates, audio: *audio, directSend: *directSend, directReceive: *directReceive, intake: *intake, slice: *slice}
	if *compare != "" {
		return meetingCompare([2]string{*binary, *compare}, *pairs, *inProcess, o, out)
	}
	srv, err := startMeetServer(*binary, *inProcess, *pprofAddr, *directSend, *directReceive)
	if err != nil {
		return err
	}
	defer srv.stop()
	if err := srv.setSlice(o.slice); err != nil {
		return err
	}
	if *rooms > 0 {
		return meetingRooms(srv, o, out)
	}
	_, err = meetingFanout(srv, o, out)
	return err
}

// meetingCompare runs the fan-out with each of two binaries in turn,
// pairs times (each pair in the other order from the one before), and
// prints each run's figures side by side and the
// medians: on a virtual machine whose speed drifts by a fifth from one
// hour to the next, runs of two builds compare only when they alternate.
func meetingCompare(binaries [2]string, pairs int, inProcess bool, o meetOpts, out io.Writer) error {
	var results [2][]fanoutResult
	for pair := range pairs {
		// Each pair in the other order, so that neither binary always
		// runs after the other's participants; the previous run's
		// memory is returned first.
		order := []int{0, 1}
		if pair%2 == 1 {
			order = []int{1, 0}
		}
		for _, i := range order {
			b := binaries[i]
			debug.FreeOSMemory()
			fmt.Fprintf(out, "run %d of %s:\n", pair+1, b)
			srv, err := startMeetServer(b, inProcess, "", o.directSend, o.directReceive)
			if err == nil {
				if err = srv.setSlice(o.slice); err != nil {
					srv.stop()
				}
			}
			if err != nil {
				return fmt.Errorf("%s: %w", b, err)
			}
			r, err := meetingFanout(srv, o, out)
			srv.stop()
			if err != nil {
				return fmt.Errorf("%s: %w", b, err)
			}
			results[i] = append(results[i], r)
		}
	}
	fmt.Fprintf(out, "alternating runs, %d of each:\n", pairs)
	for i, b := range binaries {
		fmt.Fprintf(out, "  %s\n", b)
		for _, r := range results[i] {
			fmt.Fprintf(out, "    %s\n", r)
		}
		fmt.Fprintf(out, "    median: %s\n", medianResult(results[i]))
	}
	return nil
}

// fanoutResult is what one fan-out run measured.
type fanoutResult struct {
	lost, expected uint64
	p99            time.Duration
	// perMbit is lookout's CPU per forwarded Mbit/s (% of one core), and
	// switches its context switches a second; both 0 when it ran in the
	// bench's process.
	perMbit, switches float64
	// participants is the bench's own CPU, % of one core.
	participants float64
}

func (r fanoutResult) String() string {
	s := fmt.Sprintf("lost %d of %d, p99 forwarding delay %s", r.lost, r.expected, roundDelay(r.p99))
	if r.perMbit > 0 {
		s += fmt.Sprintf(", lookout %.3f%% of one core per forwarded Mbit/s, %.0f context switches a second", r.perMbit, r.switches)
	}
	return s + fmt.Sprintf("; the participants %.0f%% of one core", r.participants)
}

// medianResult is each figure's median over rs (each figure on its own).
func medianResult(rs []fanoutResult) fanoutResult {
	mid := func(f func(fanoutResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		sort.Float64s(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return fanoutResult{
		lost:         uint64(mid(func(r fanoutResult) float64 { return float64(r.lost) })),
		expected:     uint64(mid(func(r fanoutResult) float64 { return float64(r.expected) })),
		p99:          time.Duration(mid(func(r fanoutResult) float64 { return float64(r.p99) })),
		perMbit:      mid(func(r fanoutResult) float64 { return r.perMbit }),
		switches:     mid(func(r fanoutResult) float64 { return r.switches }),
		participants: mid(func(r fanoutResult) float64 { return r.participants }),
	}
}

type meetOpts struct {
	nice             int
	subscribers      int
	duration, warmup time.Duration
	rooms, perRoom   int
	sample           time.Duration
	pprofAddr        string
	cpuProfile       string
	pacing           float64
	directSend       bool
	directReceive    bool
	// intake: the receivers take their media on their socket's reader.
	intake bool
	// slice is the scheduler slice asked for lookout's threads (0: the
	// kernel's default).
	slice time.Duration
	// rates are the fan-out publisher's layers (bit/s); audio whether it
	// sends audio.
	rates []int
	audio bool
}

// meetServer is the lookout under test.
type meetServer struct {
	api   *apiClient
	wsURL string
	// pid is lookout's process, 0 when it runs in this one.
	pid  int
	stop func()
}

// setSlice asks the scheduler for a slice of d for lookout's threads
// (--server-slice); 0 leaves them as they are.
func (s *meetServer) setSlice(d time.Duration) error {
	if d == 0 {
		return nil
	}
	if err := setSlice(s.pid, d); err != nil {
		return fmt.Errorf("--server-slice: %w", err)
	}
	return nil
}

// startMeetServer starts lookout (demo off, everything on loopback, the
// log at warn) with a fresh data directory, as its own process or in this
// one.
func startMeetServer(binary string, inProcess bool, pprofAddr string, directSend, directReceive bool) (*meetServer, error) {
	dir, err := os.MkdirTemp("", "lookout-bench-meeting")
	if err != nil {
		return nil, err
	}
	var logOut io.Writer = io.Discard
	if verbose {
		logOut = os.Stderr
	}
	s := &meetServer{}
	var httpAddr string
	if inProcess {
		cfg := config.Default()
		cfg.DataDir = filepath.Join(dir, "data")
		cfg.HTTP.Addr, cfg.MQTT.Embedded.Addr = "127.0.0.1:0", "127.0.0.1:0"
		cfg.WebRTC.UDPAddr, cfg.WebRTC.TCPAddr = "127.0.0.1:0", "127.0.0.1:0"
		cfg.Bootstrap.RootOrg = config.OrgSeed{ID: "cn", Name: "bench", Kind: "national"}
		cfg.Bootstrap.AdminPassword = "bench-admin-password"
		cfg.Log.Level = "warn"
		cfg.Debug.PprofAddr = pprofAddr
		cfg.WebRTC.DirectSend, cfg.WebRTC.DirectReceive = directSend, directReceive
		if err := cfg.Validate(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		lk := server.New(server.Params{Config: cfg, Log: slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelWarn})), Version: "bench"})
		if err := lk.Start(context.Background()); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		httpAddr = lk.HTTPAddr()
		s.stop = func() {
			ctx, cancel := context.WithTimeout(context.Background(), server.StopTimeout)
			defer cancel()
			_ = lk.Stop(ctx)
			os.RemoveAll(dir)
		}
	} else {
		conf := filepath.Join(dir, "lookout.yaml")
		level := "warn"
		if verbose {
			level = "debug"
		}
		yaml := "bootstrap:\n  root_org: {id: cn, name: bench, kind: national}\nlog:\n  level: " + level + "\n"
		if pprofAddr != "" {
			yaml += "debug:\n  pprof_addr: " + pprofAddr + "\n"
		}
		yaml += "webrtc:\n  direct_send: " + strconv.FormatBool(directSend) + "\n"
		if !directReceive {
			// Only when asked: a build before the key would refuse
			// it. Left out, each build runs with its own default (on
			// since the receiver became the default).
			yaml += "  direct_receive: false\n"
		}
		if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		httpAddr, _ = freeAddr()
		mqttAddr, _ := freeAddr()
		lk := exec.Command(binary, "serve", "--config", conf)
		lk.Env = append(os.Environ(), "LOOKOUT_WEBRTC_ADDR=127.0.0.1:0", "LOOKOUT_TURN_ADDR=127.0.0.1:0", "LOOKOUT_DATA_DIR="+filepath.Join(dir, "data"), "LOOKOUT_HTTP_ADDR="+httpAddr,
			"LOOKOUT_MQTT_ADDR="+mqttAddr, "LOOKOUT_ADMIN_PASSWORD=bench-admin-password", "LOOKOUT_DEMO=0")
		lk.Stdout, lk.Stderr = logOut, logOut
		if err := lk.Start(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		s.pid = lk.Process.Pid
		s.stop = func() {
			_ = lk.Process.Signal(syscall.SIGTERM)
			_ = lk.Wait()
			os.RemoveAll(dir)
		}
	}
	s.api = &apiClient{base: "http://" + httpAddr}
	s.api.http.Transport = &http.Transport{MaxIdleConnsPerHost: 16}
	s.wsURL = "ws://" + httpAddr + "/rtc/signal"
	if err := s.api.waitHealthy(20 * time.Second); err != nil {
		s.stop()
		return nil, err
	}
	if err := s.api.login(); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *meetServer) token(room, identity, role string) (string, error) {
	var r struct{ Token string }
	err := s.api.do("POST", "/api/v1/rooms/"+room+"/tokens", map[string]any{"identity": identity, "name": identity, "role": role}, &r)
	return r.Token, err
}

// procSample is a process's memory and goroutines at one time.
type procSample struct {
	at         time.Duration
	rssKiB     int64
	heap       uint64
	goroutines int
}

// sample reads lookout's resident memory (/proc) and its heap in use and
// goroutines (its /metrics); in-process, this process's.
func (s *meetServer) sample() procSample {
	if s.pid == 0 {
		return selfSample()
	}
	var p procSample
	p.rssKiB, _ = residentKiB(s.pid)
	if v, err := s.api.metric("go_memstats_heap_inuse_bytes"); err == nil {
		p.heap = uint64(v)
	}
	if v, err := s.api.metric("go_goroutines"); err == nil {
		p.goroutines = int(v)
	}
	return p
}

func selfSample() procSample {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, _ := residentKiB(os.Getpid())
	return procSample{rssKiB: rss, heap: ms.HeapInuse, goroutines: runtime.NumGoroutine()}
}

func (p procSample) String() string {
	return fmt.Sprintf("RSS %.1f MiB, heap in use %.1f MiB, %d goroutines", float64(p.rssKiB)/1024, float64(p.heap)/(1<<20), p.goroutines)
}

// cpuMeter measures the CPU of lookout and of this process over a span,
// and the UDP datagrams the machine's sockets dropped for a full receive
// buffer (/proc/net/snmp).
type cpuMeter struct {
	srv                      *meetServer
	began                    time.Time
	lk, lkSys, self          int64
	lkPct, lkSysPct, selfPct float64
	drops                    int64
	// lkSwitches are lookout's threads' context switches at the start;
	// lkSwitchRate is their rate over the measurement, a second, and
	// lkBusiestRate the rate of the thread that made the most (the Go
	// runtime's monitor thread, when system calls keep waking it).
	lkSwitches                  map[string]int64
	lkSwitchRate, lkBusiestRate float64
}

// contextSwitches is each thread of a process's context switches,
// voluntary (waiting: for the network, a lock, a sleep) and not, by
// thread id. On a virtual machine each is dear, and they are where a
// server's wake-ups show.
func contextSwitches(pid int) (map[string]int64, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil, err
	}
	byThread := map[string]int64{}
	for _, t := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue // a thread that ended
		}
		for _, line := range strings.Split(string(data), "\n") {
			for _, field := range []string{"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"} {
				if v, ok := strings.CutPrefix(line, field); ok {
					c, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					byThread[t.Name()] += c
				}
			}
		}
	}
	return byThread, nil
}

// switchesBetween is the context switches made from before to after, in
// all and by the thread that made the most.
func switchesBetween(before, after map[string]int64) (total, busiest int64) {
	for tid, n := range after {
		d := n - before[tid] // a thread started since: all of its own
		total += d
		busiest = max(busiest, d)
	}
	return total, busiest
}

// udpReceiveDrops is the machine's UDP RcvbufErrors count.
func udpReceiveDrops() int64 {
	data, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0
	}
	var names []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "RcvbufErrors" && i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				return v
			}
		}
	}
	return 0
}

func (m *cpuMeter) start() {
	m.began = time.Now()
	m.drops = udpReceiveDrops()
	m.self, _ = cpuTicks(os.Getpid())
	if m.srv.pid != 0 {
		user, sys, _ := cpuSplit(m.srv.pid)
		m.lk, m.lkSys = user+sys, sys
		m.lkSwitches, _ = contextSwitches(m.srv.pid)
	}
}

func (m *cpuMeter) stop() {
	secs := time.Since(m.began).Seconds()
	m.drops = udpReceiveDrops() - m.drops
	self, _ := cpuTicks(os.Getpid())
	m.selfPct = 100 * float64(self-m.self) / float64(clockTicks()) / secs
	if m.srv.pid != 0 {
		user, sys, _ := cpuSplit(m.srv.pid)
		m.lkPct = 100 * float64(user+sys-m.lk) / float64(clockTicks()) / secs
		m.lkSysPct = 100 * float64(sys-m.lkSys) / float64(clockTicks()) / secs
		switches, _ := contextSwitches(m.srv.pid)
		total, busiest := switchesBetween(m.lkSwitches, switches)
		m.lkSwitchRate, m.lkBusiestRate = float64(total)/secs, float64(busiest)/secs
	}
}

func (m *cpuMeter) String() string {
	drops := fmt.Sprintf("; UDP datagrams dropped by full socket buffers (the machine's RcvbufErrors): %d", m.drops)
	if m.srv.pid == 0 {
		return fmt.Sprintf("lookout and the participants, one process: %.0f%% of one core", m.selfPct) + drops
	}
	// The kernel's part is mostly sending: on loopback it includes the
	// receivers' side of each datagram (their socket queues, waking them).
	return fmt.Sprintf("lookout %.0f%% of one core (in the kernel %.0f%%; %.0f context switches a second, at most %.0f in one thread); the participants (this process) %.0f%%",
		m.lkPct, m.lkSysPct, m.lkSwitchRate, m.lkBusiestRate, m.selfPct) + drops
}

// profiles takes, with --pprof, lookout's CPU profile over the next d (at
// most 60 s) and, with --cpuprofile, this process's; done ends them and,
// with --pprof, saves lookout's heap profile to lookout-meeting-heap.prof.
func profiles(o meetOpts, d time.Duration) (done func() error) {
	var wg sync.WaitGroup
	var lkErr error
	if o.pprofAddr != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			secs := int(min(d, time.Minute).Seconds())
			lkErr = saveURL(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", o.pprofAddr, max(secs, 1)), "lookout-meeting-cpu.prof")
		}()
	}
	var f *os.File
	if o.cpuProfile != "" {
		var err error
		if f, err = os.Create(o.cpuProfile); err == nil {
			if err = pprof.StartCPUProfile(f); err != nil {
				f.Close()
				f = nil
			}
		}
	}
	return func() error {
		if f != nil {
			pprof.StopCPUProfile()
			f.Close()
		}
		wg.Wait()
		if o.pprofAddr != "" && lkErr == nil {
			// And what lookout's heap holds at the end.
			lkErr = saveURL("http://"+o.pprofAddr+"/debug/pprof/heap", "lookout-meeting-heap.prof")
		}
		return lkErr
	}
}

func saveURL(url, file string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

// joinAll joins n participants, 8 at a time: identity(i) with token(i),
// then, if then is not nil, then(i, client).
func joinAll(srv *meetServer, n int, phase *atomic.Int32, intake bool, identity func(int) string, tokens []string, then func(int, *meetClient) error) ([]*meetClient, []error) {
	clients := make([]*meetClient, n)
	errs := make([]error, n)
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range min(8, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, err := dialMeeting(srv.wsURL, identity(i), tokens[i], phase, intake)
				if err == nil && then != nil {
					if err = then(i, c); err != nil {
						c.close()
					}
				}
				if err != nil {
					errs[i] = err
					continue
				}
				clients[i] = c
			}
		}()
	}
	wg.Wait()
	return clients, errs
}

func closeAll(clients []*meetClient) {
	var wg sync.WaitGroup
	work := make(chan *meetClient)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				c.close()
			}
		}()
	}
	for _, c := range clients {
		if c != nil {
			work <- c
		}
	}
	close(work)
	wg.Wait()
}

// waitMedia waits, at most within, until every client has packets on
// video tracks of video publishers and audio tracks of audio publishers;
// it returns how many have.
func waitMedia(clients []*meetClient, video, audio int, within time.Duration) int {
	deadline := time.Now().Add(within)
	for {
		ready := 0
		for _, c := range clients {
			if c == nil {
				continue
			}
			if v, a := c.receivedTracks(); v >= video && a >= audio {
				ready++
			}
		}
		if ready == len(clients) || time.Now().After(deadline) {
			return ready
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// meetTotals are the receivers' measurements, summed.
type meetTotals struct {
	tracks int
	// videoFlowing are the video tracks that had packets while measured.
	videoFlowing                              int
	expected, received, late, gaps, dups, bad uint64
	// bytes are the RTP bytes received (duplicates included).
	bytes                        uint64
	videoReceived, audioReceived uint64
	// delay is every packet's, video and audio their own; toSocket to
	// the arrival at the receivers' sockets.
	delay, video, audio, toSocket histogram
	// forward is from the publisher's socket to the receivers': the SFU's
	// part, with the kernel's loopback delivery at both ends.
	forward histogram
	// spread, in the fan-out, is each packet's first and last copy.
	spread *copySpread
}

func collect(clients []*meetClient) *meetTotals {
	t := &meetTotals{}
	for _, c := range clients {
		if c == nil {
			continue
		}
		c.mu.Lock()
		tracks := append([]*recvTrack(nil), c.tracks...)
		c.mu.Unlock()
		for _, tr := range tracks {
			var h histogram
			r := tr.result(&h, &t.toSocket, &t.forward)
			t.delay.merge(&h)
			if r.audio {
				t.audio.merge(&h)
			} else {
				t.video.merge(&h)
			}
			t.tracks++
			t.expected += r.expected
			t.received += r.received
			t.late += r.late
			t.gaps += r.gaps
			t.dups += r.dups
			t.bad += r.bad
			t.bytes += r.bytes
			if r.audio {
				t.audioReceived += r.received
			} else {
				t.videoReceived += r.received
				if r.received > 0 {
					t.videoFlowing++
				}
			}
		}
	}
	return t
}

func (t *meetTotals) report(out io.Writer, receivers int, d time.Duration) {
	lost := int64(t.expected) - int64(t.received)
	pct := 0.0
	if t.expected > 0 {
		pct = 100 * float64(lost) / float64(t.expected)
	}
	fmt.Fprintf(out, "  packets received %d of %d expected from the sequence numbers (video %d, audio %d; %.0f/s per receiver): lost %d (%.3f%%)\n",
		t.received, t.expected, t.videoReceived, t.audioReceived, float64(t.received)/d.Seconds()/float64(max(receivers, 1)), lost, pct)
	fmt.Fprintf(out, "  missing on arrival %d (%.3f%%), of which came late (retransmitted or reordered) %d; duplicates %d; without a send time %d\n",
		t.gaps, 100*float64(t.gaps)/float64(max(t.expected, 1)), t.late, t.dups, t.bad)
	q := func(h *histogram) string {
		return fmt.Sprintf("p50 %s  p99 %s  p99.9 %s  max %s", roundDelay(h.quantile(0.5)), roundDelay(h.quantile(0.99)),
			roundDelay(h.quantile(0.999)), roundDelay(h.quantile(1)))
	}
	fmt.Fprintf(out, "  forwarding delay, from the publisher's socket to the receiver's (the SFU's part; %d packets): %s\n", t.forward.n, q(&t.forward))
	if t.spread != nil {
		first, last := t.spread.histograms()
		fmt.Fprintf(out, "    of each packet (%d), its first copy (the wait before the fan-out reached anyone): p50 %s  p99 %s; its last copy: p50 %s  p99 %s\n",
			first.n, roundDelay(first.quantile(0.5)), roundDelay(first.quantile(0.99)), roundDelay(last.quantile(0.5)), roundDelay(last.quantile(0.99)))
	}
	fmt.Fprintf(out, "  delay from the publisher's write to the receiver's socket (and through the publisher's pion; %d): %s\n", t.toSocket.n, q(&t.toSocket))
	fmt.Fprintf(out, "  delay from the publisher's write to the receiver's read (and through its pion; %d): %s\n", t.delay.n, q(&t.delay))
	fmt.Fprintf(out, "    of it video (%d): %s\n", t.video.n, q(&t.video))
	fmt.Fprintf(out, "    of it audio (%d): %s\n", t.audio.n, q(&t.audio))
}

func roundDelay(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(10 * time.Microsecond)
}

// meetingFanout is the one-publisher fan-out.
func meetingFanout(srv *meetServer, o meetOpts, out io.Writer) (fanoutResult, error) {
	n := o.subscribers
	if err := srv.api.post("/api/v1/rooms", map[string]any{"id": "fanout", "name": "fan-out", "org_id": "cn", "max_participants": max(n+1, 2)}); err != nil {
		return fanoutResult{}, err
	}
	tokens := make([]string, n)
	for i := range n {
		var err error
		if tokens[i], err = srv.token("fanout", fmt.Sprintf("sub-%03d", i), "viewer"); err != nil {
			return fanoutResult{}, err
		}
	}
	pubToken, err := srv.token("fanout", "pub", "participant")
	if err != nil {
		return fanoutResult{}, err
	}
	feedbackSent.Store(0) // a run before this one's, with --compare
	idle, benchIdle := srv.sample(), selfSample()
	var phase atomic.Int32
	pub, err := dialMeeting(srv.wsURL, "pub", pubToken, &phase, o.intake)
	if err != nil {
		return fanoutResult{}, err
	}
	defer pub.close()
	level := byte(30)
	if !o.audio {
		level = 0 // no audio packets at all
	}
	publisher, err := pub.publish(o.rates, level, o.pacing)
	if err != nil {
		return fanoutResult{}, err
	}
	joinStart := time.Now()
	subs, errs := joinAll(srv, n, &phase, o.intake, func(i int) string { return fmt.Sprintf("sub-%03d", i) }, tokens, nil)
	defer closeAll(subs)
	joinTook := time.Since(joinStart)
	connected := waitMedia(subs, 1, boolInt(o.audio), 30*time.Second)
	var joinErrs []string
	for _, err := range errs {
		if err != nil && len(joinErrs) < 5 {
			joinErrs = append(joinErrs, err.Error())
		}
	}
	start, benchStart := srv.sample(), selfSample()
	time.Sleep(o.warmup)
	spread := &copySpread{}
	publisher.spread.Store(spread)

	var cpu cpuMeter
	cpu.srv = srv
	v0, a0, k0 := publisher.videoPackets.Load(), publisher.audioPackets.Load(), publisher.keyframes.Load()
	stopProfiles := profiles(o, o.duration)
	phase.Store(phaseMeasure)
	cpu.start()
	time.Sleep(o.duration)
	phase.Store(phaseDone)
	cpu.stop()
	perr := stopProfiles()
	v1, a1, k1 := publisher.videoPackets.Load(), publisher.audioPackets.Load(), publisher.keyframes.Load()
	end, benchEnd := srv.sample(), selfSample()

	// Where each receiver's video ended, as the server said, and the
	// packets it received of it.
	layers := map[string]int{}
	for _, c := range subs {
		if c == nil {
			continue
		}
		c.mu.Lock()
		l := "none (kept the layer it started on)"
		for _, v := range c.layers {
			l = v
		}
		c.mu.Unlock()
		layers[l]++
	}
	totals := collect(subs)

	audioText := "Opus-sized audio 50/s"
	if !o.audio {
		audioText = "no audio"
	}
	fmt.Fprintf(out, "meeting fan-out: 1 publisher (VP8 simulcast l/m/h %d/%d/%d kbit/s, %d frames/s each, a keyframe every 2 s and on request, %s; %s) to %d subscribers asking for high\n",
		o.rates[0]/1000, o.rates[1]/1000, o.rates[2]/1000, frameRate, pacingString(o.pacing), audioText, n)
	where := "lookout in its own process, the participants in the bench's"
	if srv.pid == 0 {
		where = "lookout and the participants in one process"
	}
	if srv.pid != 0 && o.nice > 0 {
		where += fmt.Sprintf(" at nice %d", o.nice)
	}
	if o.slice > 0 {
		where += fmt.Sprintf("; lookout's threads at a scheduler slice of %s", o.slice)
	}
	if o.directSend {
		where += "; lookout sending with its direct sender (the default)"
	} else {
		where += "; lookout sending through pion's SRTP path (--direct-send=false)"
	}
	if o.directReceive {
		where += ", receiving with its direct receiver (the default)"
	} else {
		where += ", receiving through pion's path (--direct-receive=false)"
	}
	fmt.Fprintf(out, "  %s; %s warm-up, then measured for %s\n", where, o.warmup, o.duration)
	fmt.Fprintf(out, "  subscribers receiving %d of %d (joined in %s); %s\n", connected, n, joinTook.Round(10*time.Millisecond), intakeText(o.intake, subs))
	if len(joinErrs) > 0 {
		fmt.Fprintf(out, "  join failures (first %d): %s\n", len(joinErrs), strings.Join(joinErrs, "; "))
	}
	fmt.Fprintf(out, "  layers at the end (layer_changed): %s; TWCC feedback packets from the receivers: %d\n", countsString(layers), feedbackSent.Load())
	secs := o.duration.Seconds()
	fmt.Fprintf(out, "  publisher sent: video %d packets (%.0f/s over 3 layers), audio %d (%.1f/s), %d keyframes\n", v1-v0, float64(v1-v0)/secs, a1-a0, float64(a1-a0)/secs, k1-k0)
	// Packets 65,536 apart in a stream would share a record; the video's
	// count over its three layers bounds each layer's.
	if v1-v0 < 1<<16 && a1-a0 < 1<<16 {
		totals.spread = spread
	} else {
		fmt.Fprintln(out, "  (each packet's first and last copy not reported: 65,536 or more video or audio packets measured)")
	}
	totals.report(out, connected, o.duration)
	w := publisher.writeTimes()
	fmt.Fprintf(out, "  the publisher's own writes (pion's WriteRTP, through SRTP to the socket), %d: p50 %s  p99 %s  max %s\n", w.n,
		roundDelay(w.quantile(0.5)), roundDelay(w.quantile(0.99)), roundDelay(w.quantile(1)))
	fmt.Fprintf(out, "  CPU: %s\n", &cpu)
	mbits := float64(totals.bytes) * 8 / 1e6 / secs
	result := fanoutResult{expected: totals.expected, lost: totals.expected - min(totals.received, totals.expected),
		p99: totals.forward.quantile(0.99), participants: cpu.selfPct}
	fmt.Fprintf(out, "  forwarded %.1f Mbit/s of RTP (%.2f per subscriber)", mbits, mbits/float64(max(connected, 1)))
	if srv.pid != 0 && mbits > 0 {
		result.perMbit, result.switches = cpu.lkPct/mbits, cpu.lkSwitchRate
		fmt.Fprintf(out, ": lookout %.3f%% of one core per forwarded Mbit/s", result.perMbit)
	}
	fmt.Fprintf(out, "; lookout's memory per subscriber, from idle to the end: RSS %.2f MiB, heap in use %.2f MiB\n",
		float64(end.rssKiB-idle.rssKiB)/1024/float64(n), (float64(end.heap)-float64(idle.heap))/(1<<20)/float64(n))
	fmt.Fprintf(out, "  lookout: idle %s; all joined %s; end %s\n", idle, start, end)
	if srv.pid != 0 {
		fmt.Fprintf(out, "  bench:   idle %s; all joined %s; end %s\n", benchIdle, benchStart, benchEnd)
	}
	if perr != nil {
		return result, fmt.Errorf("profile: %w", perr)
	}
	if connected < n {
		return result, fmt.Errorf("%d of %d subscribers received no media", n-connected, n)
	}
	return result, nil
}

func pacingString(f float64) string {
	if f == 0 {
		return "each frame's packets at once"
	}
	return fmt.Sprintf("paced at %gx", f)
}

func countsString(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	order := map[string]int{"high": 0, "medium": 1, "low": 2}
	sort.Slice(keys, func(i, j int) bool {
		oi, ok := order[keys[i]]
		if !ok {
			oi = 9
		}
		oj, ok := order[keys[j]]
		if !ok {
			oj = 9
		}
		return oi < oj || oi == oj && keys[i] < keys[j]
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// intakeText says how the receivers decrypt: on their sockets' readers,
// with how many connections' intakes started and how many packets they
// took so far, or through pion's path.
func intakeText(on bool, clients []*meetClient) string {
	if !on {
		return "the receivers decrypting through pion's path (--intake=false)"
	}
	started, taken := 0, uint64(0)
	for _, c := range clients {
		if c == nil {
			continue
		}
		c.mu.Lock()
		conn := c.subConn
		c.mu.Unlock()
		if conn != nil && conn.intakeOn.Load() {
			started++
			taken += conn.intake.Taken()
		}
	}
	return fmt.Sprintf("the receivers decrypting on their sockets' readers (the default, --intake): %d connections, %d packets so far", started, taken)
}

// meetingRooms is the many-rooms run with memory sampled.
func meetingRooms(srv *meetServer, o meetOpts, out io.Writer) error {
	total := o.rooms * o.perRoom
	identity := func(i int) string { return fmt.Sprintf("r%02d-p%02d", i/o.perRoom, i%o.perRoom) }
	room := func(i int) string { return fmt.Sprintf("room-%02d", i/o.perRoom) }
	for r := range o.rooms {
		if err := srv.api.post("/api/v1/rooms", map[string]any{"id": room(r * o.perRoom), "name": "bench", "org_id": "cn", "max_participants": o.perRoom}); err != nil {
			return err
		}
	}
	tokens := make([]string, total)
	for i := range total {
		var err error
		if tokens[i], err = srv.token(room(i), identity(i), "participant"); err != nil {
			return err
		}
	}
	idle, benchIdle := srv.sample(), selfSample()
	var phase atomic.Int32
	publishers := make([]*benchPublisher, total)
	clients, errs := joinAll(srv, total, &phase, o.intake, identity, tokens, func(i int, c *meetClient) error {
		// Each speaks at its own level, so the speakers list is steady.
		p, err := c.publish([]int{300_000}, byte(20+i%o.perRoom*10), o.pacing)
		publishers[i] = p
		return err
	})
	defer closeAll(clients)
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	// Everyone hears everyone; the videos may come later, as the
	// allocator lets them (see below).
	connected := waitMedia(clients, 0, o.perRoom-1, 30*time.Second)
	time.Sleep(o.warmup)

	fmt.Fprintf(out, "meeting rooms: %d rooms of %d, each participant publishing VP8 300 kbit/s (%d frames/s, no simulcast, %s) and Opus-sized audio and receiving the other %d; %d participants, %d tracks forwarded\n",
		o.rooms, o.perRoom, frameRate, pacingString(o.pacing), o.perRoom-1, total, total*(o.perRoom-1)*2)
	where := "lookout in its own process, the participants in the bench's"
	if srv.pid == 0 {
		where = "lookout and the participants in one process"
	}
	if o.slice > 0 {
		where += fmt.Sprintf("; lookout's threads at a scheduler slice of %s", o.slice)
	}
	fmt.Fprintf(out, "  %s; hearing everyone: %d of %d; %s warm-up, then measured for %s, sampled every %s\n", where, connected, total, o.warmup, o.duration, o.sample)
	fmt.Fprintf(out, "  %s\n", intakeText(o.intake, clients))
	fmt.Fprintf(out, "  idle before the joins: lookout %s; bench %s\n", idle, benchIdle)

	var cpu cpuMeter
	cpu.srv = srv
	stopProfiles := profiles(o, o.duration)
	phase.Store(phaseMeasure)
	cpu.start()
	began := time.Now()
	var samples []procSample
	take := func() {
		s, b := srv.sample(), selfSample()
		s.at = time.Since(began)
		samples = append(samples, s)
		if srv.pid == 0 {
			fmt.Fprintf(out, "  t=%-5s %s\n", s.at.Round(time.Second), s)
			return
		}
		fmt.Fprintf(out, "  t=%-5s lookout %s | bench %s\n", s.at.Round(time.Second), s, b)
	}
	take()
	tick := time.NewTicker(o.sample)
	stopAt := time.After(o.duration)
loop:
	for {
		select {
		case <-tick.C:
			if time.Since(began) < o.duration-o.sample/2 {
				take()
			}
		case <-stopAt:
			break loop
		}
	}
	tick.Stop()
	phase.Store(phaseDone)
	cpu.stop()
	perr := stopProfiles()
	take()

	totals := collect(clients)
	var video uint64
	for _, p := range publishers {
		if p != nil {
			video += p.videoPackets.Load()
		}
	}
	paused := 0
	for _, c := range clients {
		if c == nil {
			continue
		}
		c.mu.Lock()
		for _, l := range c.layers {
			if l == "paused" {
				paused++
			}
		}
		c.mu.Unlock()
	}
	fmt.Fprintf(out, "  videos flowing while measured: %d of %d; paused by the allocator at the end (layer_changed): %d\n",
		totals.videoFlowing, total*(o.perRoom-1), paused)
	totals.report(out, connected, o.duration)
	fmt.Fprintf(out, "  CPU: %s\n", &cpu)
	rss := func(s procSample) float64 { return float64(s.rssKiB) / 1024 }
	heap := func(s procSample) float64 { return float64(s.heap) / (1 << 20) }
	gor := func(s procSample) float64 { return float64(s.goroutines) }
	for _, m := range []struct {
		name, unit string
		f          func(procSample) float64
	}{{"RSS", " MiB", rss}, {"heap in use", " MiB", heap}, {"goroutines", "", gor}} {
		top := 0.0
		for _, s := range samples {
			top = max(top, m.f(s))
		}
		// The slope after the first minute too: pion's retransmission
		// buffers fill in the first seconds of each stream.
		var later []procSample
		for _, s := range samples {
			if s.at >= time.Minute-time.Second {
				later = append(later, s)
			}
		}
		after := ""
		if len(later) >= 3 {
			after = fmt.Sprintf(" (after the first minute %+.2f%s)", slope(later, m.f), m.unit)
		}
		fmt.Fprintf(out, "  lookout %s: first %.1f%s, last %.1f%s, max %.1f%s, slope %+.2f%s per minute%s\n", m.name, m.f(samples[0]), m.unit,
			m.f(samples[len(samples)-1]), m.unit, top, m.unit, slope(samples, m.f), m.unit, after)
	}
	if perr != nil {
		return fmt.Errorf("profile: %w", perr)
	}
	if connected < total {
		return fmt.Errorf("%d of %d participants did not hear everyone", total-connected, total)
	}
	return nil
}

// slope is the least-squares slope of f over the samples, per minute.
func slope(samples []procSample, f func(procSample) float64) float64 {
	if len(samples) < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for _, s := range samples {
		x, y := s.at.Minutes(), f(s)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	n := float64(len(samples))
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// yieldToServer lowers this process's CPU priority to nice n: every thread
// of it, since Linux keeps a nice value per thread (threads made later
// take their maker's). lookout, started before, keeps its own. On two
// cores the participants and lookout contend; with this, lookout comes
// first, as a server that does not share its machine with its 200
// clients would. The figures stay honest either way: the delays are read
// from the kernel's arrival stamps, so a participant's late read does not
// count, and a participant too slow to read shows as the machine's
// RcvbufErrors and as loss.
func yieldToServer(n int) error {
	for pass := 0; pass < 3; pass++ { // a thread made meanwhile by one not yet lowered
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		changed := false
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			// getpriority's raw value is 20 - nice.
			if prio, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid); err == nil && 20-prio == n {
				continue
			}
			if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, n); err != nil && !errors.Is(err, syscall.ESRCH) {
				return err
			}
			changed = true
		}
		if !changed {
			return nil
		}
	}
	return nil
}
