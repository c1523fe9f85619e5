package events

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Server-sent events: https://html.spec.whatwg.org/multipage/server-sent-events.html

const (
	// writeTimeout bounds every write to the client, so a stuck client
	// cannot hold its handler forever.
	writeTimeout = 10 * time.Second
	// retryLine tells EventSource to reconnect after 2 s.
	retryLine = "retry: 2000\n\n"
	// A burst of queued events is written with one flush, up to these.
	maxBatch      = 64
	maxBatchBytes = 32 << 10
	// lagReason is the data of the lagging event.
	lagReason = "the client fell behind; reconnect with Last-Event-ID"
)

// ServeSSE writes sub to w as text/event-stream until the request's context
// ends, the subscription ends, or a write fails. It does not close sub; the
// caller, who subscribed, does.
//
// The stream starts with "retry: 2000"; then, if sub.Gap, an event `gap`
// with data {"reason": "..."} (the client must reload its state); then the
// missed events and the live ones, each as
//
//	id: <ID>
//	event: <Type>
//	data: <the Event as JSON>
//
// flushed as soon as it is written (events already queued together share a
// flush). Unless the last replayed event carries it, an id-only message
// gives the position the live stream starts from; and every heartbeat
// (15 s if 0) a comment ": ping" keeps proxies from closing the stream,
// followed by an id line when events the listener may not see have gone by.
// An id-only message fires no event in EventSource but sets its last event
// id. So a client's Last-Event-ID is current even when it has received
// nothing: a reconnect neither misses events nor is refused as too old.
//
// Each write has a 10 s deadline (where the ResponseWriter supports one).
// When the subscription ends with ErrLagging, an event `lagging` with data
// {"reason": "..."} is sent before returning, so the client reconnects with
// Last-Event-ID (EventSource does so by itself when the stream ends).
//
// It returns nil when the request's context ends, sub.Err() when the
// subscription ended (ErrLagging, ErrClosed), or the write error.
func ServeSSE(w http.ResponseWriter, r *http.Request, sub *Subscription, heartbeat time.Duration) error {
	if heartbeat <= 0 {
		heartbeat = DefaultHeartbeat
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	st := stream{w: w, rc: http.NewResponseController(w), epoch: sub.bus.epoch, sent: sub.start}

	buf := make([]byte, 0, 4096)
	buf = append(buf, retryLine...)
	if sub.Gap {
		buf = appendControl(buf, "gap", sub.gapReason)
	}
	var err error
	for i := range sub.Missed {
		if buf, err = appendFrame(buf, &sub.Missed[i]); err != nil {
			return err
		}
		if len(buf) >= maxBatchBytes {
			if err := st.write(buf, false); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	// The position of the live stream: every event up to it that the
	// listener may see is written above.
	if n := len(sub.Missed); n == 0 || sub.Missed[n-1].Seq != sub.start {
		buf = st.appendPosition(buf, sub.start)
		buf = append(buf, '\n')
	}
	if err := st.write(buf, true); err != nil {
		return err
	}

	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	done := r.Context().Done()
	for {
		select {
		case <-done:
			return nil
		case ev, ok := <-sub.ch:
			open := ok
			buf = buf[:0]
			if ok {
				if buf, open, err = st.batch(buf, ev, sub.ch); err != nil {
					return err
				}
				if err := st.write(buf, true); err != nil {
					return err
				}
			}
			if !open {
				return st.end(sub)
			}
		case <-tick.C:
			buf = append(buf[:0], ": ping\n"...)
			// pos is read before the queue is seen empty: every event up to
			// pos that was sent to the queue has then been written.
			if pos := sub.pos.Load(); pos > st.sent && len(sub.ch) == 0 {
				buf = st.appendPosition(buf, pos)
			}
			buf = append(buf, '\n')
			if err := st.write(buf, true); err != nil {
				return err
			}
		}
	}
}

// stream is ServeSSE's writing side.
type stream struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	epoch int64
	sent  uint64 // the newest position the client was given
}

// batch appends ev and the events queued behind it, up to a batch, to buf.
// open is false if the channel turned out closed.
func (st *stream) batch(buf []byte, ev Event, ch <-chan Event) (_ []byte, open bool, err error) {
	for n := 1; ; n++ {
		if buf, err = appendFrame(buf, &ev); err != nil {
			return buf, true, err
		}
		st.sent = ev.Seq
		if n >= maxBatch || len(buf) >= maxBatchBytes {
			return buf, true, nil
		}
		var ok bool
		select {
		case ev, ok = <-ch:
			if !ok {
				return buf, false, nil
			}
		default:
			return buf, true, nil
		}
	}
}

// appendPosition appends an id line for seq and records it as sent.
func (st *stream) appendPosition(buf []byte, seq uint64) []byte {
	buf = append(buf, "id: "...)
	buf = appendID(buf, st.epoch, seq)
	st.sent = seq
	return append(buf, '\n')
}

// end reports why sub ended, telling a lagging client to reconnect.
func (st *stream) end(sub *Subscription) error {
	err := sub.Err()
	if errors.Is(err, ErrLagging) {
		if werr := st.write(appendControl(nil, "lagging", lagReason), true); werr != nil {
			return werr
		}
	}
	return err
}

// write writes b under a fresh deadline, and flushes it if flush is set.
func (st *stream) write(b []byte, flush bool) error {
	if err := st.rc.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("events: set write deadline: %w", err)
	}
	if _, err := st.w.Write(b); err != nil {
		return fmt.Errorf("events: write: %w", err)
	}
	if !flush {
		return nil
	}
	if err := st.rc.Flush(); err != nil {
		return fmt.Errorf("events: flush: %w", err)
	}
	return nil
}
