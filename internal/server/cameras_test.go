package server

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/lookout-cc/lookout/internal/testpeers"
)

// whepPost sends an offer the way a WHEP player does.
func whepPost(t *testing.T, base, tok, camera, offer string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/api/v1/whep/cameras/"+camera, strings.NewReader(offer))
	req.Header.Set("Content-Type", "application/sdp")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), body.String()
}

// A camera made through the API is pulled (a real ffmpeg H.264 stream over
// RTSP), goes live, and plays to a WebRTC viewer over WHEP starting from
// its cached keyframe; its state changes are events; the viewer hangs up.
func TestCameraLiveOverWHEP(t *testing.T) {
	cam := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{})
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	tok, _ := provision(t, base)
	events := followEvents(t, base, tok, "?types=camera", "")
	mustPost(t, base, tok, "/api/v1/cameras", map[string]any{"id": "cam-dam", "name": "坝前", "site_id": "bht", "url": cam.URL, "lat": 27.2, "lon": 102.9}, 201)
	events.next(15*time.Second, "camera live", func(ev sseEvent) bool {
		if ev.Name != "camera" {
			return false // the stream's position messages carry no data
		}
		st, _ := ev.Data["data"].(map[string]any)["status"].(map[string]any)
		return st["state"] == "live"
	})
	waitFor(t, 10*time.Second, func() bool {
		_, c := getJSON(t, "GET", base+"/api/v1/cameras/cam-dam", tok, nil)
		st, _ := c["stream"].(map[string]any)
		src, _ := st["source"].(map[string]any)
		// Live, and a keyframe cached: a camera pulled for a while, as an
		// always-on camera is when a wall tile asks for it.
		return c["state"] == "live" && st["codec"] == "H264" && st["fps"].(float64) > 10 && src["keyframes"].(float64) >= 1
	})

	v := testpeers.NewViewer(t)
	offer := v.Offer(t)
	for _, tc := range []struct {
		name, tok, camera, offer string
		status                   int
	}{
		{"no token", "", "cam-dam", offer, 401},
		{"unknown camera", tok, "cam-nope", offer, 404},
		{"broken offer", tok, "cam-dam", "v=0\r\nthis is not SDP\r\n", 400},
		{"not an offer at all", tok, "cam-dam", "hello", 400},
	} {
		if st, _, body := whepPost(t, base, tc.tok, tc.camera, tc.offer); st != tc.status {
			t.Errorf("%s: %d %s", tc.name, st, body)
		}
	}
	var connected atomic.Int64 // Unix ns
	v.PC.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			connected.Store(time.Now().UnixNano())
		}
	})
	began := time.Now()
	st, loc, answer := whepPost(t, base, tok, "cam-dam", offer)
	t.Logf("answered after %s", time.Since(began))
	if st != 201 || !strings.HasPrefix(loc, "/api/v1/whep/sessions/") || !strings.HasPrefix(answer, "v=0") {
		t.Fatalf("whep: %d %q %.80s", st, loc, answer)
	}
	v.Answer(t, answer)
	waitFor(t, 10*time.Second, func() bool { return len(v.Packets()) > 50 })
	if first := v.Packets()[0]; first.Payload[0]&0x1f != 24 {
		t.Fatalf("the first packet is NAL type %d, not the cached keyframe's parameter sets", first.Payload[0]&0x1f)
	}
	t.Logf("first video packet %s after the offer; connected after %s", v.First().Sub(began).Round(time.Millisecond), time.Unix(0, connected.Load()).Sub(began))
	_, c := getJSON(t, "GET", base+"/api/v1/cameras/cam-dam", tok, nil)
	if c["stream"].(map[string]any)["viewers"].(float64) != 1 {
		t.Fatalf("viewers: %v", c["stream"])
	}
	if st, _ := getJSON(t, "DELETE", base+loc, tok, nil); st != 204 {
		t.Fatalf("hang up: %d", st)
	}
	waitFor(t, 5*time.Second, func() bool {
		_, c := getJSON(t, "GET", base+"/api/v1/cameras/cam-dam", tok, nil)
		return c["stream"].(map[string]any)["viewers"].(float64) == 0
	})
	if st, _ := getJSON(t, "DELETE", base+loc, tok, nil); st != 404 {
		t.Fatalf("second hang up: %d", st)
	}
}

// An always-on camera's last seconds make a clip: POST it, and the MP4 is
// listed and served (with ranges), before and after a restart.
func TestCameraClip(t *testing.T) {
	cam := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{GOP: 10})
	dataDir := t.TempDir()
	cfg := testConfig(t, dataDir)
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	base := "http://" + s.HTTPAddr()
	tok, _ := provision(t, base)
	mustPost(t, base, tok, "/api/v1/cameras", map[string]any{"id": "cam-dam", "name": "坝前", "site_id": "bht", "url": cam.URL, "lat": 27.2, "lon": 102.9}, 201)
	waitFor(t, 20*time.Second, func() bool {
		_, c := getJSON(t, "GET", base+"/api/v1/cameras/cam-dam", tok, nil)
		st, _ := c["stream"].(map[string]any)
		pb, _ := st["prebuffer"].(map[string]any)
		from, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(pb["from"]))
		to, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(pb["to"]))
		return to.Sub(from) > 3500*time.Millisecond
	})

	now := time.Now()
	st, body := getJSON(t, "POST", base+"/api/v1/cameras/cam-dam/clips", tok, map[string]any{"from": now.Add(-time.Hour).UnixMilli(), "to": now.UnixMilli()})
	if msg := fmt.Sprint(body["error"]); st != 409 || !strings.Contains(msg, "span_not_buffered") || !strings.Contains(msg, "the pre-alert buffer holds") {
		t.Fatalf("a span before the buffer: %d %v", st, body)
	}
	clip := mustPost(t, base, tok, "/api/v1/cameras/cam-dam/clips", map[string]any{"from": now.Add(-3 * time.Second).Format(time.RFC3339Nano), "to": now.UnixMilli(), "note": "test"}, 201)
	url, size := clip["url"].(string), int64(clip["bytes"].(float64))
	if d := clip["duration_ms"].(float64); d < 2900 || d > 3500 || clip["camera_id"] != "cam-dam" || clip["codec"] != "H264" {
		t.Fatalf("clip %v", clip)
	}
	fetch := func() []byte {
		t.Helper()
		req, _ := http.NewRequest("GET", base+url, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "video/mp4" || resp.Header.Get("Accept-Ranges") != "bytes" ||
			resp.Header.Get("Content-Length") != strconv.FormatInt(size, 10) || int64(len(data)) != size || string(data[4:8]) != "ftyp" {
			t.Fatalf("GET %s: %d %v %q", url, resp.StatusCode, resp.Header, data[:min(8, len(data))])
		}
		return data
	}
	data := fetch()
	onDisk, err := os.ReadFile(filepath.Join(dataDir, "clips", "cam-dam", clip["id"].(string)+".mp4"))
	if err != nil || !bytes.Equal(onDisk, data) {
		t.Fatalf("the file on disk: %v", err)
	}
	if st, audit := getJSON(t, "GET", base+"/api/v1/audit?action=clip.create", tok, nil); st != 200 || audit["item_count"].(float64) != 1 {
		t.Fatalf("audit: %d %v", st, audit)
	}

	stop(t, s)
	s = start(t, cfg, nil)
	defer stop(t, s)
	base = "http://" + s.HTTPAddr()
	st, list := getJSON(t, "GET", base+"/api/v1/cameras/cam-dam/clips", tok, nil)
	if items, _ := list["items"].([]any); st != 200 || len(items) != 1 || items[0].(map[string]any)["url"] != url {
		t.Fatalf("after a restart: %d %v", st, list)
	}
	if !bytes.Equal(fetch(), data) {
		t.Fatal("another file after a restart")
	}
}
