// Package web serves the console's front end: the Vue application that
// Vite builds into dist/ (make web), embedded in the binary. Its sources
// are beside this file (src/, package.json); see the README there.
//
// The page loads nothing from elsewhere: the Content-Security-Policy allows
// only this origin (plus blob: workers, which MapLibre starts, and the
// internal tile server when one is configured). Hashed assets under
// /assets/ are cached for a year; every other path is the application's
// index.html, revalidated on each load, so a new build is taken at once and
// links into the application (/wall, /devices/x) work on reload.
package web

import (
	"bytes"
	"compress/gzip"
	"embed"
	"errors"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
)

//go:embed all:dist
var dist embed.FS

// ErrNotBuilt is the answer of a binary built without the front end (go
// build without make): the API works, the console says how to get it.
var ErrNotBuilt = errors.New("the console front end is not built into this binary: build with `make build` (or `make web`, then go build)")

// Handler serves the console's files, the application's index.html for
// every other path, under a policy that allows the configured map tile
// servers.
type Handler struct {
	files  fs.FS
	index  []byte
	policy string
	// gz holds each text file gzipped, made at its first request: the
	// console's scripts are a third of their size so (202 KiB to 74 KiB
	// for the first page), which a command room's slow link feels.
	gz sync.Map // name -> *gzFile
}

type gzFile struct {
	once sync.Once
	data []byte // nil: not worth it, or unreadable
}

// compressible are the types worth gzipping; images and fonts are
// compressed already.
var compressible = map[string]bool{".js": true, ".css": true, ".html": true, ".svg": true, ".json": true, ".geojson": true}

// gzipped returns name gzipped, or nil when it is not worth it.
func (h *Handler) gzipped(name string) []byte {
	if !compressible[path.Ext(name)] {
		return nil
	}
	v, _ := h.gz.LoadOrStore(name, &gzFile{})
	f := v.(*gzFile)
	f.once.Do(func() {
		raw, err := fs.ReadFile(h.files, name)
		if err != nil || len(raw) < 1024 {
			return
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(raw)
		if zw.Close() == nil && buf.Len() < len(raw) {
			f.data = buf.Bytes()
		}
	})
	return f.data
}

// acceptsGzip says whether the request's Accept-Encoding takes gzip.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.TrimSpace(q) != "q=0" {
			return true
		}
	}
	return false
}

// New makes a Handler of the embedded build.
func New(tileURLs []string) (*Handler, error) {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		return nil, err
	}
	return NewFS(sub, tileURLs)
}

// NewFS makes a Handler of a build in files (for tests).
func NewFS(files fs.FS, tileURLs []string) (*Handler, error) {
	h := &Handler{files: files}
	if b, err := fs.ReadFile(files, "index.html"); err == nil {
		h.index = b
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	origins := []string{"'self'"}
	for _, raw := range tileURLs {
		u, err := url.Parse(strings.NewReplacer("{", "", "}", "").Replace(raw))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errors.New("map tile URL " + raw + " must be an http(s) URL with a host")
		}
		origins = append(origins, u.Scheme+"://"+u.Host)
	}
	self := strings.Join(origins, " ")
	// frame-src 'self': the hearing page holds the meeting page (/meet/)
	// beside the petition.
	h.policy = "default-src 'self'; script-src 'self'; worker-src 'self' blob:; child-src blob:; frame-src 'self'; " +
		"img-src " + self + " data: blob:; connect-src " + self + "; media-src 'self' blob:; " +
		// Vue, ECharts and MapLibre set element styles at run time.
		"style-src 'self' 'unsafe-inline'; font-src 'self'; " +
		"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
	return h, nil
}

// Built says whether the front end is in the binary.
func (h *Handler) Built() bool { return h.index != nil }

// ServeHTTP answers GET and HEAD.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	if h.index == nil {
		http.Error(w, ErrNotBuilt.Error(), http.StatusServiceUnavailable)
		return
	}
	hd.Set("Content-Security-Policy", h.policy)
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name != "" && name != "index.html" {
		if st, err := fs.Stat(h.files, name); err == nil && !st.IsDir() {
			if strings.HasPrefix(name, "assets/") {
				// Vite names assets by their content's hash.
				hd.Set("Cache-Control", "public, max-age=31536000, immutable")
			} else {
				hd.Set("Cache-Control", "no-cache")
			}
			hd.Add("Vary", "Accept-Encoding")
			if gz := h.gzipped(name); gz != nil && acceptsGzip(r) {
				ctype := mime.TypeByExtension(path.Ext(name))
				if path.Ext(name) == ".geojson" {
					ctype = "application/geo+json"
				}
				if ctype != "" {
					hd.Set("Content-Type", ctype)
				}
				hd.Set("Content-Encoding", "gzip")
				hd.Set("Content-Length", strconv.Itoa(len(gz)))
				w.WriteHeader(http.StatusOK)
				if r.Method != http.MethodHead {
					_, _ = w.Write(gz)
				}
				return
			}
			http.ServeFileFS(w, r, h.files, name)
			return
		}
		if strings.HasPrefix(name, "assets/") || path.Ext(name) != "" {
			// A missing file is a 404, not the application: a stale
			// page asking for an old build's chunk must fail plainly.
			http.NotFound(w, r)
			return
		}
	}
	hd.Set("Cache-Control", "no-cache")
	hd.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(h.index)
	}
}
