package source

import (
	"sync"
	"sync/atomic"
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

// A viewer's keyframe request: an H.264 viewer is sent the cached group of
// pictures again (its browser knows frames by sequence number, and decodes
// the replay); a VP8 viewer is not (its browser knows them by picture id,
// and would drop the replay as frames it decoded already), and its request
// goes to the publisher, whose next keyframe restarts it.
func TestKeyframeRequestReplaysOnlyWhereABrowserDecodesIt(t *testing.T) {
	vp8 := func(key bool) []byte {
		if key {
			return []byte{0x10, 0x00, 0xaa} // S, partition 0; P bit 0: a keyframe
		}
		return []byte{0x10, 0x01, 0xbb}
	}
	h264 := func(key bool) []byte {
		if key {
			return nalu(5, 300)
		}
		return nalu(1, 300)
	}
	for _, tc := range []struct {
		codec   string
		params  [][]byte
		payload func(key bool) []byte
		// packets the viewer gets before the last frame: the start's
		// replay, then the frame after the request (VP8), or the
		// request's replay, which ends with that frame (H.264)
		want int
	}{
		{VP8, nil, vp8, 2 + 1},
		{H264, [][]byte{nil, sps, pps}, h264, 3 + 4},
	} {
		t.Run(tc.codec, func(t *testing.T) {
			s := New()
			defer s.Close()
			var asked atomic.Int32
			s.RequestKeyframe = func() { asked.Add(1) }
			s.Start(tc.codec, tc.params)
			seq, ts := uint16(0), uint32(0)
			write := func(key bool) {
				seq++
				ts += 3000
				s.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts, Marker: true}, Payload: tc.payload(key)})
			}
			write(true)
			write(false)
			rec := &recorder{}
			v, err := s.AddViewer(rec.write)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			start := len(rec.wait(t, 2)) // the cache: (parameter sets,) keyframe, frame
			v.RequestKeyframe()
			write(false)
			write(false) // the last: what came before it has come
			got := rec.wait(t, tc.want+1)
			for len(got) == 0 || got[len(got)-1].Timestamp != ts {
				got = rec.wait(t, len(got)+1)
			}
			if len(got) != tc.want+1 {
				t.Fatalf("%d packets after a start of %d, want %d", len(got), start, tc.want+1)
			}
			if asked.Load() != 1 {
				t.Fatalf("the publisher was asked %d times, want once", asked.Load())
			}
			for i, p := range got {
				if p.SequenceNumber != uint16(i) {
					t.Fatalf("packet %d has sequence number %d", i, p.SequenceNumber)
				}
			}
		})
	}
}
