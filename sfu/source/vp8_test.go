package source

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func TestIsVP8Keyframe(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload []byte
		want    bool
	}{
		{"keyframe, no extension", []byte{0x10, 0x00}, true},
		{"interframe", []byte{0x10, 0x01}, false},
		{"not the start of a partition", []byte{0x00, 0x00}, false},
		{"partition 1", []byte{0x11, 0x00}, false},
		{"keyframe with a 15-bit picture id", []byte{0x90, 0x80, 0x81, 0x02, 0x00}, true},
		{"keyframe with a 7-bit picture id, TL0PICIDX and TID", []byte{0x90, 0xe0, 0x05, 0x07, 0x20, 0x00}, true},
		{"cut short in the extension", []byte{0x90, 0x80}, false},
		{"empty", nil, false},
	} {
		if got := IsVP8Keyframe(tc.payload); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A VP8 source (a meeting participant's) caches from its keyframe, so a
// viewer that comes later starts there, and passes packets as they are.
func TestVP8SourceStartsViewersAtTheKeyframe(t *testing.T) {
	s := New()
	defer s.Close()
	s.Start(VP8, nil)
	write := func(seq uint16, ts uint32, payload ...byte) {
		s.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts, Marker: true}, Payload: payload})
	}
	write(1, 3000, 0x10, 0x01) // an interframe before any keyframe: nothing to start from
	write(9, 3000)             // padding: no payload, nothing forwarded
	s.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 10}, Payload: make([]byte, MaxPayload+1)})
	write(2, 6000, 0x10, 0x00, 0xaa) // the keyframe
	write(3, 9000, 0x10, 0x01, 0xbb) // and the frame after it
	if st := s.Stats(); st.Keyframes != 1 || st.CachedPackets != 2 || st.Oversized != 1 {
		t.Fatalf("stats %+v, want one keyframe, two cached packets and one oversized", st)
	}
	var mu sync.Mutex
	var got [][]byte
	v, err := s.AddViewer(func(p *rtp.Packet) error {
		mu.Lock()
		got = append(got, append([]byte(nil), p.Payload...))
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	write(4, 12000, 0x10, 0x01, 0xcc)
	for end := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 3 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the viewer got %d packets, want 3", n)
		}
	}
	v.Close()
	if got[0][2] != 0xaa || got[1][2] != 0xbb || got[2][2] != 0xcc {
		t.Fatalf("the viewer got %x", got)
	}
}
