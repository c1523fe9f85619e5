package httpapi

import (
	"net/http"
	"strings"
	"testing"
)

// The cameras' passwords: no answer and no audit entry may contain them.
const (
	camPassword    = "Hik-s3cret-main"
	camSubPassword = "Hik-s3cret-sub"
)

// cameraEnv is a console with the sites bht (巧家县) and xld (永善县), a
// county admin of 巧家县 and a 巧家县 viewer. Every answer it gets is kept,
// so a test can check that no camera password reached any of them.
type cameraEnv struct {
	*env
	prov, qj, viewer string
	seen             []string
}

func newCameraEnv(t *testing.T) *cameraEnv {
	e := &cameraEnv{env: newEnv(t)}
	e.prov = e.login("admin", adminPassword)
	e.mustStatus(e.do("POST", "/api/v1/users", e.prov, map[string]any{"id": "qj-admin", "org_id": "qj", "role": "admin", "password": "qiaojia-pass"}), 201)
	e.mustStatus(e.do("POST", "/api/v1/users", e.prov, map[string]any{"id": "qj-viewer", "org_id": "qj", "role": "viewer", "password": "qiaojia-view"}), 201)
	e.qj = e.login("qj-admin", "qiaojia-pass")
	e.viewer = e.login("qj-viewer", "qiaojia-view")
	e.mustStatus(e.do("POST", "/api/v1/sites", e.prov, map[string]any{"id": "bht", "name": "白鹤滩水库", "kind": "reservoir", "org_id": "qj", "lat": 27.2, "lon": 102.9}), 201)
	e.mustStatus(e.do("POST", "/api/v1/sites", e.prov, map[string]any{"id": "xld", "name": "溪洛渡水库", "kind": "reservoir", "org_id": "ys", "lat": 28.26, "lon": 103.65}), 201)
	return e
}

func (e *cameraEnv) call(method, path, token string, body any) response {
	e.t.Helper()
	r := e.do(method, path, token, body)
	e.seen = append(e.seen, method+" "+path+": "+r.raw)
	return r
}

// camera is a valid creation body at site.
func camera(id, site string) map[string]any {
	return map[string]any{"id": id, "name": "坝前摄像机", "site_id": site,
		"url": "rtsp://admin:" + camPassword + "@10.0.0.5:554/Streaming/Channels/101", "lat": 27.21, "lon": 102.9}
}

func TestCameraCRUD(t *testing.T) {
	e := newCameraEnv(t)
	body := camera("bht-dam", "bht")
	body["sub_url"] = "rtsp://admin:" + camSubPassword + "@10.0.0.5:554/Streaming/Channels/102"
	body["meta"] = map[string]string{"vendor": "hikvision"}

	r := e.call("POST", "/api/v1/cameras", e.qj, body)
	e.mustStatus(r, http.StatusCreated)
	if r.body["org_id"] != "qj" || r.body["name"] != "坝前摄像机" || r.body["created_at"] == nil ||
		r.body["url"] != "rtsp://admin:***@10.0.0.5:554/Streaming/Channels/101" ||
		r.body["sub_url"] != "rtsp://admin:***@10.0.0.5:554/Streaming/Channels/102" ||
		r.body["meta"].(map[string]any)["vendor"] != "hikvision" {
		t.Fatalf("created: %s", r.raw)
	}
	// The registry keeps the real URL for the puller.
	cam, err := e.devices.GetCamera(mustScope(t, e.env, "yn"), "bht-dam")
	if err != nil || !strings.Contains(cam.URL, camPassword) || !strings.Contains(cam.SubURL, camSubPassword) {
		t.Fatalf("registry: %+v %v", cam, err)
	}
	e.mustStatus(e.call("POST", "/api/v1/cameras", e.prov, camera("bht-gate", "bht")), 201)
	e.mustStatus(e.call("POST", "/api/v1/cameras", e.prov, camera("xld-dam", "xld")), 201)

	tests := []struct {
		name   string
		method string
		path   string
		token  string
		body   any
		status int
		want   []string // substrings of the answer
	}{
		{"get", "GET", "/api/v1/cameras/bht-dam", e.qj, nil, 200, []string{`"id":"bht-dam"`, `"url":"rtsp://admin:***@`}},
		{"viewer reads", "GET", "/api/v1/cameras/bht-dam", e.viewer, nil, 200, nil},
		{"county lists its own, each with its state", "GET", "/api/v1/cameras", e.qj, nil, 200, []string{`"item_count":2`, `"bht-dam"`, `"bht-gate"`, `"state":"`}},
		{"province lists all", "GET", "/api/v1/cameras", e.prov, nil, 200, []string{`"item_count":3`, `"xld-dam"`}},
		{"by site", "GET", "/api/v1/cameras?site_id=xld", e.prov, nil, 200, []string{`"item_count":1`, `"xld-dam"`}},
		{"another county's site lists nothing", "GET", "/api/v1/cameras?site_id=xld", e.qj, nil, 200, []string{`"item_count":0`}},
		{"duplicate", "POST", "/api/v1/cameras", e.prov, camera("bht-dam", "bht"), 409, []string{`"code":"camera_exists"`}},
		{"rename and move", "PATCH", "/api/v1/cameras/bht-gate", e.prov, map[string]any{"name": "溪洛渡闸门", "site_id": "xld", "lat": 28.25}, 200,
			[]string{`"org_id":"ys"`, `"site_id":"xld"`, `"lat":28.25`, `"lon":102.9`}},
		{"new url, no sub_url", "PATCH", "/api/v1/cameras/bht-dam", e.qj, map[string]any{"url": "rtsps://viewer:" + camPassword + "@cam.bht.local/live", "sub_url": ""}, 200,
			[]string{`"url":"rtsps://viewer:***@cam.bht.local/live"`}},
		{"viewer may not create", "POST", "/api/v1/cameras", e.viewer, camera("v1", "bht"), 403, nil},
		{"viewer may not change", "PATCH", "/api/v1/cameras/bht-dam", e.viewer, map[string]any{"name": "x"}, 403, nil},
		{"viewer may not delete", "DELETE", "/api/v1/cameras/bht-dam", e.viewer, nil, 403, nil},
		{"county cannot see another county's", "GET", "/api/v1/cameras/xld-dam", e.qj, nil, 403, []string{`"code":"out_of_scope"`}},
		{"county cannot change another county's", "PATCH", "/api/v1/cameras/xld-dam", e.qj, map[string]any{"name": "x"}, 403, []string{`"code":"out_of_scope"`}},
		{"county cannot delete another county's", "DELETE", "/api/v1/cameras/xld-dam", e.qj, nil, 403, []string{`"code":"out_of_scope"`}},
		{"county cannot add to another county's site", "POST", "/api/v1/cameras", e.qj, camera("qj-x", "xld"), 403, []string{`"code":"out_of_scope"`}},
		{"county cannot move a camera out", "PATCH", "/api/v1/cameras/bht-dam", e.qj, map[string]any{"site_id": "xld"}, 422, []string{`"field":"site_id"`}},
		{"unknown get", "GET", "/api/v1/cameras/nope", e.prov, nil, 404, []string{`"code":"camera_not_found"`}},
		{"unknown patch", "PATCH", "/api/v1/cameras/nope", e.prov, map[string]any{"name": "x"}, 404, []string{`"code":"camera_not_found"`}},
		{"unknown delete", "DELETE", "/api/v1/cameras/nope", e.prov, nil, 404, []string{`"code":"camera_not_found"`}},
		{"malformed json", "POST", "/api/v1/cameras", e.prov, `{"id": "c",`, 400, []string{`"code":"invalid_json"`}},
		{"malformed patch", "PATCH", "/api/v1/cameras/bht-dam", e.prov, `{"name": `, 400, []string{`"code":"invalid_json"`}},
		{"unknown field", "POST", "/api/v1/cameras", e.prov, `{"id":"c","password":"x"}`, 400, []string{`"code":"unknown_field"`, `"field":"password"`}},
		{"wrong type", "PATCH", "/api/v1/cameras/bht-dam", e.prov, `{"lat":"north"}`, 400, []string{`"code":"invalid_type"`, `"field":"lat"`}},
		{"delete", "DELETE", "/api/v1/cameras/xld-dam", e.prov, nil, 204, nil},
		{"deleted is gone", "GET", "/api/v1/cameras/xld-dam", e.prov, nil, 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call(tt.method, tt.path, tt.token, tt.body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.raw)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.raw, w) {
					t.Fatalf("answer lacks %s: %s", w, r.raw)
				}
			}
		})
	}
	if r := e.call("GET", "/api/v1/cameras/bht-dam", e.prov, nil); r.body["sub_url"] != nil || r.body["name"] != "坝前摄像机" {
		t.Fatalf("after patches: %s", r.raw)
	}

	// Every change is audited, in the camera's organisation, without a
	// password.
	audit := e.call("GET", "/api/v1/audit?action=camera.&limit=1000", e.prov, nil)
	var got []string
	for _, it := range audit.body["items"].([]any) {
		m := it.(map[string]any)
		got = append(got, m["actor"].(string)+" "+m["action"].(string)+" "+m["target"].(string)+" "+m["org_id"].(string))
	}
	want := []string{ // newest first
		"admin camera.delete xld-dam ys",
		"qj-admin camera.update bht-dam qj",
		"admin camera.update bht-gate ys",
		"admin camera.create xld-dam ys",
		"admin camera.create bht-gate qj",
		"qj-admin camera.create bht-dam qj",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(audit.raw, `"url":"rtsp://admin:***@10.0.0.5:554/Streaming/Channels/101"`) {
		t.Fatalf("audit lacks the redacted url: %s", audit.raw)
	}
	for _, raw := range e.seen {
		if strings.Contains(raw, camPassword) || strings.Contains(raw, camSubPassword) {
			t.Fatalf("a camera password reached an answer: %s", raw)
		}
	}
}

func TestCameraBadFields(t *testing.T) {
	e := newCameraEnv(t)
	e.mustStatus(e.call("POST", "/api/v1/cameras", e.prov, camera("c1", "bht")), 201)
	with := func(k string, v any) map[string]any {
		b := camera("c2", "bht")
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
		return b
	}
	tests := []struct {
		name   string
		method string
		path   string
		body   map[string]any
		field  string
	}{
		{"bad id", "POST", "/api/v1/cameras", with("id", "Cam 2"), "id"},
		{"no id", "POST", "/api/v1/cameras", with("id", nil), "id"},
		{"empty name", "POST", "/api/v1/cameras", with("name", " "), "name"},
		{"long name", "POST", "/api/v1/cameras", with("name", strings.Repeat("名", 201)), "name"},
		{"no site", "POST", "/api/v1/cameras", with("site_id", nil), "site_id"},
		{"unknown site", "POST", "/api/v1/cameras", with("site_id", "nowhere"), "site_id"},
		{"no url", "POST", "/api/v1/cameras", with("url", nil), "url"},
		{"http url", "POST", "/api/v1/cameras", with("url", "http://admin:"+camPassword+"@cam/live"), "url"},
		{"url without host", "POST", "/api/v1/cameras", with("url", "rtsp:///live"), "url"},
		{"url that does not parse", "POST", "/api/v1/cameras", with("url", "rtsp://admin:"+camPassword+"@cam:port/live"), "url"},
		{"password with a raw slash", "POST", "/api/v1/cameras", with("url", "rtsp://admin:12/"+camPassword+"@cam/live"), "url"},
		{"bad sub_url", "POST", "/api/v1/cameras", with("sub_url", "rtmp://admin:"+camSubPassword+"@cam/live"), "sub_url"},
		{"lat", "POST", "/api/v1/cameras", with("lat", 90.5), "lat"},
		{"lon", "POST", "/api/v1/cameras", with("lon", -181), "lon"},
		{"too many meta keys", "POST", "/api/v1/cameras", with("meta", func() map[string]string {
			m := map[string]string{}
			for i := range 33 {
				m[strings.Repeat("k", i+1)] = "v"
			}
			return m
		}()), "meta"},
		{"long meta value", "POST", "/api/v1/cameras", with("meta", map[string]string{"k": strings.Repeat("v", 257)}), "meta"},
		{"patch name", "PATCH", "/api/v1/cameras/c1", map[string]any{"name": ""}, "name"},
		{"patch site", "PATCH", "/api/v1/cameras/c1", map[string]any{"site_id": "nowhere"}, "site_id"},
		{"patch url", "PATCH", "/api/v1/cameras/c1", map[string]any{"url": "udp://admin:" + camPassword + "@cam"}, "url"},
		{"patch empty url", "PATCH", "/api/v1/cameras/c1", map[string]any{"url": ""}, "url"},
		{"patch sub_url", "PATCH", "/api/v1/cameras/c1", map[string]any{"sub_url": "rtsp://"}, "sub_url"},
		{"bad mode", "POST", "/api/v1/cameras", with("mode", "sometimes"), "mode"},
		{"patch mode", "PATCH", "/api/v1/cameras/c1", map[string]any{"mode": "never"}, "mode"},
		{"patch lat", "PATCH", "/api/v1/cameras/c1", map[string]any{"lat": -91}, "lat"},
		{"patch lon", "PATCH", "/api/v1/cameras/c1", map[string]any{"lon": 181}, "lon"},
		{"patch meta", "PATCH", "/api/v1/cameras/c1", map[string]any{"meta": map[string]string{strings.Repeat("k", 65): "v"}}, "meta"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call(tt.method, tt.path, e.prov, tt.body)
			if r.status != http.StatusUnprocessableEntity || r.errCode() != "invalid_field" || !strings.Contains(r.raw, `"field":"`+tt.field+`"`) {
				t.Fatalf("got %d %s, want 422 naming %s", r.status, r.raw, tt.field)
			}
		})
	}
	// Nothing was created or changed by the refused requests.
	r := e.call("GET", "/api/v1/cameras", e.prov, nil)
	if r.body["item_count"] != 1.0 || !strings.Contains(r.raw, `"lat":27.21`) || strings.Contains(r.raw, "sub_url") {
		t.Fatalf("after bad requests: %s", r.raw)
	}
	for _, raw := range e.seen {
		if strings.Contains(raw, camPassword) || strings.Contains(raw, camSubPassword) {
			t.Fatalf("a camera password reached an answer: %s", raw)
		}
	}
}

func TestSiteWithCamerasIsNotDeleted(t *testing.T) {
	e := newCameraEnv(t)
	e.mustStatus(e.call("POST", "/api/v1/cameras", e.qj, camera("c1", "bht")), 201)
	r := e.call("DELETE", "/api/v1/sites/bht", e.prov, nil)
	if r.status != http.StatusConflict || r.errCode() != "site_has_cameras" {
		t.Fatalf("delete with a camera: %d %s", r.status, r.raw)
	}
	e.mustStatus(e.call("GET", "/api/v1/sites/bht", e.prov, nil), 200)
	e.mustStatus(e.call("DELETE", "/api/v1/cameras/c1", e.qj, nil), 204)
	e.mustStatus(e.call("DELETE", "/api/v1/sites/bht", e.prov, nil), 204)
	e.mustStatus(e.call("GET", "/api/v1/sites/bht", e.prov, nil), 404)
}
