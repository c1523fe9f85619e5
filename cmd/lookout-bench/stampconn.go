package main

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/lookout-cc/lookout/internal/meetpeer"
	"github.com/lookout-cc/lookout/internal/rxstamp"
	"github.com/lookout-cc/lookout/sfu/rtc"
)

// stampConn is a participant's UDP socket that notes, for every RTP packet
// it reads, the kernel's time of its arrival at the socket
// (SO_TIMESTAMPNS), by SSRC and sequence number: the RTP header is not
// encrypted, so this is known before pion decrypts the packet. The
// receivers split a packet's delay with it: from the publisher's write to
// the arrival at the subscriber's socket is the SFU's doing (on loopback
// the kernel delivers within the server's send); from there to the read
// is the bench's own receive path (with --intake, the default: decrypted
// on this socket's reader and read by the track's goroutine through
// pion's interceptors; without, pion's four goroutine hand-overs), on the
// same two cores.
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

	// feedback records the RTP's arrivals for the connection's TWCC
	// feedback.
	feedback *meetpeer.ArrivalFeedback

	// On a receiver's connection with --intake, the intake takes the
	// SRTP on the reading goroutine once started (intakeOn), with the
	// keys of the connection's DTLS handshake (as its client).
	secrets  *rtc.DTLSSecrets
	intake   *rtc.SRTPIntake
	startMu  sync.Mutex
	intakeOn atomic.Bool
}

// withIntake readies the connection to take its media on its reader, as
// lookout's direct receiver does: the browser's network thread decrypts
// too, and the bench's receivers, on the same two cores as lookout, then
// hand each packet over once (to the track's reader) rather than four
// times.
func (c *stampConn) withIntake() {
	c.secrets, c.intake = &rtc.DTLSSecrets{}, rtc.NewSRTPIntake(nil, nil)
}

// startIntake starts the intake, the connection connected; once (pion
// calls each state change's handler on a goroutine of its own).
func (c *stampConn) startIntake() {
	if c.intake == nil {
		return
	}
	c.startMu.Lock()
	defer c.startMu.Unlock()
	if c.intakeOn.Load() {
		return
	}
	cfg, err := c.secrets.SRTPConfig(true)
	if err == nil {
		err = c.intake.Start(cfg)
	}
	if err != nil {
		// Left to pion; intakeText counts the intakes started.
		return
	}
	c.intakeOn.Store(true)
}

// takeOnReader takes a datagram the reader read, if the intake takes it;
// before the intake starts, it shows it the DTLS handshake's ServerHello.
func (c *stampConn) takeOnReader(b []byte) bool {
	if !c.intakeOn.Load() {
		c.secrets.NoteDatagram(b)
		return false
	}
	return c.intake.Take(b)
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
	c := &stampConn{UDPConn: conn, oob: make([]byte, rxstamp.OOBSize), feedback: meetpeer.NewArrivalFeedback()}
	c.tables.Store(&[]*stampTable{})
	return c, nil
}

// ReadFromAddrPort and WriteToAddrPort make it an ice.AddrPortReaderWriter.
// What the intake takes is not returned: the next datagram is read.
func (c *stampConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		n, oobn, _, addr, err := c.ReadMsgUDPAddrPort(b, c.oob)
		if err != nil {
			return n, addr, err
		}
		c.note(b[:n], c.oob[:oobn])
		if c.intake == nil || !c.takeOnReader(b[:n]) {
			return n, addr, nil
		}
	}
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

// ReadFrom is the same for readers without AddrPort, without the intake
// (pion's UDP mux reads through ReadFromAddrPort).
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
	c.feedback.Note(b, (at-wallEpoch)/1000)
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
