package main

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/webrtc/v4"

	"github.com/lookout-cc/lookout/internal/rxstamp"
)

// stampConn is a participant's UDP socket that notes, for every RTP packet
// it reads, the kernel's time of its arrival at the socket
// (SO_TIMESTAMPNS), by SSRC and sequence number: the RTP header is not
// encrypted, so this is known before pion decrypts the packet. The
// receivers split a packet's delay with it: from the publisher's write to
// the arrival at the subscriber's socket is the SFU's doing (on loopback
// the kernel delivers within the server's send); from there to the read
// is the bench's own pion receive path (four goroutines per packet, on
// the same two cores).
//
// It also makes the connection's transport-wide congestion control
// feedback from those arrival times, as a browser makes it from its
// network layer (see newPC).
//
// On a publisher's connection it notes instead when each RTP packet was
// handed to the kernel (noteSend), so that the receivers can measure the
// SFU's part alone: from the publisher's socket to theirs.
//
// pion's UDP mux reads it through ReadFromAddrPort, from one goroutine.
type stampConn struct {
	*net.UDPConn
	oob []byte // the reading goroutine's

	mu     sync.Mutex
	tables atomic.Pointer[[]*stampTable]

	// twccID is the transport-wide sequence number's header extension
	// id, 0 until negotiated; twcc records the arrivals for feedback.
	twccID atomic.Uint32
	twccMu sync.Mutex
	twcc   *twcc.Recorder
}

// stampTable holds, for one SSRC, the arrival of the last 1024 sequence
// numbers: the number in the top 16 bits, the time (benchNow's clock) in
// the low 48.
type stampTable struct {
	ssrc uint32
	at   [1024]atomic.Uint64
}

const stampTimeMask = 1<<48 - 1

// wallEpoch is benchEpoch on the kernel's clock (CLOCK_REALTIME).
var wallEpoch = benchEpoch.UnixNano()

func listenStamped() (*stampConn, error) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	if err := rxstamp.Enable(conn); err != nil {
		conn.Close()
		return nil, err
	}
	c := &stampConn{UDPConn: conn, oob: make([]byte, rxstamp.OOBSize), twcc: twcc.NewRecorder(rand.Uint32())}
	c.tables.Store(&[]*stampTable{})
	return c, nil
}

// ReadFromAddrPort and WriteToAddrPort make it an ice.AddrPortReaderWriter.
func (c *stampConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, oobn, _, addr, err := c.ReadMsgUDPAddrPort(b, c.oob)
	if err == nil {
		c.note(b[:n], c.oob[:oobn])
	}
	return n, addr, err
}

func (c *stampConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	c.noteSend(b)
	return c.WriteToUDPAddrPort(b, addr)
}

// WriteTo is the same for writers without AddrPort.
func (c *stampConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.noteSend(b)
	return c.UDPConn.WriteTo(b, addr)
}

// noteSend records when an RTP packet is handed to the kernel, by SSRC and
// sequence number (a publisher's connection receives no RTP, so its tables
// hold what it sent): the start of the SFU's part of a packet's delay.
func (c *stampConn) noteSend(b []byte) {
	if len(b) < 12 || b[0]>>6 != 2 || b[1] >= 192 && b[1] <= 223 {
		return
	}
	seq := binary.BigEndian.Uint16(b[2:4])
	t := c.table(binary.BigEndian.Uint32(b[8:12]))
	t.at[seq&1023].Store(uint64(seq)<<48 | uint64(benchNow())&stampTimeMask)
}

// ReadFrom is the same for readers without AddrPort.
func (c *stampConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, oobn, _, addr, err := c.ReadMsgUDP(b, c.oob)
	if err == nil {
		c.note(b[:n], c.oob[:oobn])
	}
	return n, addr, err
}

// note records an RTP packet's arrival (not RTCP, DTLS or STUN).
func (c *stampConn) note(b, oob []byte) {
	if len(b) < 12 || b[0]>>6 != 2 || b[1] >= 192 && b[1] <= 223 {
		return
	}
	at, ok := rxstamp.Time(oob)
	if !ok {
		return
	}
	seq := binary.BigEndian.Uint16(b[2:4])
	ssrc := binary.BigEndian.Uint32(b[8:12])
	t := c.table(ssrc)
	t.at[seq&1023].Store(uint64(seq)<<48 | uint64(at-wallEpoch)&stampTimeMask)
	if id := c.twccID.Load(); id != 0 {
		if ext, ok := oneByteExtension(b, uint8(id)); ok && len(ext) >= 2 {
			c.twccMu.Lock()
			c.twcc.Record(ssrc, binary.BigEndian.Uint16(ext), (at-wallEpoch)/1000)
			c.twccMu.Unlock()
		}
	}
}

// oneByteExtension finds header extension id in an RTP packet's one-byte
// extension block (RFC 8285), without allocating.
func oneByteExtension(b []byte, id uint8) ([]byte, bool) {
	if b[0]&0x10 == 0 {
		return nil, false
	}
	off := 12 + 4*int(b[0]&0x0f)
	if len(b) < off+4 || binary.BigEndian.Uint16(b[off:]) != 0xBEDE {
		return nil, false
	}
	end := off + 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
	if end > len(b) {
		return nil, false
	}
	for i := off + 4; i < end; {
		if b[i] == 0 { // padding
			i++
			continue
		}
		eid, l := b[i]>>4, int(b[i]&0x0f)+1
		if eid == 15 || i+1+l > end {
			return nil, false
		}
		if eid == id {
			return b[i+1 : i+1+l], true
		}
		i += 1 + l
	}
	return nil, false
}

// sendFeedback sends the transport-wide congestion control feedback every
// 100 ms, as browsers and pion do, until quit.
func (c *stampConn) sendFeedback(pc *webrtc.PeerConnection, quit <-chan struct{}) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-quit:
			return
		case <-tick.C:
		}
		c.twccMu.Lock()
		pkts := c.twcc.BuildFeedbackPacket()
		c.twccMu.Unlock()
		if len(pkts) > 0 && pc.WriteRTCP(pkts) == nil {
			feedbackSent.Add(uint64(len(pkts)))
		}
	}
}

// feedbackSent counts the TWCC feedback packets all receivers sent: none
// would leave the SFU's estimators at their first value.
var feedbackSent atomic.Uint64

// arrival is when the packet ssrc/seq reached the socket, if noted.
func (t *stampTable) arrival(seq uint16) (int64, bool) {
	v := t.at[seq&1023].Load()
	if v == 0 || uint16(v>>48) != seq {
		return 0, false
	}
	return int64(v & stampTimeMask), true
}

// table is the SSRC's table, made at its first packet.
func (c *stampConn) table(ssrc uint32) *stampTable {
	for _, t := range *c.tables.Load() {
		if t.ssrc == ssrc {
			return t
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.tables.Load()
	for _, t := range old {
		if t.ssrc == ssrc {
			return t
		}
	}
	t := &stampTable{ssrc: ssrc}
	tables := append(append([]*stampTable(nil), old...), t)
	c.tables.Store(&tables)
	return t
}
