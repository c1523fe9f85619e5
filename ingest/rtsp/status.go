package rtsp

import (
	"sync"
	"time"
)

// State is where a puller stands with its camera.
type State string

// The states of a puller.
const (
	// StateConnecting: connecting, describing, setting up or waiting for
	// the first video packet after PLAY.
	StateConnecting State = "connecting"
	// StateLive: video packets flow to the sink.
	StateLive State = "live"
	// StateOffline: the last attempt failed or the stream ended; the next
	// one is due at Status.NextRetry.
	StateOffline State = "offline"
)

// Reasons a camera is offline: stable short codes that API clients may
// switch on. Status.Detail carries the human text.
const (
	ReasonRefused          = "refused"           // nothing listens on the camera's port
	ReasonUnreachable      = "unreachable"       // no route to the camera's host or network
	ReasonUnauthorized     = "unauthorized"      // credentials missing or refused (401, 403)
	ReasonNotFound         = "not_found"         // the camera has no such path (404)
	ReasonTimeout          = "timeout"           // no answer, or no packets for ReadTimeout
	ReasonUnsupportedCodec = "unsupported_codec" // video, but not H.264 or H.265
	ReasonNoVideo          = "no_video"          // no video media at all
	ReasonDNS              = "dns"               // the host name does not resolve
	ReasonTLS              = "tls"               // the RTSPS handshake or certificate failed
	ReasonProtocol         = "protocol"          // any other error of RTSP, SDP or transport
	ReasonStreamEnded      = "stream_ended"      // the camera closed the connection
	ReasonClosed           = "closed"            // Close was called; no retry follows
)

// Status is a puller's state and, while live, its stream's figures.
type Status struct {
	State State `json:"state"`
	// Reason says why the camera is offline, as one of the Reason*
	// codes; Detail is the human text (never holding the URL's secrets).
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Codec is "H264" or "H265" once the stream was described.
	Codec string `json:"codec,omitempty"`
	// Transport is "udp" or "tcp" while live.
	Transport string `json:"transport,omitempty"`
	// Since is when State was entered.
	Since time.Time `json:"since"`
	// NextRetry is when the next attempt starts, while offline.
	NextRetry time.Time `json:"next_retry,omitzero"`

	// FPS and BitrateKbps are measured over the last few seconds while
	// live (frames are RTP packets with the marker bit; the bitrate counts
	// RTP payload); zero otherwise.
	FPS         float64 `json:"fps"`
	BitrateKbps float64 `json:"bitrate_kbps"`
	// LastFrame is when the last frame ended, in this or an earlier session.
	LastFrame time.Time `json:"last_frame,omitzero"`
	// PacketsLost counts RTP packets lost since the puller started.
	PacketsLost uint64 `json:"packets_lost"`
}

// rateWindow keeps the last few per-second samples of the frame and byte
// counters, from which Status computes FPS and bitrate.
type rateWindow struct {
	mu      sync.Mutex
	samples [rateSamples]sample
	n, next int
}

// rateSamples at one per second make a window of four to five seconds.
const rateSamples = 5

// minRateWindow is the shortest span a rate is computed over, so that the
// first packets of a stream do not read as a burst of hundreds of fps.
const minRateWindow = 500 * time.Millisecond

type sample struct {
	at            time.Time
	frames, bytes uint64
}

// reset empties the window and starts it at s.
func (w *rateWindow) reset(s sample) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n, w.next = 0, 0
	w.pushLocked(s)
}

func (w *rateWindow) push(s sample) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pushLocked(s)
}

func (w *rateWindow) pushLocked(s sample) {
	w.samples[w.next] = s
	w.next = (w.next + 1) % rateSamples
	if w.n < rateSamples {
		w.n++
	}
}

// rates gives frames per second and kbit/s from the oldest sample to now.
func (w *rateWindow) rates(now sample) (fps, kbps float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n == 0 {
		return 0, 0
	}
	oldest := w.samples[(w.next-w.n+rateSamples)%rateSamples]
	span := now.at.Sub(oldest.at)
	if span < minRateWindow || now.frames < oldest.frames || now.bytes < oldest.bytes {
		return 0, 0
	}
	secs := span.Seconds()
	return float64(now.frames-oldest.frames) / secs, float64(now.bytes-oldest.bytes) * 8 / 1000 / secs
}
