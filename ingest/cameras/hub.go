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

	"github.com/prometheus/client_golang/prometheus"

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
	// SubURL is the camera's low-resolution stream, for small wall
	// tiles; "" when it has none.
	SubURL string
	// Mode is Always or OnDemand ("" is Always).
	Mode string
}

// The streams of a camera.
const (
	Main = "main"
	Sub  = "sub"
)

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
	// Metrics, if set, gets lookout_camera_forward_seconds: the time from
	// a camera's packet reaching Lookout to its sending to a viewer.
	Metrics prometheus.Registerer
}

// ErrNotFound: the hub has no such camera.
var ErrNotFound = errors.New("no such camera")

// Hub holds the cameras.
//
// Lifecycle: New; Set and Remove as the registry changes; Acquire and the
// release it returns around each viewer; Close.
type Hub struct {
	p       Params
	forward func(time.Duration) // nil without metrics
	mu      sync.Mutex
	cams    map[string]*camera
	closed  bool
}

type camera struct {
	spec Spec
	// The main stream, and the sub stream (nil when the camera has none).
	main, sub *stream
	// buf is the main stream's pre-alert buffer: nil unless always-on
	// with a prebuffer.
	buf     *clips.Buffer
	viewers int
	linger  *time.Timer
}

// stream is one of a camera's streams: its puller and source.
type stream struct {
	url    string
	src    *source.Source
	puller *rtsp.Puller // nil while not pulled
}

func (c *camera) streams() []*stream {
	if c.sub == nil {
		return []*stream{c.main}
	}
	return []*stream{c.main, c.sub}
}

// New makes an empty hub.
func New(p Params) (*Hub, error) {
	if p.Linger == 0 {
		p.Linger = 30 * time.Second
	}
	if p.Transport == "" {
		p.Transport = "auto"
	}
	h := &Hub{p: p, cams: map[string]*camera{}}
	if p.Metrics != nil {
		hist := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lookout_camera_forward_seconds",
			Help:    "Time from a camera's RTP packet reaching Lookout to its sending to a WebRTC viewer (cached packets replayed to a new viewer not counted).",
			Buckets: []float64{.0001, .00025, .0005, .001, .002, .003, .005, .01, .02, .05, .1}})
		if err := p.Metrics.Register(hist); err != nil {
			return nil, err
		}
		h.forward = func(d time.Duration) { hist.Observe(d.Seconds()) }
	}
	return h, nil
}

func (h *Hub) newSource() *source.Source {
	src := source.New()
	src.OnForward = h.forward
	return src
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
		c = &camera{main: &stream{src: h.newSource()}}
		h.cams[spec.ID] = c
	}
	h.stopLocked(c)
	c.spec = spec
	c.main.url = spec.URL
	switch {
	case spec.SubURL == "" && c.sub != nil:
		c.sub.src.Close()
		c.sub = nil
	case spec.SubURL != "" && c.sub == nil:
		c.sub = &stream{src: h.newSource()}
	}
	if c.sub != nil {
		c.sub.url = spec.SubURL
	}
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
		for _, st := range c.streams() {
			st.src.Close()
		}
	}
}

// startLocked starts pulling a camera's streams; h.mu held.
func (h *Hub) startLocked(c *camera) error {
	for _, st := range c.streams() {
		if st.puller != nil {
			continue
		}
		id, which := c.spec.ID, Main
		if st == c.sub {
			which = Sub
		}
		var sink rtsp.Sink = st.src
		if st == c.main && c.buf != nil {
			sink = rtsp.Tee{st.src, c.buf}
		}
		p, err := rtsp.New(rtsp.Params{URL: st.url, Transport: h.p.Transport, Sink: sink, ReadTimeout: h.p.ReadTimeout,
			Log: h.p.Log.With("camera", id, "stream", which), OnStatus: func(status rtsp.Status) {
				if h.p.OnStatus != nil && which == Main {
					h.p.OnStatus(id, status)
				}
			}})
		if err != nil {
			h.stopLocked(c)
			return err
		}
		st.puller = p
		p.Start()
	}
	return nil
}

// stopLocked stops pulling a camera; h.mu held. A puller's Close waits
// for its goroutine, which never takes h.mu, so holding it is safe.
func (h *Hub) stopLocked(c *camera) {
	if c.linger != nil {
		c.linger.Stop()
		c.linger = nil
	}
	for _, st := range c.streams() {
		if st.puller != nil {
			st.puller.Close()
			st.puller = nil
		}
	}
}

// Acquire returns a camera's source for one viewer: the main stream, or
// the sub stream (which falls back to the main one when the camera has
// none; the stream given is the one returned), starting an on-demand
// camera; release ends the viewer's claim (an on-demand camera is stopped
// Linger after its last viewer left).
func (h *Hub) Acquire(id, which string) (*source.Source, string, func(), error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.cams[id]
	if !ok || h.closed {
		return nil, "", nil, ErrNotFound
	}
	c.viewers++
	if c.linger != nil {
		c.linger.Stop()
		c.linger = nil
	}
	if err := h.startLocked(c); err != nil {
		c.viewers--
		return nil, "", nil, err
	}
	st := c.main
	if which == Sub && c.sub != nil {
		st = c.sub
	} else {
		which = Main
	}
	var once sync.Once
	return st.src, which, func() { once.Do(func() { h.release(c) }) }, nil
}

func (h *Hub) release(c *camera) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c.viewers--
	if c.viewers > 0 || c.spec.Mode != OnDemand || h.cams[c.spec.ID] != c {
		return
	}
	var self *time.Timer
	self = time.AfterFunc(h.p.Linger, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		// Only this timer's own expiry: a viewer that came and went
		// meanwhile set another one.
		if c.viewers == 0 && c.linger == self && h.cams[c.spec.ID] == c {
			h.stopLocked(c)
			if h.p.OnStatus != nil {
				h.p.OnStatus(c.spec.ID, rtsp.Status{State: StateIdle, Since: time.Now()})
			}
		}
	})
	c.linger = self
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

// Status is a camera's state as the console shows it: its main stream's,
// and the sub stream's when it has one.
type Status struct {
	rtsp.Status
	Mode    string       `json:"mode"`
	Viewers int          `json:"viewers"`
	Source  source.Stats `json:"source"`
	Sub     *SubStatus   `json:"sub,omitempty"`
	// Prebuffer is what its pre-alert buffer holds, when it keeps one.
	Prebuffer *clips.Stats `json:"prebuffer,omitempty"`
}

// SubStatus is the sub stream's state.
type SubStatus struct {
	rtsp.Status
	Source source.Stats `json:"source"`
}

// Status returns a camera's state; ok is false for an unknown camera.
func (h *Hub) Status(id string) (Status, bool) {
	h.mu.Lock()
	c, ok := h.cams[id]
	var mainP, subP *rtsp.Puller
	var mainSrc, subSrc *source.Source
	var buf *clips.Buffer
	var st Status
	if ok {
		mainP, mainSrc, buf = c.main.puller, c.main.src, c.buf
		if c.sub != nil {
			subP, subSrc = c.sub.puller, c.sub.src
		}
		st.Mode, st.Viewers = c.spec.Mode, c.viewers
	}
	h.mu.Unlock()
	if !ok {
		return Status{}, false
	}
	st.Status, st.Source = pullerStatus(mainP), mainSrc.Stats()
	if subSrc != nil {
		st.Sub = &SubStatus{Status: pullerStatus(subP), Source: subSrc.Stats()}
	}
	if buf != nil {
		bs := buf.Stats()
		st.Prebuffer = &bs
	}
	return st, true
}

func pullerStatus(p *rtsp.Puller) rtsp.Status {
	if p == nil {
		return rtsp.Status{State: StateIdle}
	}
	return p.Status()
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
		for _, st := range c.streams() {
			st.src.Close()
		}
	}
}
