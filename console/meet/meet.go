// Package meet is the meeting page, embedded in the binary: a participant
// joins a room at /meet/#room=ID&token=T with the join token of
// POST /api/v1/rooms/{id}/tokens (in the fragment, which browsers never
// send, so it reaches no server log), talks the signaling protocol of
// docs/signaling.md over the WebSocket /rtc/signal, and sends and receives
// audio and video over WebRTC. Plain ES modules, no build step; it loads
// nothing from elsewhere (no CDN, no web font), as command rooms are often
// on closed networks. Simplified Chinese first, with an English switch.
//
// The resident's page of a petition hearing is here too (hearing.html,
// served by HearingHandler at /h/{token}, its files under /meet/): a
// phone's page, Simplified Chinese only, that opens the hearing's link,
// checks the camera and microphone, asks for consent to the recording,
// waits in the lobby and joins the call with the same signaling client
// (docs/hearings.md).
package meet

import (
	"embed"
	"net/http"
	"strconv"
)

//go:embed index.html meet.css meet.js signal.js i18n.js favicon.svg hearing.html hearing.css hearing.js hearing_i18n.js
var files embed.FS

// ContentSecurityPolicy lets the page load only its own files, open
// WebSockets (the signaling endpoint; browsers before CSP level 3 do not
// count ws: of the same host as 'self'), and play media streams. The
// meeting page may be framed by the console's own pages (the hearing
// page holds it beside the petition), the resident's page by none
// (HearingContentSecurityPolicy).
const ContentSecurityPolicy = pagePolicy + "frame-ancestors 'self'"

// HearingContentSecurityPolicy is the resident's page's: framed by no one.
const HearingContentSecurityPolicy = pagePolicy + "frame-ancestors 'none'"

const pagePolicy = "default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob: mediastream:; " +
	"img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; form-action 'self'; "

// PermissionsPolicy lets the page, and no frame in it, use the camera, the
// microphone, screen capture and autoplay.
const PermissionsPolicy = "camera=(self), microphone=(self), display-capture=(self), autoplay=(self), geolocation=()"

// Handler serves the page's files at the root of the path it is given
// (mount it with http.StripPrefix). Every answer carries the policies
// above and asks caches to revalidate, so a new build's page is taken at
// once.
func Handler() http.Handler {
	fs := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("Permissions-Policy", PermissionsPolicy)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		fs.ServeHTTP(w, r)
	})
}

// HearingHandler serves the resident's hearing page for whatever path it
// is mounted on (GET /h/{token}): the page reads the token from its own
// location and asks the API whether it is good, so a forged or stale
// token gets the same page, which then says what to do. The link's token
// is in the path: the page is never cached (no-store) and sends no
// Referer (no-referrer), so the token leaks into no cache and no other
// site's log.
func HearingHandler() http.Handler {
	page, err := files.ReadFile("hearing.html")
	if err != nil {
		panic("meet: hearing.html is not embedded: " + err.Error())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Length", strconv.Itoa(len(page)))
		h.Set("Content-Security-Policy", HearingContentSecurityPolicy)
		h.Set("Permissions-Policy", PermissionsPolicy)
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Robots-Tag", "noindex, nofollow")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(page)
		}
	})
}
