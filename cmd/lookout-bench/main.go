// Command lookout-bench measures Lookout from outside, as an operator would
// see it. Each subcommand is one measurement; docs/BENCHMARKS.md records the
// figures and the command lines that reproduce them.
//
//	lookout-bench startup [--binary bin/lookout] [--runs 10] [--settle 5s]
//	lookout-bench ingest  [--qos 0] [--rate 30000] [--duration 60s] [--store embedded|influxdb]
//	lookout-bench commands [--devices 1000] [--concurrency 100]
//	lookout-bench meeting [--subscribers 200] [--duration 30s] [--warmup 10s]
//	lookout-bench meeting --rooms 10 --per-room 6 [--duration 5m] [--sample 10s]
//	lookout-bench hearings [--hearings 20] [--duration 60s]
//
// startup starts the server on the embedded default (demo on) with a fresh
// data directory (first start) and again on the same directory (restart),
// timing each from exec to the first 200 from /healthz, then reads the
// resident memory after the server has been idle for --settle.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: lookout-bench startup|ingest|commands|alerts|cameras|meeting|console|hearings [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "startup":
		err = startup(os.Args[2:], os.Stdout)
	case "ingest":
		err = ingest(os.Args[2:], os.Stdout)
	case "commands":
		err = commands(os.Args[2:], os.Stdout)
	case "alerts":
		err = alerts(os.Args[2:], os.Stdout)
	case "cameras":
		err = cameras(os.Args[2:], os.Stdout)
	case "meeting":
		err = meeting(os.Args[2:], os.Stdout)
	case "console":
		err = consoleBench(os.Args[2:], os.Stdout)
	case "hearings":
		err = hearingsBench(os.Args[2:], os.Stdout)
	default:
		err = fmt.Errorf("unknown benchmark %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "lookout-bench: %v\n", err)
		os.Exit(1)
	}
}

func startup(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("startup", flag.ContinueOnError)
	binary := fs.String("binary", "bin/lookout", "the lookout binary to start")
	config := fs.String("config", "configs/lookout.yaml", "configuration file")
	runs := fs.Int("runs", 10, "how many starts of each kind")
	settle := fs.Duration("settle", 5*time.Second, "idle time before reading resident memory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *runs < 1 || *runs > 100 {
		return errors.New("--runs must be 1-100")
	}
	var first, restart []time.Duration
	var rss []int64
	for i := 0; i < *runs; i++ {
		dir, err := os.MkdirTemp("", "lookout-bench")
		if err != nil {
			return err
		}
		took, _, err := startOnce(*binary, *config, dir, 0)
		if err != nil {
			os.RemoveAll(dir)
			return fmt.Errorf("first start: %w", err)
		}
		first = append(first, took)
		settleFor := time.Duration(0)
		if i == 0 {
			settleFor = *settle
		}
		took, kb, err := startOnce(*binary, *config, dir, settleFor)
		os.RemoveAll(dir)
		if err != nil {
			return fmt.Errorf("restart: %w", err)
		}
		restart = append(restart, took)
		if kb > 0 {
			rss = append(rss, kb)
		}
	}
	fmt.Fprintf(out, "startup to /healthz 200, %d runs each (embedded default, demo on)\n", *runs)
	fmt.Fprintf(out, "  first start (new data dir): median %s  max %s\n", median(first), maxOf(first))
	fmt.Fprintf(out, "  restart (existing data):    median %s  max %s\n", median(restart), maxOf(restart))
	fmt.Fprintf(out, "idle resident memory after %s: %.1f MiB\n", *settle, float64(rss[0])/1024)
	return nil
}

// startOnce starts the server, waits for /healthz 200, optionally waits and
// reads VmRSS (KiB), and stops it with SIGTERM.
func startOnce(binary, config, dataDir string, settle time.Duration) (time.Duration, int64, error) {
	httpAddr, err := freeAddr()
	if err != nil {
		return 0, 0, err
	}
	mqttAddr, err := freeAddr()
	if err != nil {
		return 0, 0, err
	}
	cmd := exec.Command(binary, "serve", "--config", config)
	cmd.Env = append(os.Environ(), "LOOKOUT_WEBRTC_ADDR=127.0.0.1:0", "LOOKOUT_TURN_ADDR=127.0.0.1:0", "LOOKOUT_DATA_DIR="+filepath.Join(dataDir, "data"), "LOOKOUT_HTTP_ADDR="+httpAddr,
		"LOOKOUT_MQTT_ADDR="+mqttAddr, "LOOKOUT_ADMIN_PASSWORD=bench-admin-password", "LOOKOUT_DEMO=1")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/healthz", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if ctx.Err() != nil {
			return 0, 0, errors.New("no /healthz 200 within 20 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
	took := time.Since(began)
	if settle == 0 {
		return took, 0, nil
	}
	time.Sleep(settle)
	kb, err := residentKiB(cmd.Process.Pid)
	return took, kb, err
}

func residentKiB(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2].Round(time.Millisecond)
}

func maxOf(d []time.Duration) time.Duration {
	m := d[0]
	for _, x := range d {
		m = max(m, x)
	}
	return m.Round(time.Millisecond)
}
