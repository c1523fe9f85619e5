// Package player is a minimal WHEP player page, embedded in the binary: it
// plays one camera in the browser over WHEP, with the camera and a bearer
// token taken from the URL fragment (#camera=ID&token=T) or a small form.
// It loads nothing from elsewhere. The console's real front end replaces it
// for operators; it stays as the smallest page that exercises WHEP in a
// real browser.
package player

import (
	"embed"
	"net/http"
)

//go:embed index.html player.css player.js whep.js favicon.svg
var files embed.FS

// Handler serves the page's files at the root of the path it is given (mount
// it with http.StripPrefix). Every answer carries a Content-Security-Policy
// that allows only the page's own origin, and asks caches to revalidate, so
// a new build's page is taken at once.
func Handler() http.Handler {
	fs := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		fs.ServeHTTP(w, r)
	})
}
