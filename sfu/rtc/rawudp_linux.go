//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package rtc

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawUDP reads the shared ICE socket and sends the send queue's batches
// with raw system calls, which do not pass through the runtime's syscall
// entry and exit (see sendQueue for why). The socket stays Go's: the calls
// are made inside its syscall.RawConn, which holds it open during a call,
// and a call the socket cannot take yet (EAGAIN) waits on the runtime's
// poller as Go's own reads and writes do, deadlines included.
//
// The message headers, addresses and buffer descriptors are made once and
// the functions handed to the RawConn bound once, so neither a read nor a
// batch allocates.
type rawUDP struct {
	rc syscall.RawConn
	// inet6 is whether the socket is AF_INET6 (then IPv4 destinations are
	// given as IPv4-mapped addresses); otherwise it is AF_INET.
	inet6 bool

	// The batch being written; only the queue's sender writes.
	hdrs     [sendBatch]mmsghdr
	iovs     [sendBatch]unix.Iovec
	names    [sendBatch]unix.RawSockaddrInet6
	batchLen int
	sent     int
	sendErr  syscall.Errno
	sendFn   func(fd uintptr) bool
	// sendZones caches IPv6 zones' interface indexes for the sender.
	sendZones zoneCache

	// The read being made; readMu keeps a second reader (pion's mux has
	// one) from sharing it.
	readMu   sync.Mutex
	readBuf  []byte
	from     unix.RawSockaddrAny
	fromLen  uint32
	received int
	readErr  syscall.Errno
	readFn   func(fd uintptr) bool
	// readZones caches interface names for the reader.
	readZones zoneCache
}

// zoneCache maps IPv6 zones (interface names) to interface indexes and
// back, as Go's net does, for a minute at a time: a link-local peer's
// every datagram would otherwise ask the kernel for its interfaces. It is
// used by one goroutine at a time.
type zoneCache struct {
	at     time.Time
	byName map[string]uint32
	byIdx  map[uint32]string
}

// fresh reloads the interfaces when they are older than maxAge.
func (c *zoneCache) fresh(maxAge time.Duration) {
	if c.byName != nil && time.Since(c.at) < maxAge {
		return
	}
	c.at = time.Now()
	c.byName, c.byIdx = map[string]uint32{}, map[uint32]string{}
	ifs, _ := net.Interfaces()
	for _, ifi := range ifs {
		c.byName[ifi.Name] = uint32(ifi.Index)
		c.byIdx[uint32(ifi.Index)] = ifi.Name
	}
}

// index is the interface index of an IPv6 zone (a link-local address's
// "%eth0" or "%2"); 0 for none or an unknown one.
func (c *zoneCache) index(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n)
	}
	c.fresh(time.Minute)
	if i, ok := c.byName[zone]; ok {
		return i
	}
	// An interface added since: look again, at most once a second.
	c.fresh(time.Second)
	return c.byName[zone]
}

// name is the interface name of an IPv6 scope, or its number if there is
// no such interface.
func (c *zoneCache) name(index uint32) string {
	c.fresh(time.Minute)
	if name, ok := c.byIdx[index]; ok {
		return name
	}
	c.fresh(time.Second)
	if name, ok := c.byIdx[index]; ok {
		return name
	}
	return strconv.FormatUint(uint64(index), 10)
}

// mmsghdr is the kernel's struct mmsghdr: a message and the bytes sent of
// it.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

func newRawUDP(conn *net.UDPConn) (*rawUDP, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	u := &rawUDP{rc: rc}
	var sa unix.Sockaddr
	if cerr := rc.Control(func(fd uintptr) { sa, err = unix.Getsockname(int(fd)) }); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, os.NewSyscallError("getsockname", err)
	}
	switch sa.(type) {
	case *unix.SockaddrInet4:
	case *unix.SockaddrInet6:
		u.inet6 = true
	default:
		return nil, fmt.Errorf("webrtc udp: socket of address %T, not IP", sa)
	}
	for i := range u.hdrs {
		h := &u.hdrs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&u.names[i]))
		h.Iov = &u.iovs[i]
		h.SetIovlen(1)
	}
	u.sendFn = u.sendmmsg
	u.readFn = u.recvfrom
	return u, nil
}

// writeBatch sends dgs (at most sendBatch) and says how many the kernel
// took. The kernel stops at the first datagram it refuses: then the count
// is of those before it, and the error is that datagram's.
func (u *rawUDP) writeBatch(dgs []queuedDatagram) (int, error) {
	for i := range dgs {
		d := &dgs[i]
		u.iovs[i].Base = &d.buf[0]
		u.iovs[i].SetLen(d.n)
		u.hdrs[i].hdr.Namelen = u.setName(&u.names[i], d.to)
	}
	u.batchLen, u.sent, u.sendErr = len(dgs), 0, 0
	if err := u.rc.Write(u.sendFn); err != nil {
		return 0, err
	}
	if u.sendErr != 0 {
		return 0, os.NewSyscallError("sendmmsg", u.sendErr)
	}
	return u.sent, nil
}

// rawSendChunk is the most datagrams one raw sendmmsg is given: the call
// cannot be preempted, and on loopback, where it carries the receivers'
// delivery too, 32 datagrams take about 150 µs that a collection's
// stop-the-world would wait.
const rawSendChunk = 32

// sendmmsg is the call writeBatch makes, in chunks of rawSendChunk; false
// when the socket's buffer is full before anything was sent (the RawConn
// then waits until it is not).
func (u *rawUDP) sendmmsg(fd uintptr) bool {
	for u.sent < u.batchLen {
		n := min(u.batchLen-u.sent, rawSendChunk)
		r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&u.hdrs[u.sent])), uintptr(n), 0, 0, 0)
		switch {
		case e == unix.EINTR:
			continue
		case e == unix.EAGAIN && u.sent == 0:
			return false
		case e != 0 && u.sent == 0:
			u.sendErr = e
			return true
		case e != 0:
			// What was sent is counted; the next call meets the error.
			return true
		case r == 0:
			// Not seen from a kernel: refuse the datagram rather than
			// try it forever.
			u.sendErr = unix.EIO
			return true
		}
		u.sent += int(r)
		if int(r) < n {
			return true // the next call meets what stopped this one
		}
	}
	return true
}

// readFrom reads one datagram into b, as net.UDPConn.ReadFromUDPAddrPort
// does: from an AF_INET6 socket an IPv4 sender's address is IPv4-mapped.
func (u *rawUDP) readFrom(b []byte) (int, netip.AddrPort, error) {
	u.readMu.Lock()
	defer u.readMu.Unlock()
	defer func() { u.readBuf = nil }()
	for {
		u.readBuf, u.received, u.readErr = b, 0, 0
		if err := u.rc.Read(u.readFn); err != nil {
			return 0, netip.AddrPort{}, err
		}
		if u.readErr != 0 {
			return 0, netip.AddrPort{}, &net.OpError{Op: "read", Net: "udp", Err: os.NewSyscallError("recvfrom", u.readErr)}
		}
		// A datagram without an IP sender (none on a UDP socket) is
		// skipped: pion's mux would close on an invalid address.
		if from := u.sockaddrAddrPort(&u.from); from.IsValid() {
			return u.received, from, nil
		}
	}
}

// recvfrom is the call readFrom makes, false when nothing is waiting.
func (u *rawUDP) recvfrom(fd uintptr) bool {
	var buf unsafe.Pointer
	if len(u.readBuf) > 0 {
		buf = unsafe.Pointer(&u.readBuf[0])
	}
	for {
		u.fromLen = unix.SizeofSockaddrAny
		r, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(buf), uintptr(len(u.readBuf)), 0,
			uintptr(unsafe.Pointer(&u.from)), uintptr(unsafe.Pointer(&u.fromLen)))
		switch e {
		case 0:
			u.received = int(r)
			return true
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			u.readErr = e
			return true
		}
	}
}

// sockaddrAddrPort is the address the kernel wrote into sa.
func (u *rawUDP) sockaddrAddrPort(sa *unix.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), ntohs(sa4.Port))
	case unix.AF_INET6:
		sa6 := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		ip := netip.AddrFrom16(sa6.Addr)
		if sa6.Scope_id != 0 {
			ip = ip.WithZone(u.readZones.name(sa6.Scope_id))
		}
		return netip.AddrPortFrom(ip, ntohs(sa6.Port))
	}
	return netip.AddrPort{}
}

// setName writes to as the socket's family's address into sa and returns
// its length. An IPv6 destination on an IPv4 socket is written as IPv6,
// which the kernel refuses for that datagram alone.
func (u *rawUDP) setName(sa *unix.RawSockaddrInet6, to netip.AddrPort) uint32 {
	ip := to.Addr()
	if !u.inet6 && ip.Unmap().Is4() {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		sa4.Family = unix.AF_INET
		sa4.Port = htons(to.Port())
		sa4.Addr = ip.Unmap().As4()
		sa4.Zero = [8]uint8{}
		return unix.SizeofSockaddrInet4
	}
	sa.Family = unix.AF_INET6
	sa.Port = htons(to.Port())
	sa.Flowinfo = 0
	sa.Addr = ip.As16() // IPv4 as IPv4-mapped
	sa.Scope_id = u.sendZones.index(ip.Zone())
	return unix.SizeofSockaddrInet6
}

// htons is port in network byte order, as a sockaddr holds it.
func htons(port uint16) uint16 {
	b := [2]byte{byte(port >> 8), byte(port)}
	return *(*uint16)(unsafe.Pointer(&b))
}

// ntohs is a sockaddr's port in the host's order.
func ntohs(port uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&port))
	return uint16(b[0])<<8 | uint16(b[1])
}
