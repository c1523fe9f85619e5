// Package rxstamp reads the kernel's receive time of UDP datagrams
// (SO_TIMESTAMPNS): when a datagram reached the socket, before any
// goroutine of the reader was scheduled to take it.
//
// The load generator (cmd/lookout-bench) splits a packet's delay with it
// into the SFU's part and its own, and the meeting tests' throttled links
// make their congestion-control feedback from it, as a browser's network
// layer does; neither may count its own scheduling delays as the
// network's.
package rxstamp

import (
	"net"
	"syscall"
	"unsafe"
)

// OOBSize is enough room for the timestamp's control message.
const OOBSize = 128

// Enable has the kernel stamp every datagram conn receives; read them
// with conn.ReadMsgUDP or ReadMsgUDPAddrPort and an OOBSize buffer.
func Enable(conn *net.UDPConn) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	cerr := raw.Control(func(fd uintptr) {
		err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// Time reads SCM_TIMESTAMPNS from a datagram's control messages:
// CLOCK_REALTIME nanoseconds (time.Now's wall clock). It allocates
// nothing.
func Time(oob []byte) (int64, bool) {
	const hdr = syscall.SizeofCmsghdr
	for len(oob) >= hdr {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdr || l > len(oob) {
			return 0, false
		}
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SCM_TIMESTAMPNS && l >= hdr+16 {
			ts := (*syscall.Timespec)(unsafe.Pointer(&oob[hdr]))
			return ts.Nano(), true
		}
		// Control messages are aligned to the word size.
		oob = oob[min(len(oob), (l+7)&^7):]
	}
	return 0, false
}
