//go:build !linux || !(amd64 || arm64 || riscv64 || loong64)

package rtc

import (
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
)

// rawUDP reads the shared ICE socket through Go's net and sends the send
// queue's batches through x/net's WriteBatch: sendmmsg where the system
// has it, one write per datagram elsewhere. Lookout's servers run on
// 64-bit Linux (rawudp_linux.go, on the architectures whose kernels have
// had recvfrom and sendmmsg as system calls of their own from the start;
// 32-bit x86 and s390x reach them through socketcall on older kernels);
// this keeps the package building elsewhere.
type rawUDP struct {
	conn  *net.UDPConn
	batch *ipv4.PacketConn
	msgs  [sendBatch]ipv4.Message
	addrs [sendBatch]net.UDPAddr
	ips   [sendBatch][16]byte
}

func newRawUDP(conn *net.UDPConn) (*rawUDP, error) {
	u := &rawUDP{conn: conn, batch: ipv4.NewPacketConn(conn)}
	for i := range u.msgs {
		u.msgs[i].Buffers = [][]byte{nil}
		u.msgs[i].Addr = &u.addrs[i]
	}
	return u, nil
}

// writeBatch sends dgs (at most sendBatch) and says how many the kernel
// took; the error is that of the first it refused.
func (u *rawUDP) writeBatch(dgs []queuedDatagram) (int, error) {
	for i := range dgs {
		u.msgs[i].Buffers[0] = dgs[i].buf[:dgs[i].n]
		setUDPAddr(&u.addrs[i], &u.ips[i], dgs[i].to)
	}
	n, err := u.batch.WriteBatch(u.msgs[:len(dgs)], 0)
	return max(n, 0), err // -1 when the first datagram failed
}

// readFrom reads one datagram into b.
func (u *rawUDP) readFrom(b []byte) (int, netip.AddrPort, error) {
	return u.conn.ReadFromUDPAddrPort(b)
}

// setUDPAddr sets a to addr without allocating: its IP is kept in ip.
func setUDPAddr(a *net.UDPAddr, ip *[16]byte, addr netip.AddrPort) {
	host := addr.Addr().Unmap()
	if host.Is4() {
		v4 := host.As4()
		copy(ip[:4], v4[:])
		a.IP = ip[:4]
	} else {
		*ip = host.As16()
		a.IP = ip[:16]
	}
	a.Port = int(addr.Port())
	a.Zone = host.Zone()
}
