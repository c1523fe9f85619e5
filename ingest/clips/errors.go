package clips

import (
	"fmt"

	"github.com/lookout-cc/lookout/internal/errclass"
)

// Errors of buffers.
var (
	// ErrInvalidSpan: the span asked for is malformed (to not after from,
	// to in the future).
	ErrInvalidSpan = errclass.New(errclass.Invalid, "invalid_span", "the span is invalid")
	// ErrNothingBuffered: the buffer holds no video yet (the camera has
	// not sent a keyframe since it started).
	ErrNothingBuffered = errclass.New(errclass.Conflict, "nothing_buffered", "the camera's pre-alert buffer holds no video yet")
	// ErrSpanNotBuffered: the span is not in the buffer; the message says
	// what span is.
	ErrSpanNotBuffered = errclass.New(errclass.Conflict, "span_not_buffered", "the span is not in the camera's pre-alert buffer")
)

// invalidSpan is ErrInvalidSpan naming the field and the rule.
func invalidSpan(field, format string, args ...any) error {
	return &errclass.Error{Kind: ErrInvalidSpan.Kind, Code: ErrInvalidSpan.Code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// notBuffered is ErrSpanNotBuffered saying what the buffer holds.
func notBuffered(field string, avail Span, why string) error {
	return &errclass.Error{Kind: ErrSpanNotBuffered.Kind, Code: ErrSpanNotBuffered.Code, Field: field,
		Message: fmt.Sprintf("%s: the pre-alert buffer holds %s", why, avail)}
}
