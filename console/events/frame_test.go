package events

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/internal/orgs"
)

// The frame Publish builds by hand is exactly the message encoding/json
// would give, for awkward org ids, times and payloads too, and no payload
// can put a raw line break into it.
func TestFrameMatchesEncodingJSON(t *testing.T) {
	shanghai := time.FixedZone("CST", 8*3600)
	tests := []struct {
		name string
		org  orgs.ID
		at   time.Time
		data any
	}{
		{"plain", "qj", epoch0, payload{N: 1, Name: "水位超限"}},
		{"html characters", "a<b>&c", epoch0, map[string]string{"x": "<script>&</script>"}},
		{"quotes and backslashes", `a"b\c`, epoch0, map[string]string{"x": `"\`}},
		{"line breaks in strings", "qj", epoch0, map[string]string{"x": "a\nb\rc\u2028d\u2029e"}},
		{"control characters", "q\x00j\x1f", epoch0, map[string]string{"x": "\x00\x07\t"}},
		{"non-ASCII org", "巧家县", epoch0, payload{}},
		{"invalid UTF-8", "q\xffj", epoch0, map[string]string{"x": "\xfe"}},
		{"empty org", "", epoch0, struct{}{}},
		{"zone and nanoseconds", "qj", time.Date(2026, 7, 1, 23, 59, 59, 123456789, shanghai), payload{}},
		{"whole seconds", "qj", time.Date(2026, 7, 1, 23, 59, 59, 0, time.UTC), payload{}},
		{"indented raw message", "qj", epoch0, json.RawMessage("{\n\t\"a\" : [ 1,\r\n 2 ],\n \"b\":\"\\n\"\n}")},
		{"nested raw message", "qj", epoch0, map[string]json.RawMessage{"inner": json.RawMessage("{ \"k\" :\n true }")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBus(Params{Now: func() time.Time { return tt.at }})
			defer b.Close()
			ev, err := b.Publish(TypeDevice, tt.org, tt.data)
			if err != nil {
				t.Fatal(err)
			}
			whole, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			want := "id: " + ev.ID + "\nevent: device\ndata: " + string(whole) + "\n\n"
			if string(ev.frame) != want {
				t.Fatalf("frame\n%q\nwant\n%q", ev.frame, want)
			}
			if strings.Count(string(ev.frame), "\n") != 4 || bytes.ContainsRune(ev.frame, '\r') {
				t.Fatalf("frame has stray line breaks: %q", ev.frame)
			}
			// Data is the payload as json.Marshal makes it.
			if plain, _ := json.Marshal(tt.data); !bytes.Equal(ev.Data, plain) {
				t.Fatalf("data %s, want %s", ev.Data, plain)
			}
			// An event without a frame is encoded the same way.
			bare := ev
			bare.frame = nil
			got, err := appendFrame(nil, &bare)
			if err != nil || string(got) != want {
				t.Fatalf("appendFrame without frame: %q, %v", got, err)
			}
			// Appending to Data cannot write into the frame.
			_ = append(ev.Data, '!')
			if string(ev.frame) != want {
				t.Fatal("appending to Data changed the frame")
			}
		})
	}
}

// An Event made outside the bus is refused if it could break the stream.
func TestAppendFrameRefusesUnsafeEvents(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
	}{
		{"newline in id", Event{ID: "1-1\nevent: x", Type: TypeAlert, Data: json.RawMessage(`{}`)}},
		{"newline in type", Event{ID: "1-1", Type: "alert\n", Data: json.RawMessage(`{}`)}},
		{"reserved type", Event{ID: "1-1", Type: "gap", Data: json.RawMessage(`{}`)}},
		{"invalid data", Event{ID: "1-1", Type: TypeAlert, Data: json.RawMessage(`{"a":`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := appendFrame(nil, &tt.ev); err == nil {
				t.Fatalf("encoded as %q", got)
			}
		})
	}
	// Indented data is compacted onto one line.
	ev := Event{ID: "1-1", Type: TypeAlert, Data: json.RawMessage("{\n\"a\": 1\n}")}
	got, err := appendFrame(nil, &ev)
	if err != nil || strings.Count(string(got), "\n") != 4 {
		t.Fatalf("got %q, %v", got, err)
	}
}
