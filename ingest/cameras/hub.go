// Package cameras runs the cameras Lookout pulls: for each, an RTSP
// puller (ingest/rtsp) feeding a source (sfu/source) that viewers watch
// and, for an always-on camera, a pre-alert buffer (ingest/clips) beside it.
// A camera is pulled always (the default: its picture is ready the moment
// a wall tile asks, and its last seconds are kept for alerts) or on demand
// (while someone watches, and for a while after the last one leaves).
package cameras

import (
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/lookout-cc/lookout/ingest/clips"
	"github.com/lookout-cc/lookout/ingest/rtsp"
	"github.com/lookout-cc/lookout/sfu/source"
)

// Modes of pulling.
const (
	Always   = "always"
	OnDemand = "on_demand"
)

// StateIdle: an on-demand camera that nobody watches is not pulled.
const StateIdle rtsp.State = "idle"

// Spec is a camera to pull.
type Spec struct {
	ID  string
	URL string
	// Mode is Always or OnDemand ("" is Always).
	Mode string
}

// Params configure the hub.
type Params struct {
	Log *slog.Logger
	// Linger is how long an on-demand camera is pulled after its last
	// viewer left. Default 30 s.
	Linger time.Duration
	// OnStatus is told of every camera's state changes.
	OnStatus func(id string, st rtsp.Status)
	// Transport is the RTSP transport: "auto" (default), "udp" or "tcp".
	Transport string
	// ReadTimeout ends a stream that stops sending. Default: the puller's.
	ReadTimeout time.Duration
	// Prebuffer is how much of each always-on camera's video is kept in
	// memory (clips.Params.Duration); 0 keeps none. On-demand cameras
	// keep none: they are not pulled all the time.
	Prebuffer time.Duration
	// PrebufferMaxBytes bounds each camera's buffer (default
	// clips.DefaultMaxBytes).
	PrebufferMaxBytes int64
}

// ErrNotFound: the hub has no such camera.
var ErrNotFound = errors.New("no such camera")

// Hub holds the cameras.
//
// Lifecycle: New; Set and Remove as the registry changes; Acquire and the
// release it returns around each viewer; Close.
type Hub struct {
	p      Params
	mu     sync.Mutex
	cams   map[string]*camera
	closed bool
}

type camera struct {
	spec    Spec
	src     *source.Source
	buf     *clips.Buffer // nil unless always-on with a prebuffer
	puller  *rtsp.Puller  // nil while an on-demand camera is idle
	viewers int
	linger  *time.Timer
}

// New makes an empty hub.
func New(p Params) *Hub {
	if p.Linger == 0 {
		p.Linger = 30 * time.Second
	}
	if p.Transport == "" {
		p.Transport = "auto"
	}
	return &Hub{p: p, cams: map[string]*camera{}}
}

// Set adds a camera or changes it: a new URL or mode starts its pulling
// afresh; its viewers stay and see the new stream when it plays.
func (h *Hub) Set(spec Spec) error {
	if spec.Mode == "" {
		spec.Mode = Always
	}
	if spec.Mode != Always && spec.Mode != OnDemand {
		return errors.New("mode must be always or on_demand")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errors.New("hub closed")
	}
	c, ok := h.cams[spec.ID]
	if ok && c.spec == spec {
		return nil
	}
	if !ok {
		c = &camera{spec: spec, src: source.New()}
		h.cams[spec.ID] = c
	}
	c.spec = spec
	h.stopLocked(c)
	switch {
	case spec.Mode != Always || h.p.Prebuffer <= 0:
		c.buf = nil
	case c.buf == nil:
		c.buf = clips.New(clips.Params{Duration: h.p.Prebuffer, MaxBytes: h.p.PrebufferMaxBytes})
	}
	if spec.Mode == Always || c.viewers > 0 {
		return h.startLocked(c)
	}
	return nil
}

// Remove stops and forgets a camera; its viewers end.
func (h *Hub) Remove(id string) {
	h.mu.Lock()
	c, ok := h.cams[id]
	if ok {
		delete(h.cams, id)
		h.stopLocked(c)
	}
	h.mu.Unlock()
	if ok {
		c.src.Close()
	}
}

// startLocked starts pulling a camera; h.mu held.
func (h *Hub) startLocked(c *camera) error {
	if c.puller != nil {
		return nil
	}
	id := c.spec.ID
	var sink rtsp.Sink = c.src
	if c.buf != nil {
		sink = rtsp.Tee{c.src, c.buf}
	}
	p, err := rtsp.New(rtsp.Params{URL: c.spec.URL, Transport: h.p.Transport, Sink: sink, ReadTimeout: h.p.ReadTimeout,
		Log: h.p.Log.With("camera", id), OnStatus: func(st rtsp.Status) {
			if h.p.OnStatus != nil {
				h.p.OnStatus(id, st)
			}
		}})
	if err != nil {
		return err
	}
	c.puller = p
	p.Start()
	return nil
}

// stopLocked stops pulling a camera; h.mu held. The puller's Close waits
// for its goroutine, which never takes h.mu, so holding it is safe.
func (h *Hub) stopLocked(c *camera) {
	if c.linger != nil {
		c.linger.Stop()
		c.linger = nil
	}
	if c.puller != nil {
		c.puller.Close()
		c.puller = nil
	}
}

// Acquire returns a camera's source for one viewer, starting an on-demand
// camera; release ends the viewer's claim (an on-demand camera is stopped
// Linger after its last viewer left).
func (h *Hub) Acquire(id string) (*source.Source, func(), error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.cams[id]
	if !ok || h.closed {
		return nil, nil, ErrNotFound
	}
	c.viewers++
	if c.linger != nil {
		c.linger.Stop()
		c.linger = nil
	}
	if err := h.startLocked(c); err != nil {
		c.viewers--
		return nil, nil, err
	}
	var once sync.Once
	return c.src, func() { once.Do(func() { h.release(c) }) }, nil
}

func (h *Hub) release(c *camera) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c.viewers--
	if c.viewers > 0 || c.spec.Mode != OnDemand || h.cams[c.spec.ID] != c {
		return
	}
	c.linger = time.AfterFunc(h.p.Linger, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if c.viewers == 0 && c.linger != nil && h.cams[c.spec.ID] == c {
			c.linger = nil
			if c.puller != nil {
				c.puller.Close()
				c.puller = nil
			}
			if h.p.OnStatus != nil {
				h.p.OnStatus(c.spec.ID, rtsp.Status{State: StateIdle, Since: time.Now()})
			}
		}
	})
}

// Buffer is a camera's pre-alert buffer: nil for an unknown camera, an
// on-demand one, or when Prebuffer is 0.
func (h *Hub) Buffer(id string) *clips.Buffer {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.cams[id]; ok {
		return c.buf
	}
	return nil
}

// Status is a camera's state as the console shows it.
type Status struct {
	rtsp.Status
	Mode    string       `json:"mode"`
	Viewers int          `json:"viewers"`
	Source  source.Stats `json:"source"`
	// Prebuffer is what its pre-alert buffer holds, when it keeps one.
	Prebuffer *clips.Stats `json:"prebuffer,omitempty"`
}

// Status returns a camera's state; ok is false for an unknown camera.
func (h *Hub) Status(id string) (Status, bool) {
	h.mu.Lock()
	c, ok := h.cams[id]
	var p *rtsp.Puller
	var buf *clips.Buffer
	var st Status
	if ok {
		p, buf = c.puller, c.buf
		st.Mode, st.Viewers = c.spec.Mode, c.viewers
	}
	h.mu.Unlock()
	if !ok {
		return Status{}, false
	}
	if p != nil {
		st.Status = p.Status()
	} else {
		st.Status = rtsp.Status{State: StateIdle}
	}
	st.Source = c.src.Stats()
	if buf != nil {
		bs := buf.Stats()
		st.Prebuffer = &bs
	}
	return st, true
}

// IDs lists the cameras, by id.
func (h *Hub) IDs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.cams))
	for id := range h.cams {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Close stops every camera and ends every viewer.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	cams := h.cams
	h.cams = map[string]*camera{}
	for _, c := range cams {
		h.stopLocked(c)
	}
	h.mu.Unlock()
	for _, c := range cams {
		c.src.Close()
	}
}
