package events

import "errors"

// ErrLagging is why a subscription ends when its queue was full at a
// Publish: the listener fell behind. It should reconnect with the id of the
// last event it handled as Last-Event-ID and is served the rest from the
// replay ring.
var ErrLagging = errors.New("events: subscriber fell behind; reconnect with Last-Event-ID")

// ErrClosed is why a subscription ends when it or its bus was closed, and
// what Publish returns once the bus is closed.
var ErrClosed = errors.New("events: closed")
