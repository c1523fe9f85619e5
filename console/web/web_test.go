package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"testing/fstest"
)

func build() fstest.MapFS {
	return fstest.MapFS{
		"index.html":             {Data: []byte("<!doctype html><div id=app></div>")},
		"assets/index-abc123.js": {Data: []byte("console.log(1)")},
		"favicon.svg":            {Data: []byte("<svg/>")},
		"geo/region.geojson":     {Data: []byte(`{"type":"FeatureCollection","features":[]}`)},
	}
}

func TestHandlerServesTheApplication(t *testing.T) {
	h, err := NewFS(build(), []string{"https://tiles.example.gov.cn/{z}/{x}/{y}.png"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path, method string
		status       int
		body         string // prefix
		cache        string
	}{
		{"/", "GET", 200, "<!doctype html>", "no-cache"},
		{"/wall", "GET", 200, "<!doctype html>", "no-cache"},
		{"/devices/gauge-1", "GET", 200, "<!doctype html>", "no-cache"},
		{"/screen/main", "HEAD", 200, "", "no-cache"},
		{"/index.html", "GET", 200, "<!doctype html>", "no-cache"},
		{"/assets/index-abc123.js", "GET", 200, "console.log", "public, max-age=31536000, immutable"},
		{"/favicon.svg", "GET", 200, "<svg", "no-cache"},
		{"/geo/region.geojson", "GET", 200, `{"type"`, "no-cache"},
		// A chunk of an older build, or any missing file, is a plain 404.
		{"/assets/index-old.js", "GET", 404, "404", ""},
		{"/missing.png", "GET", 404, "404", ""},
		{"/../../etc/passwd", "GET", 200, "<!doctype html>", "no-cache"},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(tc.method, "http://console"+"/", nil)
			req.URL.Path = tc.path
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if !strings.HasPrefix(rec.Body.String(), tc.body) {
				t.Errorf("body %q, want it to start with %q", rec.Body.String(), tc.body)
			}
			if got := rec.Header().Get("Cache-Control"); tc.cache != "" && got != tc.cache {
				t.Errorf("Cache-Control %q, want %q", got, tc.cache)
			}
			if tc.status == 200 {
				csp := rec.Header().Get("Content-Security-Policy")
				for _, want := range []string{"default-src 'self'", "script-src 'self';", "worker-src 'self' blob:", "connect-src 'self' https://tiles.example.gov.cn;", "img-src 'self' https://tiles.example.gov.cn data: blob:", "frame-src 'self'", "frame-ancestors 'none'"} {
					if !strings.Contains(csp, want) {
						t.Errorf("policy %q lacks %q", csp, want)
					}
				}
			}
		})
	}
}

func TestHandlerWithoutABuildSaysHowToGetOne(t *testing.T) {
	h, err := NewFS(fstest.MapFS{".gitkeep": {}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.Built() {
		t.Fatal("Built() with no index.html")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/wall", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "make build") {
		t.Fatalf("got %d %q, want 503 saying make build", rec.Code, rec.Body.String())
	}
}

func TestHandlerRefusesBadTileURLs(t *testing.T) {
	for _, raw := range []string{"ftp://tiles/{z}/{x}/{y}", "/tiles/{z}/{x}/{y}.png", "https:///x", "http://[::1"} {
		if _, err := NewFS(build(), []string{raw}); err == nil {
			t.Errorf("tile URL %q was taken", raw)
		}
	}
}

// TestEmbeddedBuild checks the build that make puts in the binary, when
// there is one: make test builds the front end before the Go tests.
func TestEmbeddedBuild(t *testing.T) {
	h, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Built() {
		if os.Getenv("CI") == "true" {
			t.Fatal("the front end is not built into the test binary: make test runs make web first")
		}
		t.Skip("the front end is not built (make web); the handler's behaviour is tested on a fake build above")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `<div id="app">`) || !strings.Contains(rec.Body.String(), "/assets/") {
		t.Fatalf("index: %d %q", rec.Code, rec.Body.String())
	}
}

// Text files go gzipped to a browser that takes gzip, whole and with their
// own type; others, and browsers that do not, get them as they are.
func TestHandlerGzipsTextFiles(t *testing.T) {
	big := strings.Repeat("console.log('lookout');\n", 200)
	h, err := NewFS(fstest.MapFS{
		"index.html":         {Data: []byte("<!doctype html>")},
		"assets/index-1.js":  {Data: []byte(big)},
		"assets/small-1.js":  {Data: []byte("x=1")},
		"assets/logo-1.png":  {Data: bytes.Repeat([]byte{0x89}, 4096)},
		"geo/region.geojson": {Data: []byte(strings.Repeat(`{"type":"Feature"},`, 200))},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	get := func(name, accept string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/"+name, nil)
		if accept != "" {
			req.Header.Set("Accept-Encoding", accept)
		}
		h.ServeHTTP(rec, req)
		return rec
	}
	for _, tc := range []struct {
		name, accept, encoding, ctype string
	}{
		{"assets/index-1.js", "gzip, deflate, br", "gzip", "text/javascript; charset=utf-8"},
		{"geo/region.geojson", "gzip", "gzip", "application/geo+json"},
		{"assets/index-1.js", "", "", "text/javascript; charset=utf-8"},
		{"assets/index-1.js", "gzip;q=0", "", "text/javascript; charset=utf-8"},
		{"assets/small-1.js", "gzip", "", "text/javascript; charset=utf-8"},
		{"assets/logo-1.png", "gzip", "", "image/png"},
	} {
		rec := get(tc.name, tc.accept)
		if rec.Code != 200 || rec.Header().Get("Content-Encoding") != tc.encoding || rec.Header().Get("Content-Type") != tc.ctype {
			t.Errorf("%s (%q): %d, encoding %q, type %q", tc.name, tc.accept, rec.Code, rec.Header().Get("Content-Encoding"), rec.Header().Get("Content-Type"))
			continue
		}
		body := rec.Body.Bytes()
		if tc.encoding == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if body, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		want, _ := fs.ReadFile(h.files, tc.name)
		if !bytes.Equal(body, want) {
			t.Errorf("%s (%q): the body is not the file", tc.name, tc.accept)
		}
	}
}
