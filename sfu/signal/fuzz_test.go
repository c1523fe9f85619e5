package signal

import (
	"errors"
	"testing"
)

// FuzzDecode: any input decodes to a message of a known type or to an
// *Error with a code and a message; never a panic.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"join","token":"a.b.c"}`,
		`{"type":"offer","sdp":"v=0\r\n","tracks":{"t":"camera"}}`,
		`{"type":"candidate","target":"publisher","candidate":"candidate:1 1 udp 1 1.2.3.4 5 typ host","sdp_mline_index":0}`,
		`{"type":"host","action":"mute","identity":"x","kind":"video"}`,
		`{"type":"host","action":"admit","identity":"resident"}`,
		`{"type":"host","action":"reject"}`,
		`{"type":"layer","identity":"x","quality":"off"}`,
		`{"type":"chat","text":"hi"}`,
		`{"type":"ping"}{}`,
		`{"type":null}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code == "" || e.Message == "" {
				t.Fatalf("Decode(%q) error %v is not a coded *Error", data, err)
			}
			return
		}
		if _, ok := fields[m.Type]; !ok {
			t.Fatalf("Decode(%q) gave unknown type %q", data, m.Type)
		}
	})
}
