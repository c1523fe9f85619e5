package rtc

import (
	"errors"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// sendQueue is the shared ICE UDP socket with its writes queued and sent by
// one goroutine with sendmmsg, as many datagrams per system call as are
// waiting when it runs.
//
// A meeting forwards each packet of a publisher to every subscriber: 200
// subscribers are 200 datagrams from the same socket within a millisecond.
// Sent one sendto at a time, the system calls were a third of the server's
// CPU; the queue lets the forwarding goroutines go on with the next
// subscriber's SRTP while the sender hands the datagrams gathered meanwhile
// to the kernel in one call. Nothing waits on a timer: the sender runs as
// soon as a datagram is queued, so a lone datagram (a STUN answer) leaves
// as fast as before, and batches form only when datagrams come faster than
// one system call takes.
//
// pion/transport's udp.BatchConn does the same with a flush interval and a
// ticker that wakes the process every half interval even when idle, which
// is why it is not used.
//
// On 64-bit Linux the socket is read and the batches sent with raw system calls
// (rawudp_linux.go), which skip the runtime's syscall entry and exit.
// Through that entry, every read woke the scheduler's monitor thread
// (sysmon) whenever the process had been idle, which then polled every
// 20 µs for a millisecond or more; and a batch that took longer than 20
// µs (on loopback 40 datagrams carry their receivers' delivery and take
// 200 µs) could have its P taken and another thread woken to run it. At 200
// subscribers on two cores that was 3,000 of the server's 7,600 context
// switches a second; raw, the monitor makes 400 and the server's CPU per
// forwarded Mbit/s fell by a tenth to a fifth. The socket does not block:
// a call only ever takes CPU, which its P may as well hold.
//
// A write copies the datagram into the queue and returns; it waits only
// while the queue is full (the socket's own send buffer full, or the
// sender starved of CPU), as a sendto would. A datagram the kernel refuses
// (an unreachable address) is dropped and counted, and the rest of its
// batch still goes.
type sendQueue struct {
	*net.UDPConn
	raw *rawUDP
	log *slog.Logger

	mu      sync.Mutex
	space   sync.Cond // signalled when the sender has freed slots
	slots   []queuedDatagram
	head    int // the oldest queued slot
	queued  int
	closed  bool
	sending bool

	wake chan struct{} // one pending wake-up of the sender
	done chan struct{} // closed when the sender has stopped
	// refused counts datagrams the kernel would not send.
	refused int
	// sent counts datagrams the kernel took.
	sent atomic.Uint64

	// intake maps a remote address to the direct sender that takes the
	// SRTCP coming from it (DirectSender.Start); copied on change, read
	// for every datagram.
	intakeMu sync.Mutex
	intake   atomic.Pointer[map[netip.AddrPort]*DirectSender]
	// rtpIntake maps a remote address to the direct receiver that takes
	// the SRTP coming from it (DirectReceiver.Start), as intake does.
	rtpIntakeMu sync.Mutex
	rtpIntake   atomic.Pointer[map[netip.AddrPort]*DirectReceiver]
}

// queuedDatagram is one slot of the queue: the datagram's bytes and its
// destination, kept between uses so queueing allocates nothing.
type queuedDatagram struct {
	buf [sendQueueMTU]byte
	n   int
	to  netip.AddrPort
}

const (
	// sendQueueSlots is how many datagrams may wait: a packet's copies to
	// 200 subscribers and then some, 1.1 MiB in all.
	sendQueueSlots = 768
	// sendQueueMTU is the largest datagram queued; a larger one (none of
	// Lookout's: pion keeps RTP and DTLS under 1,200 bytes) is sent at
	// once on the caller's goroutine.
	sendQueueMTU = 1500
	// sendBatch is the most datagrams handed to one sendmmsg.
	sendBatch = 128
)

func newSendQueue(conn *net.UDPConn, log *slog.Logger) (*sendQueue, error) {
	raw, err := newRawUDP(conn)
	if err != nil {
		return nil, err
	}
	q := &sendQueue{
		UDPConn: conn,
		raw:     raw,
		log:     log,
		slots:   make([]queuedDatagram, sendQueueSlots),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	q.space.L = &q.mu
	go q.send()
	return q, nil
}

// WriteToAddrPort queues b for addr. It is the write pion's ICE mux makes
// (ice.AddrPortReaderWriter), with no net.Addr to allocate.
func (q *sendQueue) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if len(b) > sendQueueMTU {
		return q.UDPConn.WriteToUDPAddrPort(b, addr)
	}
	q.mu.Lock()
	for q.queued == len(q.slots) && !q.closed {
		q.space.Wait()
	}
	if q.closed {
		q.mu.Unlock()
		return 0, net.ErrClosed
	}
	i := (q.head + q.queued) % len(q.slots)
	s := &q.slots[i]
	s.n = copy(s.buf[:], b)
	s.to = addr
	q.queued++
	idle := !q.sending
	q.mu.Unlock()
	if idle {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	return len(b), nil
}

// WriteTo queues b for addr, a *net.UDPAddr.
func (q *sendQueue) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: net.InvalidAddrError("not a UDP address")}
	}
	return q.WriteToAddrPort(b, ua.AddrPort())
}

// ReadFromAddrPort reads from the socket (ice.AddrPortReaderWriter) for
// pion's ICE mux. SRTCP from an address a direct sender has claimed is
// given to that sender instead, on this goroutine, and the read goes on:
// pion would hand it through four goroutines, decrypt it, parse it, split
// it, marshal each part again and parse it once more before the meeting
// read it (a fifth of the server's CPU at 200 subscribers). SRTP from an
// address a direct receiver has claimed goes to the receiver the same
// way.
func (q *sendQueue) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		n, addr, err := q.raw.readFrom(b)
		if err != nil {
			return n, addr, err
		}
		if !q.take(b[:n], addr) {
			return n, addr, nil
		}
	}
}

// take gives a datagram to the direct sender or receiver that claimed its
// address, and says whether one took it.
func (q *sendQueue) take(b []byte, addr netip.AddrPort) bool {
	if isRTCP(b) {
		intake := q.intake.Load()
		if intake == nil {
			return false
		}
		d := (*intake)[netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())]
		return d != nil && d.takeRTCP(b)
	}
	if !isRTP(b) {
		return false
	}
	intake := q.rtpIntake.Load()
	if intake == nil {
		return false
	}
	r := (*intake)[netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())]
	return r != nil && r.takeRTP(b)
}

// isRTP says whether a datagram is (S)RTP by its first two bytes, as
// pion's mux tells: RTP version 2 and not RTCP's packet types.
func isRTP(b []byte) bool {
	return len(b) >= 12 && b[0] >= 128 && b[0] <= 191 && !(b[1] >= 192 && b[1] <= 223)
}

// isRTCP says whether a datagram is (S)RTCP by its first two bytes, as
// pion's mux tells (RFC 7983 and RFC 5761: RTP version 2, and a packet
// type of 192-223).
func isRTCP(b []byte) bool {
	return len(b) >= 8 && b[0] >= 128 && b[0] <= 191 && b[1] >= 192 && b[1] <= 223
}

// claimRTCP moves d's claim of the SRTCP from an address from the
// address from (if valid and still d's) to to (if valid). The reader
// goroutine reads the claims without a lock.
func (q *sendQueue) claimRTCP(d *DirectSender, from, to netip.AddrPort) {
	moveClaim(&q.intakeMu, &q.intake, d, from, to)
}

// claimRTP moves r's claim of the SRTP from an address, as claimRTCP.
func (q *sendQueue) claimRTP(r *DirectReceiver, from, to netip.AddrPort) {
	moveClaim(&q.rtpIntakeMu, &q.rtpIntake, r, from, to)
}

// moveClaim moves v's claim in the claims p from from (if valid and still
// v's) to to (if valid): the map is copied, edited and replaced, as it is
// read without a lock; mu orders the moves. A claim of to by another is
// replaced (a connection gone, whose port the client reuses).
func moveClaim[V comparable](mu *sync.Mutex, p *atomic.Pointer[map[netip.AddrPort]V], v V, from, to netip.AddrPort) {
	editCopied(mu, p, func(m map[netip.AddrPort]V) {
		if from.IsValid() && m[from] == v {
			delete(m, from)
		}
		if to.IsValid() {
			m[to] = v
		}
	})
}

// editCopied edits a map read without a lock: edit gets a copy, which
// then replaces it; mu orders the edits.
func editCopied[K comparable, V any](mu *sync.Mutex, p *atomic.Pointer[map[K]V], edit func(map[K]V)) {
	mu.Lock()
	defer mu.Unlock()
	m := map[K]V{}
	if old := p.Load(); old != nil {
		m = maps.Clone(*old)
	}
	edit(m)
	p.Store(&m)
}

// SetDeadline sets the read deadline only: a write never waits on the
// socket, and a write deadline would make the sender drop the batch it
// is handing over.
func (q *sendQueue) SetDeadline(t time.Time) error { return q.UDPConn.SetReadDeadline(t) }

// SetWriteDeadline does nothing, for the same reason.
func (q *sendQueue) SetWriteDeadline(time.Time) error { return nil }

// send hands the queued datagrams to the kernel until Close.
func (q *sendQueue) send() {
	defer close(q.done)
	for {
		q.mu.Lock()
		for q.queued == 0 {
			q.sending = false
			if q.closed {
				q.mu.Unlock()
				return
			}
			q.mu.Unlock()
			<-q.wake
			q.mu.Lock()
		}
		q.sending = true
		// The run of slots up to the end of the ring; the rest, if the
		// queue wraps, is the next turn's.
		start, n := q.head, min(q.queued, len(q.slots)-q.head, sendBatch)
		q.mu.Unlock()

		q.sendBatch(q.slots[start : start+n])

		q.mu.Lock()
		q.head = (q.head + n) % len(q.slots)
		q.queued -= n
		q.space.Broadcast()
		q.mu.Unlock()
	}
}

// sendBatch sends dgs, skipping any the kernel refuses.
func (q *sendQueue) sendBatch(dgs []queuedDatagram) {
	for len(dgs) > 0 {
		n, err := q.raw.writeBatch(dgs)
		q.sent.Add(uint64(n))
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// sendmmsg stops at the first datagram that fails: drop it
			// and go on with the rest.
			q.refuse(dgs[n].to, err)
			n++
		}
		dgs = dgs[n:]
	}
}

func (q *sendQueue) refuse(to netip.AddrPort, err error) {
	q.mu.Lock()
	q.refused++
	first := q.refused == 1
	q.mu.Unlock()
	if first && q.log != nil {
		q.log.Warn("webrtc udp: a datagram the kernel would not send was dropped (later ones are counted, not logged)", "to", to, "err", err)
	}
}

// Refused is how many datagrams the kernel would not send.
func (q *sendQueue) Refused() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.refused
}

// Close sends what is queued, then closes the socket.
func (q *sendQueue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return net.ErrClosed
	}
	q.closed = true
	q.space.Broadcast()
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	<-q.done
	return q.UDPConn.Close()
}
