package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// The wire form of an event is its whole SSE message,
//
//	id: <ID>\nevent: <Type>\ndata: <JSON of the Event>\n\n
//
// built once at Publish (the frame) and written as is to every stream, so a
// hundred listeners cost one encoding, not a hundred. Event.Data is a slice
// of the frame. The JSON is byte for byte what encoding/json makes of the
// Event (frame_test.go checks it).

// reservedTypes are event names the stream itself uses (gap, lagging) or
// that EventSource gives a meaning of its own (error, open, message).
var reservedTypes = map[string]bool{"gap": true, "lagging": true, "error": true, "open": true, "message": true}

// maxTypeLen bounds an event type.
const maxTypeLen = 32

// checkType reports whether typ may name an event: 1 to 32 characters of
// a-z, 0-9, '_', '.', '-', starting with a letter, and not reserved. The
// rule keeps the `event:` line free of anything that could break the stream.
func checkType(typ string) error {
	if typ == "" || len(typ) > maxTypeLen || typ[0] < 'a' || typ[0] > 'z' {
		return fmt.Errorf("events: type %q must be 1 to %d characters starting with a-z", typ, maxTypeLen)
	}
	for i := 1; i < len(typ); i++ {
		c := typ[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '.' && c != '-' {
			return fmt.Errorf("events: type %q may hold only a-z, 0-9, '_', '.' and '-'", typ)
		}
	}
	if reservedTypes[typ] {
		return fmt.Errorf("events: type %q is reserved by the stream", typ)
	}
	return nil
}

// encoder marshals payloads into a reused buffer, so Publish allocates for
// the frame only.
type encoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

// maxPooledBuf keeps an occasional huge payload's buffer out of the pool.
const maxPooledBuf = 64 << 10

var encoders = sync.Pool{New: func() any {
	e := new(encoder)
	e.enc = json.NewEncoder(&e.buf)
	return e
}}

// marshalData encodes data as compact JSON, as json.Marshal would, into e's
// buffer. The result is valid until e is returned to the pool.
func (e *encoder) marshalData(data any) ([]byte, error) {
	e.buf.Reset()
	if err := e.enc.Encode(data); err != nil {
		return nil, fmt.Errorf("events: marshal data: %w", err)
	}
	b := bytes.TrimSuffix(e.buf.Bytes(), []byte{'\n'})
	if len(b) == 0 || b[0] != '{' {
		return nil, errNotObject
	}
	// encoding/json escapes control characters in strings and compacts the
	// output of Marshalers, so this cannot happen; a raw line break would
	// end the SSE data line early, so it is checked all the same.
	if bytes.ContainsAny(b, "\r\n") {
		return nil, errors.New("events: marshalled data holds a line break")
	}
	return b, nil
}

var errNotObject = errors.New("events: data must marshal to a JSON object")

func putEncoder(e *encoder) {
	if e.buf.Cap() <= maxPooledBuf {
		encoders.Put(e)
	}
}

// setFrame builds ev's frame around data (compact JSON, no line breaks),
// and points ev.Data into it. ev.ID and ev.Type must already be checked.
func setFrame(ev *Event, data []byte) error {
	const fixed = len("id: \nevent: \ndata: \n\n") + len(`{"id":"","type":"","org_id":"","at":"","data":}`)
	n := fixed + 2*len(ev.ID) + 2*len(ev.Type) + len(ev.OrgID) + len(time.RFC3339Nano) + len(data)
	f := make([]byte, 0, n)
	f = append(f, "id: "...)
	f = append(f, ev.ID...)
	f = append(f, "\nevent: "...)
	f = append(f, ev.Type...)
	f = append(f, "\ndata: "...)
	f = append(f, `{"id":"`...)
	f = append(f, ev.ID...)
	f = append(f, `","type":"`...)
	f = append(f, ev.Type...)
	f = append(f, `","org_id":`...)
	f = appendJSONString(f, string(ev.OrgID))
	f = append(f, `,"at":"`...)
	f, err := ev.At.AppendText(f)
	if err != nil {
		return fmt.Errorf("events: time %v: %w", ev.At, err)
	}
	f = append(f, `","data":`...)
	start := len(f)
	f = append(f, data...)
	end := len(f)
	f = append(f, "}\n\n"...)
	ev.Data = f[start:end:end]
	ev.frame = f
	return nil
}

// appendJSONString appends s as encoding/json would quote it. Org ids are
// plain ASCII (orgs.IDPattern), which is copied as is; anything else is left
// to encoding/json, so the escaping is always its own.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always marshals
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendFrame appends the SSE message of ev to dst. Events from the bus
// carry their frame; any other Event is encoded here, and refused if its id
// or type could break the stream.
func appendFrame(dst []byte, ev *Event) ([]byte, error) {
	if ev.frame != nil {
		return append(dst, ev.frame...), nil
	}
	if strings.ContainsAny(ev.ID, "\r\n\x00") || checkType(ev.Type) != nil {
		return dst, fmt.Errorf("events: event %q of type %q cannot be streamed", ev.ID, ev.Type)
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return dst, fmt.Errorf("events: marshal event %s: %w", ev.ID, err)
	}
	if bytes.ContainsAny(data, "\r\n") {
		return dst, fmt.Errorf("events: event %s marshals with a line break", ev.ID)
	}
	dst = append(dst, "id: "...)
	dst = append(dst, ev.ID...)
	dst = append(dst, "\nevent: "...)
	dst = append(dst, ev.Type...)
	dst = append(dst, "\ndata: "...)
	dst = append(dst, data...)
	return append(dst, "\n\n"...), nil
}

// appendControl appends a stream event of the bus's own (gap, lagging)
// whose data is {"reason": reason}.
func appendControl(dst []byte, name, reason string) []byte {
	dst = append(dst, "event: "...)
	dst = append(dst, name...)
	dst = append(dst, "\ndata: {\"reason\":"...)
	dst = appendJSONString(dst, reason)
	return append(dst, "}\n\n"...)
}
