// Package rtsp pulls IP cameras over RTSP (RFC 2326) with gortsplib: one
// Puller per camera finds the H.264 or H.265 video, plays it and hands its
// RTP packets, unchanged, to a Sink; it reconnects forever with exponential
// backoff and reports its state and the stream's figures.
package rtsp

import (
	"context"
	"crypto/tls"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/pion/rtp"

	"github.com/lookout-cc/lookout/internal/errclass"
)

// Sink receives one camera's video. Its methods are called from one
// goroutine at a time, in order: Start, WriteRTP any number of times, Stop,
// and again for each session. They should return quickly: a WriteRTP that
// blocks holds up reading from the camera, and gortsplib ends a session
// whose reads stall for ReadTimeout.
type Sink interface {
	// Start: the camera plays, and its first packet follows. codec is
	// "H264" or "H265"; paramSets are the parameter sets from the SDP, in
	// order VPS (H.265 only), SPS, PPS, each nil when the SDP has none
	// (then they come in-band). The sink may keep paramSets.
	Start(codec string, paramSets [][]byte)
	// WriteRTP is given every RTP packet of the video, unchanged, in order
	// of arrival. pkt (and its payload) is valid only during the call.
	WriteRTP(pkt *rtp.Packet)
	// Stop: the stream ended (the camera dropped, or Close).
	Stop()
}

// Params configure a Puller. Zero durations take the defaults.
type Params struct {
	// URL is the camera's rtsp:// or rtsps:// URL, credentials in it; basic
	// and digest authentication are both answered, as the camera asks.
	URL string
	// Transport is "auto" (or empty: UDP first, then TCP when no UDP
	// packet arrives or the camera asks for TCP), "udp" or "tcp".
	Transport string
	// Sink receives the video. Required.
	Sink Sink
	// Log receives the puller's events, with the URL in its redacted form
	// only; nil discards them.
	Log *slog.Logger
	// OnStatus, if set, is called on every state change (not on updates
	// of the figures), one call at a time, in order, never once Close has
	// begun. The change to live is reported from the packet path, so it
	// should return quickly; it must not call Close, nor wait on anything
	// held while calling Close.
	OnStatus func(Status)
	// BackoffMin and BackoffMax bound the wait between attempts, which
	// doubles on every failure, with ±10 % jitter (defaults 1 s and 30 s).
	BackoffMin, BackoffMax time.Duration
	// BackoffReset is how long the camera must have been live for the wait
	// after it drops to start over at BackoffMin (default 10 s).
	BackoffReset time.Duration
	// ReadTimeout bounds every answer of the camera and every gap in its
	// packets (default 10 s).
	ReadTimeout time.Duration
	// TLSConfig is used for rtsps:// (nil: verify the camera's certificate
	// against the system roots). It is cloned; its ServerName is set from
	// the URL.
	TLSConfig *tls.Config
}

// Defaults of Params.
const (
	DefaultBackoffMin   = time.Second
	DefaultBackoffMax   = 30 * time.Second
	DefaultBackoffReset = 10 * time.Second
	DefaultReadTimeout  = 10 * time.Second
)

// sampleEvery is how often the rate window is fed while live.
const sampleEvery = time.Second

// Puller pulls one camera: Start it once, Close it once done with it.
// Status may be called at any time, from any goroutine.
type Puller struct {
	url          *base.URL
	secrets      []string
	transport    *gortsplib.Transport
	sink         Sink
	log          *slog.Logger
	onStatus     func(Status)
	backoffMin   time.Duration
	backoffMax   time.Duration
	backoffReset time.Duration
	readTimeout  time.Duration
	tlsConfig    *tls.Config

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	lifeMu  sync.Mutex
	started bool

	// notifyMu is held while a state change is made and reported, so that
	// OnStatus sees the changes one at a time and in order.
	notifyMu sync.Mutex
	mu       sync.Mutex // guards st
	st       Status

	// Written per packet: atomics only.
	frames    atomic.Uint64
	bytes     atomic.Uint64
	lastFrame atomic.Int64 // Unix ns
	lost      atomic.Uint64
	rates     rateWindow
}

// New checks p and returns a puller that has not started yet. Errors are
// errclass Invalid errors naming the field (ErrInvalidURL,
// ErrInvalidTransport, ErrInvalidParams); none repeats the URL.
func New(p Params) (*Puller, error) {
	u, err := parseURL(p.URL)
	if err != nil {
		return nil, err
	}
	var transport *gortsplib.Transport
	switch p.Transport {
	case "", "auto":
	case "udp":
		t := gortsplib.TransportUDP
		transport = &t
	case "tcp":
		t := gortsplib.TransportTCP
		transport = &t
	default:
		return nil, invalid(ErrInvalidTransport, "transport", ErrInvalidTransport.Message)
	}
	if p.Sink == nil {
		return nil, invalid(ErrInvalidParams, "sink", "is required")
	}
	for _, d := range []struct {
		field string
		v     *time.Duration
		def   time.Duration
	}{
		{"backoff_min", &p.BackoffMin, DefaultBackoffMin},
		{"backoff_max", &p.BackoffMax, DefaultBackoffMax},
		{"backoff_reset", &p.BackoffReset, DefaultBackoffReset},
		{"read_timeout", &p.ReadTimeout, DefaultReadTimeout},
	} {
		if *d.v < 0 {
			return nil, invalid(ErrInvalidParams, d.field, "must not be negative")
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if p.BackoffMax < p.BackoffMin {
		return nil, invalid(ErrInvalidParams, "backoff_max", "must not be below backoff_min")
	}
	log := p.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pl := &Puller{
		url:          u,
		secrets:      secretsOf((*url.URL)(u)),
		transport:    transport,
		sink:         p.Sink,
		log:          log.With("url", Redact(p.URL)),
		onStatus:     p.OnStatus,
		backoffMin:   p.BackoffMin,
		backoffMax:   p.BackoffMax,
		backoffReset: p.BackoffReset,
		readTimeout:  p.ReadTimeout,
		ctx:          ctx,
		cancel:       cancel,
		done:         make(chan struct{}),
		st:           Status{State: StateConnecting, Since: time.Now()},
	}
	if p.TLSConfig != nil {
		pl.tlsConfig = p.TLSConfig.Clone()
	}
	return pl, nil
}

// parseURL accepts what gortsplib can dial: rtsp:// or rtsps:// with a
// host, credentials optional.
func parseURL(raw string) (*base.URL, error) {
	if raw == "" {
		return nil, invalid(ErrInvalidURL, "url", "is required")
	}
	u, err := base.ParseURL(raw)
	if err != nil || u.Hostname() == "" {
		return nil, invalid(ErrInvalidURL, "url", ErrInvalidURL.Message)
	}
	// An '@' after the host means a user name or password held a '/',
	// '?' or '#' that was not percent-encoded, so part of the secret was
	// read as path or query, where Redact would not hide it.
	if strings.Contains((*url.URL)(u).EscapedPath(), "@") || strings.Contains(u.RawQuery, "@") {
		return nil, invalid(ErrInvalidURL, "url", "has an '@' after the host: percent-encode '/', '?', '#' and '@' in the user name and password")
	}
	return u, nil
}

// invalid is sentinel's kind and code with the field and message given,
// so that errors.Is(err, sentinel) holds.
func invalid(sentinel *errclass.Error, field, msg string) error {
	return &errclass.Error{Kind: sentinel.Kind, Code: sentinel.Code, Field: field, Message: msg}
}

// Start runs the connect, play and reconnect loop in its own goroutine,
// until Close. Calls after the first, or after Close, do nothing.
func (p *Puller) Start() {
	p.lifeMu.Lock()
	defer p.lifeMu.Unlock()
	if p.started || p.ctx.Err() != nil {
		return
	}
	p.started = true
	go p.run()
}

// Close stops the puller: it ends the session (Sink.Stop is called if the
// sink was started) and returns once the loop's goroutine has. It may be
// called more than once, and without Start.
func (p *Puller) Close() {
	p.lifeMu.Lock()
	p.cancel()
	started := p.started
	p.lifeMu.Unlock()
	if started {
		<-p.done
	} else {
		p.setClosed()
	}
}

// Status is the current state with fresh figures.
func (p *Puller) Status() Status {
	p.mu.Lock()
	st := p.st
	p.mu.Unlock()
	if st.State == StateLive {
		fps, kbps := p.rates.rates(p.sampleNow())
		st.FPS, st.BitrateKbps = round1(fps), round1(kbps)
	}
	if ns := p.lastFrame.Load(); ns != 0 {
		st.LastFrame = time.Unix(0, ns)
	}
	st.PacketsLost = p.lost.Load()
	return st
}

func round1(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }

func (p *Puller) sampleNow() sample {
	return sample{at: time.Now(), frames: p.frames.Load(), bytes: p.bytes.Load()}
}

// run is the loop: attempt, and after each end wait and attempt again.
func (p *Puller) run() {
	defer close(p.done)
	backoff := p.backoffMin
	lastReason := ""
	for {
		p.transition(Status{State: StateConnecting})
		liveFor, err := p.attempt()
		if p.ctx.Err() != nil {
			p.setClosed()
			return
		}
		if liveFor > 0 {
			lastReason = ""
			if liveFor >= p.backoffReset {
				backoff = p.backoffMin
			}
		}
		reason, detail := classify(err, p.url.User != nil)
		detail = scrub(detail, p.secrets)
		wait := p.jitter(backoff)
		now := time.Now()
		p.transition(Status{State: StateOffline, Reason: reason, Detail: detail, Since: now, NextRetry: now.Add(wait)})
		// A camera that stays down is logged once per reason, not once
		// per attempt.
		level := slog.LevelWarn
		if reason == lastReason {
			level = slog.LevelDebug
		}
		lastReason = reason
		p.log.Log(p.ctx, level, "camera offline", "reason", reason, "detail", detail, "retry_in", wait.Round(time.Millisecond))

		t := time.NewTimer(wait)
		select {
		case <-p.ctx.Done():
			t.Stop()
			p.setClosed()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, p.backoffMax)
	}
}

// jitter spreads d by ±10 %, within [backoffMin, backoffMax], so that
// cameras that dropped together do not come back in lockstep.
func (p *Puller) jitter(d time.Duration) time.Duration {
	if spread := int64(d / 5); spread > 0 {
		d += time.Duration(rand.Int64N(spread+1)) - d/10
	}
	return min(max(d, p.backoffMin), p.backoffMax)
}

// transition enters the state in next (Codec and Since filled in when
// empty) and reports it.
func (p *Puller) transition(next Status) {
	p.notifyMu.Lock()
	defer p.notifyMu.Unlock()
	p.mu.Lock()
	if next.Codec == "" {
		next.Codec = p.st.Codec
	}
	if next.Since.IsZero() {
		next.Since = time.Now()
	}
	p.st = next
	p.mu.Unlock()
	if p.onStatus != nil && p.ctx.Err() == nil {
		p.onStatus(p.Status())
	}
}

// setCodec records the codec found in the SDP; not a state change.
func (p *Puller) setCodec(codec string) {
	p.mu.Lock()
	p.st.Codec = codec
	p.mu.Unlock()
}

// setClosed enters the final state, without reporting it: OnStatus is not
// called once Close has begun.
func (p *Puller) setClosed() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.st.Reason != ReasonClosed {
		p.st = Status{State: StateOffline, Reason: ReasonClosed, Detail: "the puller was closed", Codec: p.st.Codec, Since: time.Now()}
	}
}
