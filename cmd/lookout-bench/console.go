package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

// consoleBench measures the console (issue 8's figures): the front end's
// bundle, gzipped, what the first page loads and everything; then, with
// lookout pulling N cameras (a 720p25 main stream and a 640x360 sub stream
// each, H.264 clips that ffmpeg publishes copied into the bench's RTSP
// server), headless Chromium through tests/browser/console_bench.mjs: the
// first contentful paint of the console, a 16-tile wall on the sub streams
// (frames decoded per second per tile, dropped frames, and whether frames
// pile up: frames waiting to decode and the jitter buffer's delay at the
// start and end of the window), and switching a tile to another camera.
func consoleBench(argv []string, out io.Writer) error {
	fs := flag.NewFlagSet("console", flag.ContinueOnError)
	binary := fs.String("binary", "bin/lookout", "the lookout binary (with the front end built in: make build)")
	dist := fs.String("dist", "console/web/dist", "the front end's build, for its sizes")
	ffmpeg := fs.String("ffmpeg", "/usr/bin/ffmpeg", "the ffmpeg binary")
	node := fs.String("node", "node", "Node.js")
	scripts := fs.String("scripts", "tests/browser", "the browser scripts (npm ci done)")
	chromium := fs.String("chromium", "/usr/bin/chromium", "the browser")
	n := fs.Int("cameras", 16, "cameras, one per tile of the 16-tile wall")
	duration := fs.Duration("duration", 30*time.Second, "how long to watch the 16-tile wall")
	loads := fs.Int("loads", 10, "page loads for the first contentful paint")
	switches := fs.Int("switches", 20, "tile switches")
	shot := fs.String("screenshot", "", "where to write a screenshot of the 16-tile wall (PNG)")
	switchLayout := fs.String("switch-layout", "16", "the wall's layout for the switches (1, 4, 9, 16, 1+5): the tile switched is tile 0")
	if err := fs.Parse(argv); err != nil {
		return err
	}
	if *n < 2 || *n > 16 || *duration > 10*time.Minute || *loads < 1 || *loads > 100 || *switches > 200 {
		return errors.New("--cameras 2-16, --duration at most 10m, --loads 1-100, --switches at most 200")
	}

	if err := bundleSizes(*dist, out); err != nil {
		return err
	}

	dir, err := os.MkdirTemp("", "lookout-bench-console")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	clips := map[string]string{"main": "1280x720", "sub": "640x360"}
	for name, size := range clips {
		if err := encodeClip(*ffmpeg, size, "", filepath.Join(dir, name+".mp4")); err != nil {
			return err
		}
	}
	relay, err := startRelay()
	if err != nil {
		return err
	}
	defer relay.close()
	var pubs rtspPublishers
	defer pubs.stop()
	for i := range *n {
		for name := range clips {
			if err := pubs.start(*ffmpeg, filepath.Join(dir, name+".mp4"), relay.url(fmt.Sprintf("cam%d-%s", i, name))); err != nil {
				return err
			}
		}
	}

	lk, api, root, err := startBenchLookout(*binary, dir)
	if err != nil {
		return err
	}
	defer func() { _ = lk.Process.Signal(syscall.SIGTERM); _ = lk.Wait() }()
	var cams []string
	for i := range *n {
		id := fmt.Sprintf("cam%d", i)
		cams = append(cams, id)
		if err := api.post("/api/v1/cameras", map[string]any{"id": id, "name": fmt.Sprintf("测试 %d", i+1), "site_id": "bench",
			"url": relay.url(id + "-main"), "sub_url": relay.url(id + "-sub"), "lat": 27, "lon": 102}); err != nil {
			return err
		}
	}
	if err := api.post("/api/v1/walls", map[string]any{"id": "bench", "name": "bench", "org_id": root, "layout": "16"}); err != nil {
		return err
	}
	for i := range 16 {
		if err := api.do("PUT", fmt.Sprintf("/api/v1/walls/bench/tiles/%d", i), map[string]any{"source": map[string]any{"kind": "camera", "id": cams[i%len(cams)]}}, nil); err != nil {
			return err
		}
	}
	for _, id := range cams {
		if err := api.waitLive(id, true); err != nil {
			return err
		}
	}

	dirScripts, err := filepath.Abs(*scripts)
	if err != nil {
		return err
	}
	cmd := exec.Command(*node, filepath.Join(dirScripts, "console_bench.mjs"))
	cmd.Dir = dirScripts
	cmd.Env = append(os.Environ(), "LOOKOUT_BASE="+api.base, "LOOKOUT_USER=admin", "LOOKOUT_PASSWORD=bench-admin-password",
		"LOOKOUT_WALL=bench", "LOOKOUT_SWITCH_CAMERAS="+strings.Join(cams[1:], ","), fmt.Sprintf("LOOKOUT_LOADS=%d", *loads),
		fmt.Sprintf("LOOKOUT_DURATION_S=%d", int(duration.Seconds())), fmt.Sprintf("LOOKOUT_SWITCHES=%d", *switches), "LOOKOUT_SWITCH_LAYOUT="+*switchLayout,
		"LOOKOUT_CHROMIUM="+*chromium, "LOOKOUT_SHOT="+*shot, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cpu0, _ := cpuTicks(lk.Process.Pid)
	busy0, total0 := machineTicks()
	began := time.Now()
	runErr := cmd.Run()
	elapsed := time.Since(began)
	cpu1, _ := cpuTicks(lk.Process.Pid)
	busy1, total1 := machineTicks()
	var res struct {
		OK      bool      `json:"ok"`
		Error   string    `json:"error"`
		FCP     []float64 `json:"fcp_ms"`
		WindowS float64   `json:"window_s"`
		Tiles   []struct {
			Camera        string   `json:"camera"`
			State         string   `json:"state"`
			Size          string   `json:"size"`
			FPS           float64  `json:"fps"`
			Dropped       int      `json:"dropped"`
			BacklogStart  int      `json:"backlog_start"`
			BacklogEnd    int      `json:"backlog_end"`
			BufferMSStart *float64 `json:"buffer_ms_start"`
			BufferMSEnd   *float64 `json:"buffer_ms_end"`
		} `json:"tiles"`
		PageLag struct {
			FetchP50 float64 `json:"fetch_p50_ms"`
			FetchMax float64 `json:"fetch_max_ms"`
			TimerP50 float64 `json:"timer_p50_ms"`
			TimerMax float64 `json:"timer_max_ms"`
		} `json:"page_lag"`
		Switches   []float64 `json:"switches_ms"`
		FirstFrame []float64 `json:"switch_first_frame_ms"`
		SwitchAPI  []float64 `json:"switch_api_ms"`
		SwitchSeen []float64 `json:"switch_seen_ms"`
	}
	line := strings.TrimSpace(stdout.String())
	if i := strings.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	if os.Getenv("LOOKOUT_BENCH_VERBOSE") != "" {
		fmt.Fprintln(out, line)
	}
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		return fmt.Errorf("console_bench.mjs (%v): %v\n%s\n%s", runErr, err, stdout.String(), stderr.String())
	}
	if !res.OK {
		return fmt.Errorf("console_bench.mjs: %s", res.Error)
	}
	q := func(v []float64, p float64) float64 {
		s := slices.Clone(v)
		slices.Sort(s)
		if len(s) == 0 {
			return 0
		}
		return s[min(len(s)-1, int(float64(len(s))*p))]
	}
	fmt.Fprintf(out, "first contentful paint of the console over loopback, %d fresh loads: p50 %.0f ms  max %.0f ms\n", len(res.FCP), q(res.FCP, 0.5), q(res.FCP, 1))
	var fps, bufStart, bufEnd []float64
	dropped, backlogStart, backlogEnd, live := 0, 0, 0, 0
	sizes := map[string]int{}
	for _, t := range res.Tiles {
		fps = append(fps, t.FPS)
		dropped += t.Dropped
		backlogStart += t.BacklogStart
		backlogEnd += t.BacklogEnd
		sizes[t.Size]++
		if t.State == "live" {
			live++
		}
		if t.BufferMSStart != nil && t.BufferMSEnd != nil {
			bufStart = append(bufStart, *t.BufferMSStart)
			bufEnd = append(bufEnd, *t.BufferMSEnd)
		}
	}
	fmt.Fprintf(out, "16-tile wall (the big-screen view, 1920x1080) on %d cameras' sub streams, %.0f s: %d/16 live, sizes %v\n", *n, res.WindowS, live, sizes)
	fmt.Fprintf(out, "  decoded frames per second per tile (source 25): min %.1f  p50 %.1f  max %.1f; dropped %d in all\n", q(fps, 0), q(fps, 0.5), q(fps, 1), dropped)
	fmt.Fprintf(out, "  frames waiting to decode, all tiles: %d at the start, %d at the end; jitter buffer delay per tile, p50 start %.0f ms -> end %.0f ms, max end %.0f ms\n",
		backlogStart, backlogEnd, q(bufStart, 0.5), q(bufEnd, 0.5), q(bufEnd, 1))
	fmt.Fprintf(out, "  the page with 16 tiles playing: a request the server answers at once takes p50 %.0f ms (max %.0f); a zero timeout fires after p50 %.0f ms (max %.0f)\n",
		res.PageLag.FetchP50, res.PageLag.FetchMax, res.PageLag.TimerP50, res.PageLag.TimerMax)
	fmt.Fprintf(out, "tile switch on layout %s (tile 0), %d switches, the walls API call to the new camera's first frame shown: p50 %.0f ms  p99 %.0f ms  max %.0f ms\n",
		*switchLayout, len(res.Switches), q(res.Switches, 0.5), q(res.Switches, 0.99), q(res.Switches, 1))
	fmt.Fprintf(out, "  the same as the page's script saw it (later when its main thread is busy): p50 %.0f ms  p99 %.0f ms  max %.0f ms\n",
		q(res.SwitchSeen, 0.5), q(res.SwitchSeen, 0.99), q(res.SwitchSeen, 1))
	fmt.Fprintf(out, "  the player's part, source change to first frame: p50 %.0f ms  max %.0f ms; of it the session's switch call: p50 %.0f ms  max %.0f ms\n",
		q(res.FirstFrame, 0.5), q(res.FirstFrame, 1), q(res.SwitchAPI, 0.5), q(res.SwitchAPI, 1))
	if sum, count, err := api.seriesSumCount(`lookout_http_request_duration_seconds`, `method="POST",route="/api/v1/whep/sessions/:id/camera"`); err == nil && count > 0 {
		fmt.Fprintf(out, "  the server's part of the switch call (its request histogram): mean %.1f ms over %.0f calls\n", 1000*sum/count, count)
	}
	if total1 > total0 {
		fmt.Fprintf(out, "CPU during the browser run (%s): the machine %.0f%% of its cores busy; lookout %.0f%% of one core\n",
			elapsed.Round(time.Second), 100*float64(busy1-busy0)/float64(total1-total0), 100*float64(cpu1-cpu0)/float64(clockTicks())/elapsed.Seconds())
	}
	return nil
}

// bundleSizes prints the front end's size, gzipped: what the first page
// loads (index.html and what it links), and every script and style.
func bundleSizes(dist string, out io.Writer) error {
	index, err := os.ReadFile(filepath.Join(dist, "index.html"))
	if err != nil {
		return fmt.Errorf("the front end is not built (make web): %v", err)
	}
	gz := func(b []byte) int {
		var buf bytes.Buffer
		w, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
		_, _ = w.Write(b)
		_ = w.Close()
		return buf.Len()
	}
	first := gz(index)
	for _, m := range regexp.MustCompile(`(?:src|href)="/(assets/[^"]+)"`).FindAllStringSubmatch(string(index), -1) {
		b, err := os.ReadFile(filepath.Join(dist, m[1]))
		if err != nil {
			return err
		}
		first += gz(b)
	}
	all := gz(index)
	var biggest []string
	err = filepath.WalkDir(filepath.Join(dist, "assets"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".js") || strings.HasSuffix(path, ".css")) {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		size := gz(b)
		all += size
		if size > 50<<10 {
			biggest = append(biggest, fmt.Sprintf("%s %.0f KiB", filepath.Base(path), float64(size)/1024))
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(biggest)
	fmt.Fprintf(out, "front-end bundle, gzipped: the first page loads %.0f KiB; every script and style %.0f KiB (loaded on demand: %s)\n",
		float64(first)/1024, float64(all)/1024, strings.Join(biggest, ", "))
	return nil
}

// machineTicks reads the machine's busy and total CPU time from /proc/stat.
func machineTicks() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i, s := range f[1:] {
		var v int64
		fmt.Sscan(s, &v)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}

// seriesSumCount reads a histogram's _sum and _count for one label set
// from /metrics.
func (a *apiClient) seriesSumCount(name, labels string) (sum, count float64, err error) {
	resp, err := a.http.Get(a.base + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		for suffix, dst := range map[string]*float64{"_sum": &sum, "_count": &count} {
			if rest, ok := strings.CutPrefix(line, name+suffix+"{"+labels+"} "); ok {
				fmt.Sscan(rest, dst)
			}
		}
	}
	return sum, count, nil
}
