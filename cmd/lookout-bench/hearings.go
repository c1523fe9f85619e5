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
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lookout-cc/lookout/internal/meetpeer"
	"github.com/lookout-cc/lookout/sfu/signal"
)

// hearingsBench runs N remote hearings at once on a lookout binary, each
// with an officer and a resident sending real VP8 (640x360, 600 kbit/s)
// and Opus to each other through the SFU, every hearing recorded, for
// --duration; it reports the server's CPU and memory over that time, the
// time from admission to two-way video, and, after the hearings end,
// whether every recording is complete: four files per hearing, each
// checked with ffprobe (codec and duration).
//
//	lookout-bench hearings [--binary bin/lookout] [--hearings 20] [--duration 60s]
func hearingsBench(argv []string, out io.Writer) error {
	fs := flag.NewFlagSet("hearings", flag.ContinueOnError)
	binary := fs.String("binary", "bin/lookout", "the lookout binary")
	n := fs.Int("hearings", 20, "hearings at once")
	duration := fs.Duration("duration", 60*time.Second, "how long the hearings last once all are admitted")
	if err := fs.Parse(argv); err != nil {
		return err
	}
	if *n < 1 || *n > 50 || *duration < 5*time.Second || *duration > 30*time.Minute {
		return errors.New("--hearings 1-50, --duration 5s to 30m")
	}
	dir, err := os.MkdirTemp("", "lookout-bench-hearings")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	media, err := meetpeer.MakeMedia(ctx, dir, 10)
	if err != nil {
		return err
	}
	lk, api, root, err := startBenchLookout(*binary, dir)
	if err != nil {
		return err
	}
	defer func() { _ = lk.Process.Signal(syscall.SIGTERM); _ = lk.Wait() }()
	wsURL := "ws" + strings.TrimPrefix(api.base, "http") + "/rtc/signal"

	type hearing struct {
		id                string
		officer, resident *meetpeer.Peer
		officerID         string
		twoWay            time.Duration
	}
	hs := make([]*hearing, *n)
	defer func() {
		for _, h := range hs {
			if h != nil && h.officer != nil {
				h.officer.Close()
			}
			if h != nil && h.resident != nil {
				h.resident.Close()
			}
		}
	}()
	rss0, _ := residentKiB(lk.Process.Pid)
	// Set up one after the other (as an officer's day does), then all
	// run at once.
	for i := range hs {
		h := &hearing{}
		hs[i] = h
		var pet struct{ ID string }
		if err := api.do("POST", "/api/v1/petitions", map[string]any{"org_id": root, "subject": fmt.Sprintf("安置补偿 %d", i+1), "description": "补偿款未到账。",
			"petitioner": map[string]any{"name": "张三", "phone": "13812345678", "id_number": "11010519491231002X"}}, &pet); err != nil {
			return err
		}
		var sched struct {
			Hearing struct{ ID string }
			Link    struct{ Path string }
		}
		if err := api.do("POST", "/api/v1/petitions/"+pet.ID+"/hearings", map[string]any{"starts_at": time.Now().UTC().Format(time.RFC3339)}, &sched); err != nil {
			return err
		}
		h.id = sched.Hearing.ID
		jar, _ := cookiejar.New(nil)
		phone := &http.Client{Jar: jar, Timeout: 10 * time.Second}
		var grant struct{ Token string }
		if err := linkPost(phone, api.base+"/api/v1/hearing-link/join", map[string]any{"token": strings.TrimPrefix(sched.Link.Path, "/h/"), "consent": true}, &grant); err != nil {
			return err
		}
		if h.resident, err = meetpeer.Dial(wsURL, grant.Token); err != nil {
			return err
		}
		if _, err := h.resident.Wait(10*time.Second, func(m signal.ServerMessage) bool { return m.Type == signal.TypeLobby && m.State == "waiting" }); err != nil {
			return fmt.Errorf("hearing %d: the resident does not wait: %w", i+1, err)
		}
		var host struct{ Token, Identity string }
		if err := api.do("POST", "/api/v1/hearings/"+h.id+"/host-token", nil, &host); err != nil {
			return err
		}
		h.officerID = host.Identity
		if h.officer, err = meetpeer.Dial(wsURL, host.Token); err != nil {
			return err
		}
		if _, err := h.officer.Wait(10*time.Second, meetpeer.Is(signal.TypeJoined)); err != nil {
			return fmt.Errorf("hearing %d: the officer did not join: %w", i+1, err)
		}
		if err := h.officer.Publish(media); err != nil {
			return err
		}
		admitted := time.Now()
		if err := api.post("/api/v1/hearings/"+h.id+"/admit", nil); err != nil {
			return err
		}
		if _, err := h.resident.Wait(5*time.Second, meetpeer.Is(signal.TypeJoined)); err != nil {
			return fmt.Errorf("hearing %d: not admitted: %w", i+1, err)
		}
		if err := h.resident.Publish(media); err != nil {
			return err
		}
		if err := h.resident.WaitReceived(h.officerID+"-camera", 1, 10*time.Second); err != nil {
			return fmt.Errorf("hearing %d: the resident sees no video: %w", i+1, err)
		}
		if err := h.officer.WaitReceived("resident-camera", 1, 10*time.Second); err != nil {
			return fmt.Errorf("hearing %d: the officer sees no video: %w", i+1, err)
		}
		last := h.resident.FirstPacket(h.officerID + "-camera")
		if at := h.officer.FirstPacket("resident-camera"); at.After(last) {
			last = at
		}
		h.twoWay = last.Sub(admitted)
	}

	cpu0, _ := cpuTicks(lk.Process.Pid)
	busy0, total0 := machineTicks()
	before := make([][2]int64, len(hs))
	for i, h := range hs {
		before[i] = [2]int64{h.resident.Received(h.officerID + "-camera"), h.officer.Received("resident-camera")}
	}
	began := time.Now()
	var peak int64
	for time.Since(began) < *duration {
		time.Sleep(time.Second)
		if kb, err := residentKiB(lk.Process.Pid); err == nil && kb > peak {
			peak = kb
		}
	}
	elapsed := time.Since(began)
	cpu1, _ := cpuTicks(lk.Process.Pid)
	busy1, total1 := machineTicks()
	rss1, _ := residentKiB(lk.Process.Pid)
	stalled := 0
	for i, h := range hs {
		// 25 frames a second are at least 25 packets a second: a hearing
		// whose video stalled either way shows here.
		if h.resident.Received(h.officerID+"-camera")-before[i][0] < int64(20*elapsed.Seconds()) ||
			h.officer.Received("resident-camera")-before[i][1] < int64(20*elapsed.Seconds()) {
			stalled++
		}
	}

	// End every hearing; the recordings are finished when end answers.
	var wg sync.WaitGroup
	errs := make(chan error, len(hs))
	for _, h := range hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := api.post("/api/v1/hearings/"+h.id+"/end", map[string]any{"outcome": "resolved"}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	complete, files, shortest, longest := 0, 0, time.Duration(1<<62), time.Duration(0)
	var bytesTotal int64
	for _, h := range hs {
		var got struct {
			Recordings []struct {
				ID, State, Source, Codec string
				Bytes                    int64
				DurationMS               int64 `json:"duration_ms"`
			}
		}
		if err := api.do("GET", "/api/v1/hearings/"+h.id, nil, &got); err != nil {
			return err
		}
		ok := len(got.Recordings) == 4
		for _, r := range got.Recordings {
			files++
			matches, _ := filepath.Glob(filepath.Join(dir, "data", "recordings", h.id, r.ID+"-*"))
			if r.State != "complete" || len(matches) != 1 {
				ok = false
				continue
			}
			d, codec, err := probeFile(matches[0])
			want := map[string]string{"camera": "vp8", "microphone": "opus"}[r.Source]
			if err != nil || codec != want || d < *duration || (d-time.Duration(r.DurationMS)*time.Millisecond).Abs() > time.Second {
				ok = false
			}
			shortest, longest = min(shortest, d), max(longest, d)
			bytesTotal += r.Bytes
		}
		if ok {
			complete++
		}
	}

	twoWay := make([]time.Duration, len(hs))
	slowest := 0
	for i, h := range hs {
		twoWay[i] = h.twoWay
		if h.twoWay > hs[slowest].twoWay {
			slowest = i
		}
	}
	sort.Slice(twoWay, func(i, j int) bool { return twoWay[i] < twoWay[j] })
	tck := float64(clockTicks())
	fmt.Fprintf(out, "hearings: %d at once, each an officer and a resident sending VP8 640x360 600 kbit/s and Opus both ways, recorded, for %s\n", *n, elapsed.Round(time.Second))
	fmt.Fprintf(out, "  admission to two-way video: median %s, slowest %s (hearing %d)\n", twoWay[len(twoWay)/2].Round(time.Millisecond),
		twoWay[len(twoWay)-1].Round(time.Millisecond), slowest+1)
	fmt.Fprintf(out, "  server CPU: %.1f%% of one core; the machine (load generator included) %.0f%% busy\n",
		100*float64(cpu1-cpu0)/tck/elapsed.Seconds(), 100*float64(busy1-busy0)/float64(max(total1-total0, 1)))
	fmt.Fprintf(out, "  server memory: %d MiB before the hearings, %d MiB during (peak %d MiB), %.1f MiB per hearing\n",
		rss0/1024, rss1/1024, peak/1024, float64(peak-rss0)/1024/float64(*n))
	fmt.Fprintf(out, "  video stalled in %d of %d hearings\n", stalled, *n)
	fmt.Fprintf(out, "  recordings: %d of %d hearings complete (%d files, %d MiB; durations %s to %s by ffprobe)\n",
		complete, *n, files, bytesTotal>>20, shortest.Round(100*time.Millisecond), longest.Round(100*time.Millisecond))
	if complete != *n || stalled != 0 {
		return fmt.Errorf("%d of %d hearings recorded completely, %d stalled", complete, *n, stalled)
	}
	return nil
}

// linkPost posts to the resident's link endpoints with the phone's
// cookies.
func linkPost(c *http.Client, url string, body, out any) error {
	js, _ := json.Marshal(body)
	resp, err := c.Post(url, "application/json", bytes.NewReader(js))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", url, resp.StatusCode, data)
	}
	return json.Unmarshal(data, out)
}

// probeFile is a media file's duration and its first stream's codec, by
// ffprobe.
func probeFile(path string) (time.Duration, string, error) {
	raw, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name", "-of", "json", path).Output()
	if err != nil {
		return 0, "", err
	}
	var p struct {
		Format  struct{ Duration string }
		Streams []struct {
			CodecName string `json:"codec_name"`
		}
	}
	if err := json.Unmarshal(raw, &p); err != nil || len(p.Streams) == 0 {
		return 0, "", fmt.Errorf("ffprobe %s: %v", path, err)
	}
	secs, err := strconv.ParseFloat(p.Format.Duration, 64)
	return time.Duration(secs * float64(time.Second)), p.Streams[0].CodecName, err
}
