package httpapi

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// The meeting page's files are served without a token (the page sends its
// join token on the signaling WebSocket), each with a policy that lets the
// page load nothing from elsewhere but open its WebSocket; /meet leads to
// /meet/.
func TestMeetPageIsServed(t *testing.T) {
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
		{"/meet/", "text/html", `<button id="join"`},
		{"/meet/signal.js", "text/javascript", "export class MeetingClient"},
		{"/meet/meet.js", "text/javascript", "from './signal.js'"},
		{"/meet/i18n.js", "text/javascript", "'tile.paused': '网络较差，已暂停视频'"},
		{"/meet/meet.css", "text/css", ".tile"},
		{"/meet/favicon.svg", "image/svg+xml", "<svg"},
	} {
		resp, body := get(tc.path)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.contentType) || !strings.Contains(body, tc.contains) {
			t.Errorf("%s: %d %q %.80q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			continue
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.HasPrefix(csp, "default-src 'self'") || !strings.Contains(csp, "connect-src 'self' ws: wss:") {
			t.Errorf("%s: Content-Security-Policy %q", tc.path, csp)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("%s: Cache-Control %q", tc.path, cc)
		}
	}
	// The page references only its own files: no scheme, no other host.
	_, page := get("/meet/")
	for _, bad := range []string{"http:", "https:", "//"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page refers to %q", bad)
		}
	}
	if resp, _ := get("/meet"); resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/meet/" {
		t.Errorf("/meet: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := get("/meet/nothing.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a file the page lacks: %d", resp.StatusCode)
	}
}
