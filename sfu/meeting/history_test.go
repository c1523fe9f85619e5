package meeting

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/lookout-cc/lookout/sfu/signal"
)

// A subscriber's NACK is answered from the published layer's history, on
// the RTX stream (the original sequence number before the payload), for
// the packets the subscriber got under those numbers, across a layer
// switch; numbers never sent or gone from the history get nothing.
func TestRetransmissionFromTheSharedHistory(t *testing.T) {
	for _, rtx := range []bool{true, false} {
		u, downs := benchTrack(1)
		d := downs[0]
		type sent struct {
			hdr     rtp.Header
			payload []byte
		}
		var out []sent
		d.ws = writerFunc(func(h *rtp.Header, p []byte) { out = append(out, sent{*h, append([]byte(nil), p...)}) })
		if rtx {
			d.rtxSSRC, d.rtxPT = 9999, 97
		}
		d.target = layerLow
		pkt := func(seq uint16, key bool, fill byte) *rtp.Packet {
			pl := bytes.Repeat([]byte{fill}, 40)
			pl[0], pl[1] = 0x10, 0x01
			if key {
				pl[1] = 0
			}
			return &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 3000}, Payload: pl}
		}
		forward(u, layerLow, pkt(100, true, 1), 0)
		forward(u, layerLow, pkt(101, false, 2), 0)
		d.target = layerHigh
		forward(u, layerHigh, pkt(7000, true, 3), 0) // the switch
		forward(u, layerHigh, pkt(7001, false, 4), 0)
		if len(out) != 4 {
			t.Fatalf("%d packets forwarded", len(out))
		}
		first := out[0].hdr.SequenceNumber
		out = out[:0]
		// Lost: the second low packet and the first high one; and a
		// number never sent.
		n := d.retransmit(&rtcp.TransportLayerNack{Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{first + 1, first + 2, first + 40})})
		if !rtx {
			// Without RTX nothing is resent (the same SRTP index would be
			// encrypted again under another header).
			if n != 0 || len(out) != 0 {
				t.Fatalf("without RTX: %d resent", n)
			}
			continue
		}
		if n != 2 || len(out) != 2 {
			t.Fatalf("rtx %v: %d resent, %d written", rtx, n, len(out))
		}
		for i, want := range []struct {
			seq  uint16
			fill byte
		}{{first + 1, 2}, {first + 2, 3}} {
			h, p := out[i].hdr, out[i].payload
			if h.SSRC != 9999 || h.PayloadType != 97 || h.SequenceNumber != uint16(i) || binary.BigEndian.Uint16(p) != want.seq {
				t.Fatalf("rtx packet %d: %+v osn %d", i, h, binary.BigEndian.Uint16(p))
			}
			p = p[2:]
			if len(p) != 40 || p[5] != want.fill {
				t.Fatalf("packet %d payload % x", i, p)
			}
		}
		// Timestamps are the subscriber's, as first sent.
		if out[1].hdr.Timestamp == 7000*3000 {
			t.Fatal("the high layer's own timestamp resent")
		}
		// Asked again within three quarters of the round trip, nothing
		// is resent (the ask crossed the retransmission); once past, it is.
		d.remote.rttMicros.Store(int64(time.Hour / time.Microsecond))
		if n := d.retransmit(&rtcp.TransportLayerNack{Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{first + 1})}); n != 0 {
			t.Fatalf("resent again within the round trip: %d", n)
		}
		d.remote.rttMicros.Store(0)
		if n := d.retransmit(&rtcp.TransportLayerNack{Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{first + 1})}); n != 1 {
			t.Fatalf("not resent again with no round trip known: %d", n)
		}
		// The history keeps historySize packets of a layer: older ones
		// are gone.
		for s := uint16(7002); s < 7002+historySize; s++ {
			forward(u, layerHigh, pkt(s, false, 5), 0)
		}
		out = out[:0]
		if n := d.retransmit(&rtcp.TransportLayerNack{Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{first + 2})}); n != 0 {
			t.Fatalf("a packet past the history resent: %d", n)
		}
	}
}

// lossyLink drops every 15th RTP packet arriving at a subscriber (media
// and retransmissions alike); ICE, DTLS and RTCP pass.
type lossyLink struct {
	net.PacketConn
	n, dropped atomic.Int64
}

func (l *lossyLink) wrap(pc net.PacketConn) net.PacketConn { l.PacketConn = pc; return l }

func (l *lossyLink) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := l.PacketConn.ReadFrom(b)
		rtpPacket := err == nil && n >= 2 && b[0] >= 128 && b[0] <= 191 && !(b[1] >= 192 && b[1] <= 223)
		if rtpPacket && l.n.Add(1)%15 == 0 {
			l.dropped.Add(1)
			continue
		}
		return n, addr, err
	}
}

// A subscriber behind a link that loses one packet in 15 gets its video
// whole: its NACKs are answered on the RTX stream from the published
// layer's history.
func TestLostPacketsAreRetransmitted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.join("alice", memberRights)
	alice.publish(false)
	bob := e.dial("bob")
	var link lossyLink
	bob.subFilter = link.wrap
	bob.send(map[string]any{"type": "join", "token": e.token("bob", memberRights)})
	bob.wait("joined", isType(signal.TypeJoined))
	// Enough video for some 30 losses, and their retransmissions.
	bob.waitPackets("alice-camera", 450, 20*time.Second)

	distinct, span := bob.seqLogOf("alice-camera").counts()
	// The newest packets may still be on their way back.
	if link.dropped.Load() < 20 || distinct < span-10 {
		t.Fatalf("%d packets dropped on the link; %d of %d video packets received", link.dropped.Load(), distinct, span)
	}
	if metricValue(t, e, "lookout_meeting_nacks_total", "bob", "") == 0 {
		t.Fatal("no NACKs counted")
	}
}

// Each layer keeps its own number of packets, across the sequence
// numbers' wrap.
func TestPacketHistorySlots(t *testing.T) {
	for layer, slots := range historySlots {
		var h packetHistory
		if _, ok := h.appendPayload(nil, 1); ok {
			t.Fatal("a packet from an empty history")
		}
		start := uint16(65536 - 100)
		n := slots + 150
		for i := range n {
			h.add(start+uint16(i), []byte{byte(i), byte(i >> 8)}, slots)
		}
		for i := range n {
			got, ok := h.appendPayload(nil, start+uint16(i))
			if want := i >= n-slots; ok != want || ok && (got[0] != byte(i) || got[1] != byte(i>>8)) {
				t.Fatalf("layer %d, packet %d of %d: kept %v (%v)", layer, i, n, ok, got)
			}
		}
	}
}

// A copy of a packet forwarded already (a browser's bandwidth probe sends
// old packets again over RTX) is not forwarded again; a late packet
// never seen (a repair of a loss) is.
func TestDuplicatePacketsNotForwarded(t *testing.T) {
	u, downs := benchTrack(1)
	d := downs[0]
	d.target = layerLow
	var got []uint16
	d.ws = writerFunc(func(h *rtp.Header, _ []byte) { got = append(got, h.SequenceNumber) })
	pkt := func(seq uint16, key bool) *rtp.Packet {
		pl := []byte{0x10, 0x01, 0, 0}
		if key {
			pl[1] = 0
		}
		return &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 3000}, Payload: pl}
	}
	for _, step := range []struct {
		seq uint16
		key bool
	}{{100, true}, {101, false}, {100, true}, {101, false}, {103, false}, {102, false}, {103, false}, {102, false}} {
		forward(u, layerLow, pkt(step.seq, step.key), 0)
	}
	if want := []uint16{100, 101, 103, 102}; !slices.Equal(got, want) {
		t.Fatalf("forwarded %v, want %v", got, want)
	}
}

// A packet far older than the one in its slot does not replace it.
func TestPacketHistoryKeepsTheNewer(t *testing.T) {
	var h packetHistory
	h.add(1000, []byte{1}, 128)
	h.add(1000-128, []byte{2}, 128) // the same slot, 128 numbers older
	if p, ok := h.appendPayload(nil, 1000); !ok || p[0] != 1 {
		t.Fatalf("the newer packet: %v %v", p, ok)
	}
	if _, ok := h.appendPayload(nil, 1000-128); ok {
		t.Fatal("the older one kept")
	}
}

// uplinkLoss drops every 15th VP8 packet a publisher sends (every
// every-th, if set; payload type 96: its retransmissions, on RTX's 97,
// pass), and notes which.
type uplinkLoss struct {
	net.PacketConn
	every   atomic.Int64
	n       atomic.Int64
	mu      sync.Mutex
	dropped map[uint16]time.Time // when
	// seen is when the SFU could know of each loss: when a later
	// packet of the stream was sent.
	seen    map[uint16]time.Time
	unknown []uint16  // losses no later packet followed yet
	last    time.Time // the last VP8 packet written, dropped or not
}

// quietFor says whether no VP8 packet was written for d.
func (l *uplinkLoss) quietFor(d time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.last.IsZero() && time.Since(l.last) >= d
}

func (l *uplinkLoss) wrap(pc net.PacketConn) net.PacketConn { l.PacketConn = pc; return l }

func (l *uplinkLoss) WriteTo(b []byte, addr net.Addr) (int, error) {
	every := l.every.Load()
	if every == 0 {
		every = 15
	}
	if len(b) >= 12 && b[0] >= 128 && b[0] <= 191 && b[1]&0x7f == 96 {
		l.mu.Lock()
		l.last = time.Now()
		l.mu.Unlock()
	}
	if len(b) >= 12 && b[0] >= 128 && b[0] <= 191 && b[1]&0x7f == 96 && l.n.Add(1)%every == 0 {
		l.mu.Lock()
		if l.dropped == nil {
			l.dropped, l.seen = map[uint16]time.Time{}, map[uint16]time.Time{}
		}
		seq := binary.BigEndian.Uint16(b[2:4])
		l.dropped[seq] = time.Now()
		l.unknown = append(l.unknown, seq)
		l.mu.Unlock()
		return len(b), nil
	}
	if len(b) >= 12 && b[1]&0x7f == 96 {
		l.mu.Lock()
		for _, seq := range l.unknown {
			l.seen[seq] = time.Now()
		}
		l.unknown = l.unknown[:0]
		l.mu.Unlock()
	}
	return l.PacketConn.WriteTo(b, addr)
}

// publishBehind joins identity, whose publisher connection sends through
// loss, and publishes its camera (no simulcast) and microphone.
func publishBehind(e *env, identity string, loss *uplinkLoss) *publisher {
	c := e.dial(identity)
	c.pubFilter = loss.wrap
	c.send(map[string]any{"type": "join", "token": e.token(identity, memberRights)})
	c.wait("joined", isType(signal.TypeJoined))
	return c.publish(false)
}

// A packet lost on the publisher's link and repaired over RTX is asked
// for again a few times at most, as a browser asks, not every 100 ms until
// it leaves the receive log (pion's NACK generator does not see the
// packets its RTX reader repairs: pion/webrtc#3063): on a weak county
// uplink each extra ask is a retransmission more on the weakest link.
func TestPublisherLossAskedForAFewTimes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var loss uplinkLoss
	p := publishBehind(e, "alice", &loss)
	bob := e.join("bob", memberRights)
	bob.waitPackets("alice-camera", 300, 20*time.Second)
	loss.mu.Lock()
	dropped := maps.Clone(loss.dropped)
	loss.mu.Unlock()
	waitUntil(t, 5*time.Second, func() bool { return p.askedForAll(dropped) },
		func() string { return fmt.Sprintf("asks for the %d packets dropped", len(dropped)) })
	// Any asks again come while a second and a half more of the video
	// goes by (pion's generator asked every 100 ms; the log gives a
	// packet up after a second).
	bob.waitPackets("alice-camera", bob.packets("alice-camera")+45, 10*time.Second)
	p.nackedMu.Lock()
	most := 0
	for _, n := range p.nacked {
		most = max(most, n)
	}
	asked := 0 // for the packets dropped before the hold
	var unasked []uint16
	for seq := range dropped {
		asked += p.nacked[seq]
		if p.nacked[seq] == 0 {
			unasked = append(unasked, seq)
		}
	}
	p.nackedMu.Unlock()
	t.Logf("%d dropped, %d asks for them, at most %d for one packet", len(dropped), asked, most)
	if len(dropped) < 10 || len(unasked) > 0 {
		t.Fatalf("%d packets dropped, not asked for: %v", len(dropped), unasked)
	}
	// Asked for again only while it has not come: on loopback the
	// first ask's answer nearly always comes before the second is due
	// (a loaded machine may delay a few past it; never past the third).
	if most > nackMaxAsks || 2*asked > 3*len(dropped) {
		t.Fatalf("%d asks for %d packets lost, at most %d for one", asked, len(dropped), most)
	}
	// The repaired packets reach the subscriber.
	if distinct, span := bob.seqLogOf("alice-camera").counts(); distinct < span-5 {
		t.Fatalf("bob received %d of %d video packets", distinct, span)
	}
	if metricValue(t, e, "lookout_meeting_nacks_sent_total", "alice", "") == 0 {
		t.Fatal("no NACKs to alice counted")
	}
}

// A layer at one frame a second (a screen share, a throttled layer) has a
// loss asked for at once, not at its next frame: the track's read
// deadline wakes the reader for the ask between packets. (A frame's last
// packet lost is known only at the next frame's first, as a browser
// knows it.)
func TestPublisherLossAskedBetweenFrames(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var loss uplinkLoss
	p := publishBehind(e, "alice", &loss)
	p.onlyAskedKeys.Store(true)
	p.skip[layerHigh].Store(29) // the one layer of a track without simulcast
	// The frames sent at 30 a second go by; then about one packet a
	// frame is lost.
	waitUntil(t, 5*time.Second, func() bool { return loss.quietFor(300 * time.Millisecond) },
		func() string { return "a pause between frames" })
	loss.mu.Lock()
	clear(loss.dropped)
	clear(loss.seen)
	loss.unknown = loss.unknown[:0]
	loss.mu.Unlock()
	loss.every.Store(4)
	waitUntil(t, 20*time.Second, func() bool {
		loss.mu.Lock()
		defer loss.mu.Unlock()
		return len(loss.seen) >= 3
	}, func() string { return "3 losses followed by a packet" })
	var seen map[uint16]time.Time
	waitUntil(t, 3*time.Second, func() bool {
		loss.mu.Lock()
		seen = maps.Clone(loss.seen)
		loss.mu.Unlock()
		return p.askedForAll(seen)
	}, func() string { return fmt.Sprintf("asks for the losses %v", seen) })
	p.nackedMu.Lock()
	defer p.nackedMu.Unlock()
	for seq, at := range seen {
		asked := p.firstAsked[seq]
		// Asked at the next frame, a second later, without the deadline;
		// a loaded machine may be slow to wake the reader.
		if d := asked.Sub(at); d > 350*time.Millisecond {
			t.Fatalf("packet %d asked for %s after the packet after it, at a frame a second", seq, d.Round(time.Millisecond))
		}
	}
}

// Losses the publisher cannot mend (numbers it never sent), at a frame a
// second: each is given up between packets, when the read deadline
// passes, and the layer goes on being read. (A deadline left passed made
// every read fail at once and stopped the layer: pion's buffer fails a
// read under a passed deadline before it looks for packets.)
func TestPublisherLossGivenUpBetweenFrames(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.join("alice", memberRights)
	p := alice.publish(false)
	p.onlyAskedKeys.Store(true)
	p.skip[layerHigh].Store(29)
	p.gap.Store(4)
	bob := e.join("bob", memberRights)
	bob.waitPackets("alice-camera", 20, 10*time.Second)
	// Past the first gap's give-up (a second after it was seen, just
	// before its first ask), which comes between frames.
	waitUntil(t, 10*time.Second, func() bool {
		p.nackedMu.Lock()
		defer p.nackedMu.Unlock()
		for _, at := range p.firstAsked {
			if time.Since(at) > 1200*time.Millisecond {
				return true
			}
		}
		return false
	}, func() string { return "a gap asked for 1.2 s ago" })
	before := bob.packets("alice-camera")
	bob.waitPackets("alice-camera", before+8, 5*time.Second)
	if n := metricValue(t, e, "lookout_meeting_nacks_sent_total", "alice", ""); n == 0 {
		t.Fatal("no NACKs sent for the gaps")
	}
}

// askedForAll says whether each of seqs was asked for.
func (p *publisher) askedForAll(seqs map[uint16]time.Time) bool {
	p.nackedMu.Lock()
	defer p.nackedMu.Unlock()
	for seq := range seqs {
		if p.nacked[seq] == 0 {
			return false
		}
	}
	return true
}
