package rtsp

import (
	"github.com/lookout-cc/lookout/internal/errclass"
)

var (
	// ErrInvalidURL is returned by New for a URL that is not rtsp:// or
	// rtsps:// with a host. Its message never repeats the URL.
	ErrInvalidURL = errclass.New(errclass.Invalid, "invalid_url", "must be an rtsp:// or rtsps:// URL with a host")

	// ErrInvalidTransport is returned by New for a Transport other than
	// "", "auto", "udp" and "tcp".
	ErrInvalidTransport = errclass.New(errclass.Invalid, "invalid_transport", `must be "auto", "udp" or "tcp"`)

	// ErrInvalidParams is returned by New for any other bad parameter: no
	// Sink, a negative duration, BackoffMax below BackoffMin.
	ErrInvalidParams = errclass.New(errclass.Invalid, "invalid_field", "invalid puller parameter")
)

// mediaError says why a stream that plays has nothing this package can
// pull: no H.264 or H.265 video.
type mediaError struct {
	reason string // ReasonUnsupportedCodec or ReasonNoVideo
	detail string
}

func (e *mediaError) Error() string { return e.detail }
