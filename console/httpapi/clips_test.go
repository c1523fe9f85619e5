package httpapi

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/ingest/cameras"
	"github.com/lookout-cc/lookout/internal/testpeers"
)

// Clips of a real camera's pre-alert buffer: who may make and see them,
// what a bad span is told, the file served with ranges, the audit entry.
func TestClips(t *testing.T) {
	cam := testpeers.StartRTSPCamera(t, testpeers.RTSPOptions{GOP: 10})
	e := newCameraEnv(t)
	body := camera("bht-dam", "bht")
	body["url"] = cam.URL
	e.mustStatus(e.call("POST", "/api/v1/cameras", e.qj, body), http.StatusCreated)
	body = camera("bht-gate", "bht")
	body["url"], body["mode"] = cam.URL, "on_demand"
	e.mustStatus(e.call("POST", "/api/v1/cameras", e.qj, body), http.StatusCreated)
	// The server feeds the hub from the registry; here the test does.
	if err := e.hub.Set(cameras.Spec{ID: "bht-dam", URL: cam.URL}); err != nil {
		t.Fatal(err)
	}
	if err := e.hub.Set(cameras.Spec{ID: "bht-gate", URL: cam.URL, Mode: cameras.OnDemand}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []map[string]any{
		{"id": "qj-op", "org_id": "qj", "role": "operator", "password": "qiaojia-op-pass"},
		{"id": "ys-admin", "org_id": "ys", "role": "admin", "password": "yongshan-pass"},
	} {
		e.mustStatus(e.call("POST", "/api/v1/users", e.prov, u), http.StatusCreated)
	}
	op, ys := e.login("qj-op", "qiaojia-op-pass"), e.login("ys-admin", "yongshan-pass")

	deadline := time.Now().Add(20 * time.Second)
	for {
		r := e.call("GET", "/api/v1/cameras/bht-dam", e.viewer, nil)
		pb, _ := r.body["stream"].(map[string]any)["prebuffer"].(map[string]any)
		from, _ := time.Parse(time.RFC3339Nano, str(pb["from"]))
		to, _ := time.Parse(time.RFC3339Nano, str(pb["to"]))
		if to.Sub(from) > 3500*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the buffer did not fill: %s", r.raw)
		}
		time.Sleep(100 * time.Millisecond)
	}

	now := time.Now()
	span := map[string]any{"from": now.Add(-3 * time.Second).UnixMilli(), "to": now.Format(time.RFC3339Nano), "note": "坝前水位上涨"}
	for _, tc := range []struct {
		name, tok, camera string
		body              any
		status            int
		code, msg         string
	}{
		{"viewer", e.viewer, "bht-dam", span, 403, "forbidden", ""},
		{"other county", ys, "bht-dam", span, 403, "out_of_scope", ""},
		{"unknown camera", op, "nope", span, 404, "camera_not_found", ""},
		{"no span", op, "bht-dam", map[string]any{}, 422, "invalid_field", `"message":"is required: Unix milliseconds or an RFC 3339 time","field":"from"`},
		{"bad time", op, "bht-dam", map[string]any{"from": "yesterday", "to": now.UnixMilli()}, 422, "invalid_field", `"message":"must be Unix milliseconds or an RFC 3339 time","field":"from"`},
		{"bad type", op, "bht-dam", map[string]any{"from": true, "to": now.UnixMilli()}, 422, "invalid_field", `"field":"from"`},
		{"unknown field", op, "bht-dam", map[string]any{"from": 1, "to": 2, "camera": "x"}, 400, "unknown_field", ""},
		{"backwards", op, "bht-dam", map[string]any{"from": now.UnixMilli(), "to": now.Add(-time.Second).UnixMilli()}, 422, "invalid_span", `"message":"must be after from","field":"to"`},
		{"before the buffer", op, "bht-dam", map[string]any{"from": now.Add(-time.Hour).UnixMilli(), "to": now.UnixMilli()}, 409, "span_not_buffered",
			"from is before the oldest frame buffered: the pre-alert buffer holds 20"},
		{"after the buffer", op, "bht-dam", map[string]any{"from": now.Add(3 * time.Second).UnixMilli(), "to": now.Add(4 * time.Second).UnixMilli()}, 409, "span_not_buffered",
			"from is after the newest frame buffered"},
		{"on demand", op, "bht-gate", span, 409, "no_prebuffer", "only cameras pulled always"},
		{"long note", op, "bht-dam", map[string]any{"from": 1, "to": 2, "note": strings.Repeat("水", 501)}, 422, "invalid_field", `"field":"note"`},
	} {
		r := e.call("POST", "/api/v1/cameras/"+tc.camera+"/clips", tc.tok, tc.body)
		if r.status != tc.status || r.errCode() != tc.code || !strings.Contains(r.raw, tc.msg) {
			t.Errorf("%s: %d %s", tc.name, r.status, r.raw)
		}
	}

	r := e.call("POST", "/api/v1/cameras/bht-dam/clips", op, span)
	e.mustStatus(r, http.StatusCreated)
	id := str(r.body["id"])
	url := "/api/v1/clips/" + id
	d := r.body["duration_ms"].(float64)
	size := int64(r.body["bytes"].(float64))
	if r.header.Get("Location") != url || r.body["url"] != url || r.body["camera_id"] != "bht-dam" || r.body["org_id"] != "qj" ||
		r.body["codec"] != "H264" || r.body["width"].(float64) != 640 || r.body["created_by"] != "qj-op" || r.body["note"] != "坝前水位上涨" ||
		d < 2900 || d > 3500 || size < 1000 {
		t.Fatalf("clip: %s", r.raw)
	}
	from, _ := time.Parse(time.RFC3339Nano, str(r.body["from"]))
	if from.After(now.Add(-3*time.Second)) || from.Before(now.Add(-3500*time.Millisecond)) {
		t.Fatalf("from %s: want the keyframe at or before %s", from, now.Add(-3*time.Second))
	}

	r = e.call("GET", "/api/v1/cameras/bht-dam/clips", e.viewer, nil)
	e.mustStatus(r, http.StatusOK)
	if items := r.body["items"].([]any); len(items) != 1 || items[0].(map[string]any)["url"] != url {
		t.Fatalf("list: %s", r.raw)
	}
	e.mustStatus(e.call("GET", "/api/v1/cameras/bht-dam/clips?limit=0", e.viewer, nil), 422)
	e.mustStatus(e.call("GET", "/api/v1/cameras/bht-dam/clips", ys, nil), 403)

	get := func(path, tok, rng string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, data := get(url, e.viewer, "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "video/mp4" || resp.Header.Get("Accept-Ranges") != "bytes" ||
		resp.Header.Get("Content-Length") != strconv.FormatInt(size, 10) || int64(len(data)) != size || string(data[4:8]) != "ftyp" ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), `inline; filename="bht-dam_`) {
		t.Fatalf("file: %d %v %q", resp.StatusCode, resp.Header, data[:8])
	}
	resp, part := get(url+".mp4", e.viewer, "bytes=100-199")
	if resp.StatusCode != 206 || resp.Header.Get("Content-Range") != "bytes 100-199/"+strconv.FormatInt(size, 10) || string(part) != string(data[100:200]) {
		t.Fatalf("range: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := get(url, ys, ""); resp.StatusCode != 403 {
		t.Fatalf("another county's admin: %d", resp.StatusCode)
	}
	for _, p := range []string{"/api/v1/clips/clp_00000000000000000000", "/api/v1/clips/..%2flookout.db"} {
		if resp, _ := get(p, e.viewer, ""); resp.StatusCode != 404 {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
	}

	r = e.call("GET", "/api/v1/audit?action=clip.create", e.prov, nil)
	items, _ := r.body["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["target"] != id || items[0].(map[string]any)["actor"] != "qj-op" || items[0].(map[string]any)["org_id"] != "qj" {
		t.Fatalf("audit: %s", r.raw)
	}
}

func str(v any) string { s, _ := v.(string); return s }
