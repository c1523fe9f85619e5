package meeting

import (
	"encoding/binary"
	"net"
	"runtime"
	"sync"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/lookout-cc/lookout/sfu/bwe"
)

// nopWriter stands in for a subscriber connection's write stream (SRTP
// and the socket are pion's, measured in lookout-bench meeting).
// It keeps the last transport-wide sequence number written.
type nopWriter struct {
	n    int
	twcc uint16
}

// benchTWCCID is the transport-wide sequence number's extension id.
const benchTWCCID = 5

func (w *nopWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.n += len(payload)
	if ext := h.GetExtension(benchTWCCID); len(ext) == 2 {
		w.twcc = binary.BigEndian.Uint16(ext)
	}
	return len(payload), nil
}

func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }

func benchTrack(subscribers int) (*upTrack, []*downTrack) {
	return benchTrackOn(subscribers, nil)
}

// benchTrackOn is benchTrack forwarding through fan.
func benchTrackOn(subscribers int, fan *fanout) (*upTrack, []*downTrack) {
	u := &upTrack{kind: webrtc.RTPCodecTypeVideo, codec: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, simulcast: true, fan: fan}
	u.downs.Store(&[]*downTrack{})
	downs := make([]*downTrack, subscribers)
	for i := range downs {
		sub := &participant{bwe: bwe.New(linkConfig)} // each subscriber numbers its own packets
		d := &downTrack{up: u, sub: sub, est: sub.bwe, ws: &nopWriter{}, ssrc: uint32(i + 1), pt: 96, current: layerOff, target: layerHigh,
			sent: &sentLog{}, rtxBuf: make([]byte, 0, historySlotSize+2), twccID: benchTWCCID}
		downs[i] = d
		u.addDown(d)
	}
	return u, downs
}

// forward is the read loop's body after the packet was read: keyframe
// detection and the write to every subscriber.
func forward(u *upTrack, layer int, p *rtp.Packet, now int64) {
	u.deliver(layer, p, isVP8Keyframe(p.Payload), now, &forwarded)
}

// forwarded is the tests' reader's wait group (they forward from one
// goroutine).
var forwarded sync.WaitGroup

// BenchmarkForwardPacket: one video packet of the high layer to one
// subscriber, the other layers' packets dropped as they come.
func BenchmarkForwardPacket(b *testing.B) {
	u, _ := benchTrack(1)
	benchForward(b, u)
}

// BenchmarkForwardPacket200: one packet to 200 subscribers, in the reader.
func BenchmarkForwardPacket200(b *testing.B) {
	u, _ := benchTrack(200)
	benchForward(b, u)
}

// BenchmarkForwardPacket200Fanout: the same on every core.
func BenchmarkForwardPacket200Fanout(b *testing.B) {
	fan := newFanout(runtime.GOMAXPROCS(0) - 1)
	defer fan.stop()
	u, _ := benchTrackOn(200, fan)
	benchForward(b, u)
}

func benchForward(b *testing.B, u *upTrack) {
	payload := make([]byte, 1100)
	payload[0] = 0x10
	p := &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1234, PayloadType: 100, Extension: true, ExtensionProfile: 0xBEDE}, Payload: payload}
	_ = p.Header.SetExtension(3, []byte{1, 2})
	forward(u, layerHigh, p, 0) // the keyframe that starts the subscribers
	payload[1] = 0x01
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.SequenceNumber++
		p.Timestamp += 3000
		forward(u, i%numLayers, p, int64(i)*33_000_000)
	}
}

// The forwarding path makes no allocation per packet, in the reader and
// through the fan-out's workers; every subscriber gets every packet.
func TestForwardMakesNoAllocation(t *testing.T) {
	for _, tc := range []struct {
		name        string
		subscribers int
		workers     int
	}{{"reader", 8, 0}, {"fan-out", 4 * fanoutPart, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			fan := newFanout(tc.workers)
			defer fan.stop()
			u, downs := benchTrackOn(tc.subscribers, fan)
			payload := make([]byte, 1000)
			payload[0] = 0x10
			p := &rtp.Packet{Header: rtp.Header{Version: 2}, Payload: payload}
			forward(u, layerLow, p, 0) // each layer's history is made at its first packet
			forward(u, layerHigh, p, 0)
			payload[1] = 0x01
			var seq uint16
			allocs := testing.AllocsPerRun(1000, func() {
				seq++
				p.SequenceNumber = seq
				forward(u, layerHigh, p, int64(seq))
				forward(u, layerLow, p, int64(seq))
			})
			if allocs != 0 {
				t.Fatalf("%.1f allocations per packet", allocs)
			}
			for _, d := range downs {
				// The keyframe, AllocsPerRun's warm-up run and its 1000.
				if n := d.packets.Load(); n != 1002 || d.ws.(*nopWriter).n != 1002*len(payload) {
					t.Fatalf("subscriber got %d packets", n)
				}
				if seq := d.ws.(*nopWriter).twcc; seq != 1001 {
					t.Fatalf("the last packet's transport-wide number is %d, want 1001", seq)
				}
			}
		})
	}
}

// Layer switching: packets of the target layer are taken from its
// keyframe on, and the sequence numbers and timestamps go on without a
// gap.
func TestDownTrackSwitchesAtKeyframe(t *testing.T) {
	u, downs := benchTrack(1)
	d := downs[0]
	var out []rtp.Header
	d.ws = writerFunc(func(h *rtp.Header, _ []byte) { out = append(out, *h) })
	d.target = layerLow
	pkt := func(seq uint16, ts uint32, key bool) *rtp.Packet {
		pl := []byte{0x10, 0x01, 0}
		if key {
			pl[1] = 0
		}
		return &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts}, Payload: pl}
	}
	d.write(layerLow, pkt(100, 1000, false), false, 0)               // no keyframe yet: dropped
	d.write(layerLow, pkt(101, 4000, true), true, 0)                 // starts
	d.write(layerLow, pkt(102, 7000, false), false, 33_000_000)      // follows
	d.write(layerHigh, pkt(5000, 900000, true), true, 33_000_000)    // not the target: dropped
	d.target = layerHigh                                             // (the allocator's step, without a keyframe request)
	d.write(layerLow, pkt(103, 10000, false), false, 66_000_000)     // low goes on until high's keyframe
	d.write(layerHigh, pkt(5001, 903000, false), false, 66_000_000)  // not a keyframe: dropped
	d.write(layerHigh, pkt(5002, 906000, true), true, 99_000_000)    // switch
	d.write(layerLow, pkt(104, 13000, false), false, 99_000_000)     // low no longer
	d.write(layerHigh, pkt(5003, 909000, false), false, 132_000_000) // follows
	_ = u
	if len(out) != 5 {
		t.Fatalf("%d packets sent, want 5: %+v", len(out), out)
	}
	for i := 1; i < len(out); i++ {
		if out[i].SequenceNumber != out[i-1].SequenceNumber+1 {
			t.Fatalf("sequence gap at %d: %d then %d", i, out[i-1].SequenceNumber, out[i].SequenceNumber)
		}
		if dt := out[i].Timestamp - out[i-1].Timestamp; dt == 0 || dt > 3100 {
			t.Fatalf("timestamp step %d at %d", dt, i)
		}
	}
	// The publisher's extensions are gone; the subscriber connection's
	// transport-wide number is the one carried.
	if out[0].SSRC != d.ssrc || out[0].PayloadType != d.pt || len(out[0].Extensions) != 1 || len(out[0].GetExtension(benchTWCCID)) != 2 {
		t.Fatalf("header not rewritten: %+v", out[0])
	}
}

type writerFunc func(*rtp.Header, []byte)

func (f writerFunc) WriteRTP(h *rtp.Header, p []byte) (int, error) { f(h, p); return len(p), nil }
func (f writerFunc) Write(b []byte) (int, error)                   { return len(b), nil }

// A layer forwarded for longer than half the sequence space (over 32,768
// packets, some minutes of video) keeps going; a packet far behind the
// newest is dropped, one a little late goes out in its place.
func TestDownTrackLongRunAndLatePackets(t *testing.T) {
	_, downs := benchTrack(1)
	d := downs[0]
	var sent int
	var lastSeq uint16
	d.ws = writerFunc(func(h *rtp.Header, _ []byte) { sent++; lastSeq = h.SequenceNumber })
	d.target = layerLow
	p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 40000}, Payload: []byte{0x10, 0, 0}}
	d.write(layerLow, p, true, 0)
	p.Payload[1] = 1
	for i := 1; i <= 100_000; i++ {
		p.SequenceNumber++
		d.write(layerLow, p, false, int64(i))
	}
	if sent != 100_001 {
		t.Fatalf("%d of 100001 packets forwarded", sent)
	}
	newest := lastSeq
	p.SequenceNumber -= 10 // a retransmission, a little late
	d.write(layerLow, p, false, 0)
	if sent != 100_002 || lastSeq != newest-10 {
		t.Fatalf("a late packet: sent %d, as %d (newest %d)", sent, lastSeq, newest)
	}
	p.SequenceNumber -= 5000 // far behind
	d.write(layerLow, p, false, 0)
	if sent != 100_002 {
		t.Fatal("a packet 5000 behind was forwarded")
	}
}

// udpWriter writes each packet to a UDP socket, as a subscriber's
// connection ends (without SRTP and pion's interceptors), to a reader
// that discards it.
type udpWriter struct {
	conn *net.UDPConn
	buf  []byte
}

func (w *udpWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	n, err := h.MarshalTo(w.buf)
	if err != nil {
		return 0, err
	}
	n += copy(w.buf[n:], payload)
	return w.conn.Write(w.buf[:n])
}

func (w *udpWriter) Write(b []byte) (int, error) { return w.conn.Write(b) }

// benchForwardUDP is benchForward with every subscriber writing to a
// socket: the part of a write that the fan-out's workers share.
func benchForwardUDP(b *testing.B, workers int) {
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, err := sink.Read(buf); err != nil {
				return
			}
		}
	}()
	fan := newFanout(workers)
	defer fan.stop()
	u, downs := benchTrackOn(200, fan)
	for _, d := range downs {
		c, err := net.DialUDP("udp4", nil, sink.LocalAddr().(*net.UDPAddr))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		d.ws = &udpWriter{conn: c, buf: make([]byte, 1500)}
	}
	benchForward(b, u)
}

// BenchmarkForwardPacket200UDP: one packet to 200 subscribers' sockets,
// in the reader; BenchmarkForwardPacket200UDPFanout: on every core.
func BenchmarkForwardPacket200UDP(b *testing.B)       { benchForwardUDP(b, 0) }
func BenchmarkForwardPacket200UDPFanout(b *testing.B) { benchForwardUDP(b, runtime.GOMAXPROCS(0)-1) }
