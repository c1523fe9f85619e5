package httpapi

import (
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/lookout-cc/lookout/console/web"
)

// fakeConsole is the front end's handler over a small fake build.
func fakeConsole(t *testing.T) http.Handler {
	t.Helper()
	h, err := web.NewFS(fstest.MapFS{
		"index.html":         {Data: []byte(`<!doctype html><div id="app"></div>`)},
		"assets/index-1.js":  {Data: []byte("console.log(1)")},
		"geo/region.geojson": {Data: []byte(`{"type":"FeatureCollection","features":[]}`)},
	}, []string{"https://tiles.internal.example/{z}/{x}/{y}.png"})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// The console's pages are served on every GET path no route takes, and
// nowhere else: the API's unknown paths still answer as the API does.
func TestConsolePagesBesideTheAPI(t *testing.T) {
	e := newEnv(t)
	tok := e.login("admin", adminPassword)
	cases := []struct {
		method, path, token string
		status              int
		html                bool
		code                string
	}{
		{"GET", "/", "", 200, true, ""},
		{"GET", "/wall", "", 200, true, ""},
		{"GET", "/screen/main", "", 200, true, ""},
		{"HEAD", "/devices/gauge-1", "", 200, false, ""},
		{"GET", "/assets/index-1.js", "", 200, false, ""},
		{"GET", "/assets/index-0.js", "", 404, false, ""},
		{"GET", "/api/v1/no-such-thing", "", 401, false, "unauthenticated"},
		{"GET", "/api/v1/no-such-thing", tok, 404, false, "not_found"},
		{"GET", "/rtc/no-such-thing", "", 404, false, "not_found"},
		{"POST", "/wall", "", 404, false, "not_found"},
	}
	for _, tc := range cases {
		r := e.do(tc.method, tc.path, tc.token, nil)
		if r.status != tc.status || r.errCode() != tc.code {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, r.status, r.errCode(), tc.status, tc.code)
		}
		if tc.html != strings.Contains(r.raw, `<div id="app">`) {
			t.Errorf("%s %s: the application's page %v, want %v: %.80q", tc.method, tc.path, !tc.html, tc.html, r.raw)
		}
		if tc.html && !strings.Contains(r.header.Get("Content-Security-Policy"), "https://tiles.internal.example") {
			t.Errorf("%s %s: policy %q does not allow the tile server", tc.method, tc.path, r.header.Get("Content-Security-Policy"))
		}
	}
}

func TestConsoleConfig(t *testing.T) {
	e := newEnv(t)
	e.mustStatus(e.do("GET", "/api/v1/console/config", "", nil), http.StatusUnauthorized)
	r := e.do("GET", "/api/v1/console/config", e.login("admin", adminPassword), nil)
	e.mustStatus(r, http.StatusOK)
	m, _ := r.body["map"].(map[string]any)
	tiles, _ := m["tiles"].([]any)
	if len(tiles) != 1 || tiles[0] != "https://tiles.internal.example/{z}/{x}/{y}.png" || m["max_zoom"] != 16.0 {
		t.Fatalf("config: %s", r.raw)
	}
}
