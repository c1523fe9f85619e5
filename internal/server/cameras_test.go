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

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/webrtc/v4"

	"github.com/pion/rtp"

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
	// Another operator of the same county may not end someone's session.
	mustPost(t, base, tok, "/api/v1/users", map[string]any{"id": "op2", "org_id": "qj", "role": "operator", "password": "operator-two-pw"}, 201)
	_, login := getJSON(t, "POST", base+"/api/v1/auth/login", "", map[string]string{"username": "op2", "password": "operator-two-pw"})
	if st, b := getJSON(t, "DELETE", base+loc, login["token"].(string), nil); st != 403 {
		t.Fatalf("another user's hang up: %d %v", st, b)
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

// spsWidth returns the picture width of the SPS in a STAP-A payload, or 0.
func spsWidth(payload []byte) int {
	if len(payload) < 3 || payload[0]&0x1f != 24 {
		return 0
	}
	for rest := payload[1:]; len(rest) > 2; {
		n := int(rest[0])<<8 | int(rest[1])
		if n == 0 || len(rest) < 2+n {
			return 0
		}
		nalu := rest[2 : 2+n]
		if nalu[0]&0x1f == 7 {
			var sps h264.SPS
			if sps.Unmarshal(nalu) == nil {
				return sps.Width()
			}
		}
		rest = rest[2+n:]
	}
	return 0
}

// A wall tile plays a camera's sub stream; made large, it switches to the
// main stream without a new offer: the browser sees one stream, its
// sequence numbers running on, the new picture from a cached keyframe.
func TestWHEPSwitchesStreamsWithoutANewOffer(t *testing.T) {
	mainCam := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{Path: "main", Size: "640x360"})
	subCam := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{Path: "sub", Size: "320x180"})
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	tok, _ := provision(t, base)
	mustPost(t, base, tok, "/api/v1/cameras", map[string]any{"id": "cam-gate", "name": "闸口", "site_id": "bht", "url": mainCam.URL, "sub_url": subCam.URL, "lat": 27.2, "lon": 102.9}, 201)
	waitFor(t, 15*time.Second, func() bool {
		_, c := getJSON(t, "GET", base+"/api/v1/cameras/cam-gate", tok, nil)
		st, _ := c["stream"].(map[string]any)
		sub, _ := st["sub"].(map[string]any)
		if st == nil || sub == nil {
			return false
		}
		return st["source"].(map[string]any)["keyframes"].(float64) >= 1 && sub["source"].(map[string]any)["keyframes"].(float64) >= 1
	})
	v := testpeers.NewViewer(t)
	loc, header := whepSession(t, base, tok, "/api/v1/whep/cameras/cam-gate?stream=sub", v)
	if header.Get("X-Lookout-Stream") != "sub" || !strings.Contains(header.Get("Link"), loc+"/layer") {
		t.Fatalf("offer: %v", header)
	}
	widthSeen := func(w int) func() bool { return func() bool { return widthSeenBy(v, w) } }
	waitFor(t, 10*time.Second, widthSeen(320))

	if st, b := getJSON(t, "POST", base+loc+"/layer", tok, map[string]any{"encodingId": "huge"}); st != 422 {
		t.Fatalf("bad layer: %d %v", st, b)
	}
	if st, b := getJSON(t, "POST", base+"/api/v1/whep/sessions/nope/layer", tok, map[string]any{"encodingId": "main"}); st != 404 {
		t.Fatalf("unknown session: %d %v", st, b)
	}
	if st, b := getJSON(t, "POST", base+loc+"/layer", tok, map[string]any{"encodingId": "main"}); st != 200 || b["stream"] != "main" {
		t.Fatalf("switch: %d %v", st, b)
	}
	waitFor(t, 10*time.Second, widthSeen(640))
	continuous(t, v.Packets())
	_, c := getJSON(t, "GET", base+"/api/v1/cameras/cam-gate", tok, nil)
	if c["stream"].(map[string]any)["viewers"].(float64) != 1 {
		t.Fatalf("viewers after the switch: %v", c["stream"])
	}
}

// A WHEP session moves to another camera without a new offer (a wall tile
// given another camera): the viewer's stream goes on with continuous
// numbering and the new camera's picture; the cameras' viewer counts
// follow; a camera of another codec, an unknown camera and a bad stream
// are refused and change nothing.
func TestWHEPSwitchesCamerasWithoutANewOffer(t *testing.T) {
	camA := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{Path: "a", Size: "640x360"})
	camB := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{Path: "b", Size: "320x180"})
	camH := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{Path: "h", Codec: "h265"})
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	tok, _ := provision(t, base)
	for id, url := range map[string]string{"cam-a": camA.URL, "cam-b": camB.URL, "cam-h": camH.URL} {
		mustPost(t, base, tok, "/api/v1/cameras", map[string]any{"id": id, "name": id, "site_id": "bht", "url": url, "lat": 27.2, "lon": 102.9}, 201)
	}
	camera := func(id string) map[string]any {
		_, c := getJSON(t, "GET", base+"/api/v1/cameras/"+id, tok, nil)
		st, _ := c["stream"].(map[string]any)
		return st
	}
	for _, id := range []string{"cam-a", "cam-b", "cam-h"} {
		waitFor(t, 15*time.Second, func() bool {
			st := camera(id)
			return st != nil && st["source"].(map[string]any)["keyframes"].(float64) >= 1
		})
	}
	v := testpeers.NewViewer(t)
	loc, _ := whepSession(t, base, tok, "/api/v1/whep/cameras/cam-a", v)
	widthSeen := func(w int) func() bool { return func() bool { return widthSeenBy(v, w) } }
	waitFor(t, 10*time.Second, widthSeen(640))
	viewers := func(id string) float64 { return camera(id)["viewers"].(float64) }

	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"another codec", map[string]any{"camera": "cam-h"}, 409, "codec_mismatch"},
		{"unknown camera", map[string]any{"camera": "cam-nope"}, 404, "camera_not_found"},
		{"no camera", map[string]any{"stream": "sub"}, 422, "invalid_field"},
		{"bad stream", map[string]any{"camera": "cam-b", "stream": "huge"}, 422, "invalid_field"},
		{"not JSON", "{", 400, ""},
	} {
		st, b := getJSON(t, "POST", base+loc+"/camera", tok, tc.body)
		e, _ := b["error"].(map[string]any)
		if st != tc.status || (tc.code != "" && e["code"] != tc.code) {
			t.Errorf("%s: %d %v, want %d %s", tc.name, st, b, tc.status, tc.code)
		}
	}
	if viewers("cam-a") != 1 || viewers("cam-h") != 0 || viewers("cam-b") != 0 {
		t.Fatalf("after the refusals: viewers a %v, h %v, b %v", viewers("cam-a"), viewers("cam-h"), viewers("cam-b"))
	}
	if st, b := getJSON(t, "POST", base+"/api/v1/whep/sessions/nope/camera", tok, map[string]any{"camera": "cam-b"}); st != 404 {
		t.Fatalf("unknown session: %d %v", st, b)
	}

	if st, b := getJSON(t, "POST", base+loc+"/camera", tok, map[string]any{"camera": "cam-b", "stream": "sub"}); st != 200 || b["camera"] != "cam-b" || b["stream"] != "main" {
		t.Fatalf("switch: %d %v", st, b)
	}
	waitFor(t, 10*time.Second, widthSeen(320))
	continuous(t, v.Packets())
	waitFor(t, 5*time.Second, func() bool { return viewers("cam-a") == 0 && viewers("cam-b") == 1 })
	// Hanging up ends the viewer of the camera it plays now.
	if st, _ := getJSON(t, "DELETE", base+loc, tok, nil); st != 204 {
		t.Fatalf("hangup: %d", st)
	}
	waitFor(t, 5*time.Second, func() bool { return viewers("cam-b") == 0 })
}

// whepSession offers v's offer at path and applies the answer; it returns
// the session's Location and the answer's header.
func whepSession(t *testing.T, base, tok, path string, v *testpeers.Viewer) (string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(v.Offer(t)))
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var answer bytes.Buffer
	answer.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("offer to %s: %d %s", path, resp.StatusCode, answer.String())
	}
	v.Answer(t, answer.String())
	return resp.Header.Get("Location"), resp.Header
}

// widthSeenBy says whether v received an SPS of a picture w pixels wide.
func widthSeenBy(v *testpeers.Viewer, w int) bool {
	for _, p := range v.Packets() {
		if spsWidth(p.Payload) == w {
			return true
		}
	}
	return false
}

// continuous fails the test unless the packets are one stream: sequence
// numbers one apart, timestamps never going back.
func continuous(t *testing.T, got []rtp.Packet) {
	t.Helper()
	for i := 1; i < len(got); i++ {
		if got[i].SequenceNumber != got[i-1].SequenceNumber+1 {
			t.Fatalf("packet %d: sequence number %d after %d", i, got[i].SequenceNumber, got[i-1].SequenceNumber)
		}
		if int32(got[i].Timestamp-got[i-1].Timestamp) < 0 {
			t.Fatalf("packet %d: the timestamp went back from %d to %d", i, got[i-1].Timestamp, got[i].Timestamp)
		}
	}
}

// An H.265 camera plays without transcoding to a viewer that offers
// H.265; one that offers only H.264 is told there is no common codec.
func TestH265CameraOverWHEP(t *testing.T) {
	cam := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{Codec: "h265"})
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	tok, _ := provision(t, base)
	mustPost(t, base, tok, "/api/v1/cameras", map[string]any{"id": "cam-265", "name": "H.265", "site_id": "bht", "url": cam.URL, "lat": 27.2, "lon": 102.9}, 201)
	waitFor(t, 15*time.Second, func() bool {
		_, c := getJSON(t, "GET", base+"/api/v1/cameras/cam-265", tok, nil)
		st, _ := c["stream"].(map[string]any)
		return st != nil && st["codec"] == "H265" && st["source"].(map[string]any)["keyframes"].(float64) >= 1
	})
	if st, _, body := whepPost(t, base, tok, "cam-265", testpeers.NewViewer(t).Offer(t)); st != 422 || !strings.Contains(body, "no_common_codec") {
		t.Fatalf("H.264-only viewer: %d %s", st, body)
	}
	v := testpeers.NewViewer(t, webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH265, ClockRate: 90000}, PayloadType: 49})
	st, _, answer := whepPost(t, base, tok, "cam-265", v.Offer(t))
	if st != 201 {
		t.Fatalf("H.265 viewer: %d %s", st, answer)
	}
	v.Answer(t, answer)
	waitFor(t, 10*time.Second, func() bool { return len(v.Packets()) > 10 })
	if first := v.Packets()[0]; first.Payload[0]>>1&0x3f != 48 { // AP: VPS, SPS, PPS
		t.Fatalf("first packet is H.265 NAL type %d, not the cached parameter sets", first.Payload[0]>>1&0x3f)
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

// A WHEP session that says which wall tile it plays is switched by the
// server when that tile gets another camera: its viewer sees the new
// camera without asking, and asking afterwards is answered "already". An
// offer naming a tile the wall does not have, or another's wall, is
// refused.
func TestWallTileSessionsFollowTheWall(t *testing.T) {
	camA := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{Path: "a", Size: "640x360"})
	camB := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{Path: "b", Size: "320x180"})
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	tok, _ := provision(t, base)
	for id, url := range map[string]string{"cam-a": camA.URL, "cam-b": camB.URL} {
		mustPost(t, base, tok, "/api/v1/cameras", map[string]any{"id": id, "name": id, "site_id": "bht", "url": url, "lat": 27.2, "lon": 102.9}, 201)
	}
	for _, id := range []string{"cam-a", "cam-b"} {
		waitFor(t, 15*time.Second, func() bool {
			_, c := getJSON(t, "GET", base+"/api/v1/cameras/"+id, tok, nil)
			st, _ := c["stream"].(map[string]any)
			return st != nil && st["source"].(map[string]any)["keyframes"].(float64) >= 1
		})
	}
	mustPost(t, base, tok, "/api/v1/walls", map[string]any{"id": "w", "name": "墙", "org_id": "qj", "layout": "4"}, 201)
	setTile := func(cam string) {
		t.Helper()
		if st, b := getJSON(t, "PUT", base+"/api/v1/walls/w/tiles/0", tok, map[string]any{"source": map[string]any{"kind": "camera", "id": cam}}); st != 200 {
			t.Fatalf("tile: %d %v", st, b)
		}
	}
	setTile("cam-a")

	for _, bad := range []struct {
		query  string
		status int
	}{{"?wall=w&tile=4", 422}, {"?wall=w&tile=x", 422}, {"?wall=nope&tile=0", 404}} {
		req, _ := http.NewRequest("POST", base+"/api/v1/whep/cameras/cam-a"+bad.query, strings.NewReader(testpeers.NewViewer(t).Offer(t)))
		req.Header.Set("Content-Type", "application/sdp")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != bad.status {
			t.Errorf("offer %s: %d, want %d", bad.query, resp.StatusCode, bad.status)
		}
	}

	v := testpeers.NewViewer(t)
	loc, _ := whepSession(t, base, tok, "/api/v1/whep/cameras/cam-a?wall=w&tile=0", v)
	waitFor(t, 10*time.Second, func() bool { return widthSeenBy(v, 640) })
	setTile("cam-b") // the server switches the session: nobody asks
	waitFor(t, 10*time.Second, func() bool { return widthSeenBy(v, 320) })
	continuous(t, v.Packets())
	if st, b := getJSON(t, "POST", base+loc+"/camera", tok, map[string]any{"camera": "cam-b"}); st != 200 || b["already"] != true {
		t.Fatalf("asking afterwards: %d %v", st, b)
	}
	camera := func(id string) float64 {
		_, c := getJSON(t, "GET", base+"/api/v1/cameras/"+id, tok, nil)
		return c["stream"].(map[string]any)["viewers"].(float64)
	}
	waitFor(t, 5*time.Second, func() bool { return camera("cam-a") == 0 && camera("cam-b") == 1 })
}
