package source

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	sps = []byte{0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8}
	pps = []byte{0x68, 0xce, 0x3c, 0x80}
)

// nalu makes an H.264 NAL unit of type t and n bytes: a slice is its
// picture's first (first_mb_in_slice 0).
func nalu(t byte, n int) []byte {
	b := make([]byte, n)
	b[0] = 0x60 | t
	for i := 1; i < n; i++ {
		b[i] = byte(i)
	}
	b[1] = 0x88
	return b
}

func TestSplitKeepsEveryByte(t *testing.T) {
	for _, tc := range []struct {
		name  string
		codec string
		in    []byte
	}{
		{"small single", H264, nalu(1, 500)},
		{"large single", H264, nalu(5, 5000)},
		{"large FU-A (start and end)", H264, append([]byte{0x7c, 0xc5}, bytes.Repeat([]byte{9}, 3000)...)},
		{"large STAP-A", H264, append([]byte{0x78, 0x03, 0xe8}, append(nalu(1, 1000), append([]byte{0x03, 0xe8}, nalu(1, 1000)...)...)...)},
		{"large H.265 single", H265, append([]byte{19 << 1, 1}, bytes.Repeat([]byte{7}, 4000)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pieces [][]byte
			lasts := 0
			split(tc.codec, tc.in, MaxPayload, make([]byte, MaxPayload), pieceFunc(func(p []byte, last bool) {
				if len(p) > MaxPayload {
					t.Fatalf("piece of %d bytes", len(p))
				}
				pieces = append(pieces, append([]byte(nil), p...))
				if last {
					lasts++
				}
			}), true)
			if lasts != 1 {
				t.Fatalf("%d last pieces", lasts)
			}
			// Put the fragments back together: the NAL units are intact.
			got := reassemble(t, tc.codec, pieces)
			want := units(tc.codec, tc.in)
			if len(got) != len(want) {
				t.Fatalf("%d units, want %d", len(got), len(want))
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("unit %d differs", i)
				}
			}
		})
	}
}

type pieceFunc func([]byte, bool)

func (f pieceFunc) piece(p []byte, last bool) { f(p, last) }

// units lists the NAL units a payload carries (a fragment stands for the
// unit it starts, with the unit header rebuilt).
func units(codec string, payload []byte) [][]byte {
	switch t := naluType(codec, payload); {
	case codec == H264 && t == h264STAPA:
		var out [][]byte
		for n, rest, ok := nextUnit(payload[1:]); ok; n, rest, ok = nextUnit(rest) {
			out = append(out, n)
		}
		return out
	case codec == H264 && t == h264FUA:
		return [][]byte{append([]byte{payload[0]&0xe0 | payload[1]&0x1f}, payload[2:]...)}
	default:
		return [][]byte{payload}
	}
}

func reassemble(t *testing.T, codec string, pieces [][]byte) [][]byte {
	t.Helper()
	var out [][]byte
	var cur []byte
	for _, p := range pieces {
		nt := naluType(codec, p)
		switch {
		case codec == H264 && nt == h264FUA:
			if p[1]&0x80 != 0 {
				cur = []byte{p[0]&0xe0 | p[1]&0x1f}
			}
			cur = append(cur, p[2:]...)
			if p[1]&0x40 != 0 {
				out = append(out, cur)
			}
		case codec == H265 && nt == h265FU:
			if p[2]&0x80 != 0 {
				cur = []byte{p[0]&0x81 | (p[2]&0x3f)<<1, p[1]}
			}
			cur = append(cur, p[3:]...)
			if p[2]&0x40 != 0 {
				out = append(out, cur)
			}
		default:
			out = append(out, p)
		}
	}
	return out
}

// recorder is a viewer's output.
type recorder struct {
	mu    sync.Mutex
	pkts  []rtp.Packet
	block chan struct{} // when set, writes wait on it
}

func (r *recorder) write(p *rtp.Packet) error {
	if r.block != nil {
		<-r.block
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := *p
	c.Payload = append([]byte(nil), p.Payload...)
	r.pkts = append(r.pkts, c)
	return nil
}

func (r *recorder) wait(t *testing.T, n int) []rtp.Packet {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		r.mu.Lock()
		got := append([]rtp.Packet(nil), r.pkts...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d packets, want %d", len(got), n)
		}
	}
}

// camera writes frames to a source as an H.264 camera would.
type camera struct {
	src *Source
	seq uint16
	ts  uint32
}

func (c *camera) frame(key bool, size int) {
	t := byte(1)
	if key {
		t = 5
	}
	c.ts += 3600
	payload := nalu(t, size)
	c.seq++
	c.src.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: c.seq, Timestamp: c.ts, SSRC: 7, Marker: true}, Payload: payload})
}

func TestNewViewerGetsTheCachedKeyframeAtOnce(t *testing.T) {
	src := New()
	defer src.Close()
	src.Start(H264, [][]byte{nil, sps, pps})
	cam := &camera{src: src}
	early := &recorder{}
	v0, _ := src.AddViewer(early.write)
	cam.frame(false, 300) // no keyframe yet: nothing to show
	cam.frame(true, 3000) // a keyframe, split in three
	cam.frame(false, 400)
	cam.frame(false, 400)

	late := &recorder{}
	v1, err := src.AddViewer(late.write)
	if err != nil {
		t.Fatal(err)
	}
	got := late.wait(t, 6) // parameter sets, three pieces of the keyframe, two frames
	first := got[0]
	if naluType(H264, first.Payload) != h264STAPA || !bytes.Contains(first.Payload, sps) || !bytes.Contains(first.Payload, pps) {
		t.Fatalf("first packet is not the parameter sets: % x", first.Payload[:8])
	}
	for i, p := range got {
		if p.SequenceNumber != uint16(i) {
			t.Fatalf("packet %d has sequence number %d", i, p.SequenceNumber)
		}
		if len(p.Payload) > MaxPayload {
			t.Fatalf("packet %d: %d bytes", i, len(p.Payload))
		}
	}
	// The replay's timestamps end at the newest frame's, so the browser
	// shows it at once rather than replaying the seconds before it.
	if got[5].Timestamp != cam.ts+src.tsOffset || got[0].Timestamp != got[5].Timestamp-2 || got[4].Timestamp != got[5].Timestamp-1 {
		t.Fatalf("replayed timestamps: %d %d %d (newest %d)", got[0].Timestamp, got[4].Timestamp, got[5].Timestamp, cam.ts)
	}
	if e := early.wait(t, 6); len(e) != 6 || e[0].SequenceNumber != 0 {
		t.Fatalf("the first viewer started at a keyframe: %d packets", len(e))
	}
	v0.Close()
	v1.Close()
	if src.Viewers() != 0 {
		t.Fatal("viewers left")
	}
}

func TestSlowViewerDropsAndResyncsWithoutStallingOthers(t *testing.T) {
	src := New()
	defer src.Close()
	src.Start(H264, [][]byte{nil, sps, pps})
	cam := &camera{src: src}
	fast := &recorder{}
	slow := &recorder{block: make(chan struct{})}
	vf, _ := src.AddViewer(fast.write)
	vs, _ := src.AddViewer(slow.write)
	defer vf.Close()
	frames := QueueLen + 200
	done := make(chan struct{})
	go func() {
		defer close(done)
		cam.frame(true, 500)
		for i := 0; i < frames; i++ {
			cam.frame(i%50 == 49, 500) // a keyframe every 50 frames
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the camera was held up by a slow viewer")
	}
	fast.wait(t, frames+1)
	if vs.Stats().Dropped == 0 {
		t.Fatal("the slow viewer dropped nothing")
	}
	close(slow.block) // it catches up
	cam.frame(false, 500)
	cam.frame(true, 500)
	got := slow.wait(t, 10)
	vs.Close()
	got = slow.wait(t, len(got))
	for i, p := range got {
		if p.SequenceNumber != uint16(i) {
			t.Fatalf("slow viewer: packet %d has sequence number %d: a gap", i, p.SequenceNumber)
		}
	}
}

// A keyframe of several slices starts once, at its first slice: the
// cache keeps every slice, with the parameter sets before the first only.
func TestKeyframeOfSeveralSlices(t *testing.T) {
	src := New()
	defer src.Close()
	src.Start(H264, [][]byte{nil, sps, pps})
	rec := &recorder{}
	v, _ := src.AddViewer(rec.write)
	defer v.Close()
	second := nalu(5, 300)
	second[1] = 0x12 // first_mb_in_slice > 0: the picture's second slice
	for i, payload := range [][]byte{nalu(5, 300), second} {
		src.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: 3600, Marker: i == 1}, Payload: payload})
	}
	got := rec.wait(t, 3)
	if len(got) != 3 || got[0].Payload[0]&0x1f != 24 || got[1].Payload[0]&0x1f != 5 || got[2].Payload[0]&0x1f != 5 {
		t.Fatalf("%d packets", len(got))
	}
	if st := src.Stats(); st.Keyframes != 1 || st.CachedPackets != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCameraRestartKeepsTimestampsRunning(t *testing.T) {
	src := New()
	defer src.Close()
	src.Start(H264, [][]byte{nil, sps, pps})
	rec := &recorder{}
	v, _ := src.AddViewer(rec.write)
	defer v.Close()
	cam := &camera{src: src, ts: 1_000_000}
	cam.frame(true, 100)
	src.Stop()
	cam.frame(false, 100) // after Stop: ignored
	src.Start(H264, nil)
	cam2 := &camera{src: src, ts: 5} // the camera's clock starts over
	cam2.frame(true, 100)
	got := rec.wait(t, 4)
	if d := got[2].Timestamp - got[1].Timestamp; d > clockRate {
		t.Fatalf("timestamp jumped by %d", d)
	}
}

func TestWriteErrorEndsTheViewer(t *testing.T) {
	src := New()
	defer src.Close()
	src.Start(H264, [][]byte{nil, sps, pps})
	v, _ := src.AddViewer(func(*rtp.Packet) error { return errors.New("gone") })
	(&camera{src: src}).frame(true, 100)
	for deadline := time.Now().Add(5 * time.Second); src.Viewers() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the viewer stayed")
		}
	}
	if v.Err() == nil {
		t.Fatal("no error")
	}
}

// The path from the camera to the viewers allocates nothing per packet.
func TestNoAllocationPerPacket(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	src := New()
	defer src.Close()
	src.Start(H264, [][]byte{nil, sps, pps})
	for range 4 {
		v, _ := src.AddViewer(func(*rtp.Packet) error { return nil })
		defer v.Close()
	}
	payload := nalu(1, 1000)
	key := nalu(5, 1000)
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 7, Marker: true}, Payload: payload}
	n := 0
	allocs := testing.AllocsPerRun(2000, func() {
		n++
		pkt.SequenceNumber++
		pkt.Timestamp += 3600
		pkt.Payload = payload
		if n%50 == 0 {
			pkt.Payload = key
		}
		src.WriteRTP(pkt)
	})
	if allocs > 0.05 {
		t.Fatalf("%.2f allocations per packet", allocs)
	}
}

func BenchmarkWriteRTP(b *testing.B) {
	for _, viewers := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("%d-viewers", viewers), func(b *testing.B) {
			src := New()
			defer src.Close()
			src.Start(H264, [][]byte{nil, sps, pps})
			for range viewers {
				v, _ := src.AddViewer(func(*rtp.Packet) error { return nil })
				defer v.Close()
			}
			payload, key := nalu(1, 1100), nalu(5, 1100)
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 7, Marker: true}, Payload: payload}
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			n := 0
			for b.Loop() {
				pkt.SequenceNumber++
				pkt.Timestamp += 3600
				pkt.Payload = payload
				if n%50 == 0 { // a keyframe every 50 packets, so viewers receive
					pkt.Payload = key
				}
				n++
				src.WriteRTP(pkt)
			}
		})
	}
}
