package httpapi

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// The player page's files are served without a token, each with a policy
// that lets the page load nothing from elsewhere; /player leads to /player/.
func TestPlayerPageIsServed(t *testing.T) {
	e := newEnv(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := noRedirect.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/player/", "text/html", `<video id="video" muted autoplay playsinline>`},
		{"/player/whep.js", "text/javascript", "export async function play("},
		{"/player/player.js", "text/javascript", "from './whep.js'"},
		{"/player/player.css", "text/css", ".stage"},
		{"/player/favicon.svg", "image/svg+xml", "<svg"},
	} {
		resp, body := get(tc.path)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.contentType) || !strings.Contains(body, tc.contains) {
			t.Errorf("%s: %d %q %.80q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			continue
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self'") {
			t.Errorf("%s: Content-Security-Policy %q", tc.path, csp)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("%s: Cache-Control %q", tc.path, cc)
		}
	}
	// The page references only its own files: no scheme, no other host.
	_, page := get("/player/")
	for _, bad := range []string{"http:", "https:", "//"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page refers to %q", bad)
		}
	}
	if resp, _ := get("/player"); resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/player/" {
		t.Errorf("/player: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := get("/player/nothing.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a file the page lacks: %d", resp.StatusCode)
	}
}
