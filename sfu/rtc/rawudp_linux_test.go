//go:build linux && (amd64 || arm64 || riscv64 || loong64)

package rtc

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is laid out as the kernel's struct mmsghdr (64 bytes on the
// 64-bit architectures the file builds for), and the kernel agrees: it
// writes each datagram's length where mmsghdr keeps it.
func TestMmsghdrLayout(t *testing.T) {
	if got := unsafe.Sizeof(mmsghdr{}); got != 64 {
		t.Fatalf("mmsghdr is %d bytes, the kernel's 64", got)
	}
	if got := unsafe.Offsetof(mmsghdr{}.n); got != unix.SizeofMsghdr {
		t.Fatalf("msg_len at %d, want %d", got, unix.SizeofMsghdr)
	}
	u, err := newRawUDP(listenUDP(t, "udp4", "127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	r := listenUDP(t, "udp4", "127.0.0.1:0")
	dgs := testDatagrams(3, r.LocalAddr().(*net.UDPAddr).AddrPort())
	if n, err := u.writeBatch(dgs); n != 3 || err != nil {
		t.Fatalf("sent %d of 3: %v", n, err)
	}
	for i := range dgs {
		if got := u.hdrs[i].n; int(got) != dgs[i].n {
			t.Errorf("datagram %d: the kernel wrote %d bytes sent, it has %d", i, got, dgs[i].n)
		}
	}
}

// testDatagrams is n queued datagrams to to, datagram(i)'s bytes each.
func testDatagrams(n int, to netip.AddrPort) []queuedDatagram {
	dgs := make([]queuedDatagram, n)
	for i := range dgs {
		dgs[i].n = copy(dgs[i].buf[:], datagram(uint32(i)))
		dgs[i].to = to
	}
	return dgs
}

// A batch longer than one raw call's chunk is sent whole, in order; a
// datagram the kernel refuses (an IPv6 destination on an IPv4 socket)
// ends the count at the ones before it, and is the error of the next
// call alone; nothing is allocated.
func TestRawUDPWriteBatch(t *testing.T) {
	u, err := newRawUDP(listenUDP(t, "udp4", "127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	r := listenUDP(t, "udp4", "127.0.0.1:0")
	_ = r.SetReadBuffer(4 << 20)
	dgs := testDatagrams(100, r.LocalAddr().(*net.UDPAddr).AddrPort())
	dgs[40].to = netip.MustParseAddrPort("[::1]:5004")
	if n, err := u.writeBatch(dgs); n != 40 || err != nil {
		t.Fatalf("first call: %d sent, %v; want 40, nil", n, err)
	}
	if n, err := u.writeBatch(dgs[40:]); n != 0 || err == nil {
		t.Fatalf("second call: %d sent, %v; want 0 and the refusal", n, err)
	}
	if n, err := u.writeBatch(dgs[41:]); n != 59 || err != nil {
		t.Fatalf("third call: %d sent, %v; want 59, nil", n, err)
	}
	got := receive(t, r, 99)
	for i, seq := range got {
		want := uint32(i)
		if i >= 40 {
			want++
		}
		if seq != want {
			t.Fatalf("datagram %d arrived as the %dth", seq, i)
		}
	}
	ok := dgs[41:73]
	if n := testing.AllocsPerRun(20, func() { _, _ = u.writeBatch(ok) }); n != 0 {
		t.Errorf("%.1f allocations a batch", n)
	}
}

// The writer reads its socket's family, and writes each destination as
// that family's address: IPv4 as sockaddr_in on an IPv4 socket, as an
// IPv4-mapped sockaddr_in6 on a dual-stack one.
func TestRawUDPAddresses(t *testing.T) {
	for _, tc := range []struct {
		network, addr string
		inet6         bool
		to            string
		wantLen       uint32
		wantAddr      netip.Addr
	}{
		{"udp4", "127.0.0.1:0", false, "127.0.0.1:5004", unix.SizeofSockaddrInet4, netip.MustParseAddr("127.0.0.1")},
		{"dual-stack", "", true, "127.0.0.1:5004", unix.SizeofSockaddrInet6, netip.MustParseAddr("::ffff:127.0.0.1")},
		{"udp6", "[::1]:0", true, "[::1]:5004", unix.SizeofSockaddrInet6, netip.MustParseAddr("::1")},
		{"udp4", "127.0.0.1:0", false, "[::1]:5004", unix.SizeofSockaddrInet6, netip.MustParseAddr("::1")},
	} {
		var conn *net.UDPConn
		if tc.network == "dual-stack" {
			conn = listenDualStack(t)
		} else {
			conn = listenUDP(t, tc.network, tc.addr)
		}
		w, err := newRawUDP(conn)
		if err != nil {
			t.Fatal(err)
		}
		if w.inet6 != tc.inet6 {
			t.Errorf("%s %s: inet6 %v, want %v", tc.network, tc.addr, w.inet6, tc.inet6)
		}
		var sa unix.RawSockaddrInet6
		n := w.setName(&sa, netip.MustParseAddrPort(tc.to))
		if n != tc.wantLen {
			t.Errorf("%s to %s: address of %d bytes, want %d", tc.network, tc.to, n, tc.wantLen)
		}
		port := (*[2]byte)(unsafe.Pointer(&sa.Port))
		if port[0] != 5004>>8 || port[1] != 5004&0xff {
			t.Errorf("%s to %s: port bytes %v", tc.network, tc.to, port)
		}
		var got netip.Addr
		if n == unix.SizeofSockaddrInet4 {
			sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa))
			got = netip.AddrFrom4(sa4.Addr)
		} else {
			got = netip.AddrFrom16(sa.Addr)
		}
		if got != tc.wantAddr {
			t.Errorf("%s to %s: address %v, want %v", tc.network, tc.to, got, tc.wantAddr)
		}
	}
}

// A dual-stack socket, as the server's is when it listens on all
// addresses, sends to IPv4 receivers.
func TestSendQueueDualStackToIPv4(t *testing.T) {
	q := mustSendQueue(t, listenDualStack(t))
	t.Cleanup(func() { q.Close() })
	if !q.raw.inet6 {
		t.Fatal("the dual-stack socket was read as IPv4")
	}
	r := listenUDP(t, "udp4", "127.0.0.1:0")
	_ = r.SetReadBuffer(4 << 20)
	to := r.LocalAddr().(*net.UDPAddr)
	for i := range uint32(300) {
		if err := writeEitherWay(q, i, to); err != nil {
			t.Fatal(err)
		}
	}
	for i, seq := range receive(t, r, 300) {
		if seq != uint32(i) {
			t.Fatalf("datagram %d arrived as the %dth", seq, i)
		}
	}
}

// listenDualStack opens an AF_INET6 UDP socket that takes IPv4 too, bound
// to loopback's IPv4-mapped address (tests bind to loopback only; Go's
// net would open an IPv4 socket for that address).
func listenDualStack(t *testing.T) *net.UDPConn {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	loopback := netip.MustParseAddr("::ffff:127.0.0.1").As16()
	if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: loopback}); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "dual-stack udp")
	pc, err := net.FilePacketConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.(*net.UDPConn)
}

// A raw read gives what Go's own read of the same socket gives: the bytes
// and the sender's address (IPv4-mapped on a dual-stack socket).
func TestRawUDPReadFrom(t *testing.T) {
	for _, tc := range []struct {
		name           string
		listen         func(*testing.T) *net.UDPConn
		sender, sendTo string
	}{
		{"IPv4", func(t *testing.T) *net.UDPConn { return listenUDP(t, "udp4", "127.0.0.1:0") }, "udp4", "127.0.0.1"},
		{"IPv6", func(t *testing.T) *net.UDPConn { return listenUDP(t, "udp6", "[::1]:0") }, "udp6", "::1"},
		{"dual-stack from IPv4", listenDualStack, "udp4", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := tc.listen(t)
			u, err := newRawUDP(conn)
			if err != nil {
				t.Fatal(err)
			}
			from := listenUDP(t, tc.sender, netip.AddrPortFrom(netip.MustParseAddr(tc.sendTo), 0).String())
			to := netip.AddrPortFrom(netip.MustParseAddr(tc.sendTo), conn.LocalAddr().(*net.UDPAddr).AddrPort().Port())
			for i := range uint32(2) {
				if _, err := from.WriteToUDPAddrPort(datagram(i), to); err != nil {
					t.Fatal(err)
				}
			}
			buf := make([]byte, 2048)
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			goN, goFrom, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatal(err)
			}
			n, addr, err := u.readFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			if goN != len(datagram(0)) || n != len(datagram(1)) || addr != goFrom {
				t.Fatalf("raw read %d bytes from %v; Go's %d from %v", n, addr, goN, goFrom)
			}
			if got := binary.BigEndian.Uint32(buf); got != 1 {
				t.Fatalf("read datagram %d, want 1", got)
			}
		})
	}
}

// A raw read waits on the runtime's poller: it ends at the socket's read
// deadline with a timeout (pion's mux reads on after one) and at Close
// with net.ErrClosed; it allocates nothing.
func TestRawUDPReadWaits(t *testing.T) {
	conn := listenUDP(t, "udp4", "127.0.0.1:0")
	u, err := newRawUDP(conn)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	_ = conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, _, err := u.readFrom(buf); !os.IsTimeout(err) {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	_ = conn.SetReadDeadline(time.Time{})

	from := listenUDP(t, "udp4", "127.0.0.1:0")
	_ = conn.SetReadBuffer(1 << 20)
	to := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	const runs = 100
	for i := range uint32(runs + 1) {
		if _, err := from.WriteToUDPAddrPort(datagram(i), to); err != nil {
			t.Fatal(err)
		}
	}
	if n := testing.AllocsPerRun(runs, func() { _, _, _ = u.readFrom(buf) }); n != 0 {
		t.Errorf("%.1f allocations a read", n)
	}

	// A datagram larger than the buffer is cut to it, as Go's read
	// cuts it.
	if _, err := from.WriteToUDPAddrPort(datagram(1000), to); err != nil {
		t.Fatal(err)
	}
	if n, _, err := u.readFrom(buf[:100]); n != 100 || err != nil {
		t.Fatalf("a %d-byte datagram into 100 bytes: %d, %v", len(datagram(1000)), n, err)
	}

	done := make(chan error, 1)
	go func() {
		for {
			if _, _, err := u.readFrom(buf); err != nil {
				done <- err
				return
			}
		}
	}()
	// Close once the reader waits on the poller, so that the test shows
	// a waiting read is ended, not only a read begun after Close.
	deadline := time.Now().Add(5 * time.Second)
	for !readerWaiting() {
		if time.Now().After(deadline) {
			t.Fatal("the reader never waited on the poller")
		}
		time.Sleep(time.Millisecond)
	}
	conn.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read on a closed socket: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a read went on after Close")
	}
}

// A link-local destination's zone becomes the sockaddr's scope, and a
// scope read back becomes the zone, by the interface's name as Go's net
// gives it; numeric and unknown zones pass as numbers.
func TestRawUDPZones(t *testing.T) {
	lo := loopbackInterface(t)
	zoned := netip.MustParseAddrPort("[fe80::1%" + lo.Name + "]:5004")
	u, err := newRawUDP(listenUDP(t, "udp6", "[::1]:0"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		zone string
		want uint32
	}{{"", 0}, {lo.Name, uint32(lo.Index)}, {"7", 7}, {"no-such-interface", 0}} {
		if got := u.sendZones.index(tc.zone); got != tc.want {
			t.Errorf("zone %q: index %d, want %d", tc.zone, got, tc.want)
		}
	}
	var sa unix.RawSockaddrInet6
	u.setName(&sa, zoned)
	if sa.Scope_id != uint32(lo.Index) {
		t.Errorf("%v: scope %d, want %d", zoned, sa.Scope_id, lo.Index)
	}
	var rsa unix.RawSockaddrAny
	*(*unix.RawSockaddrInet6)(unsafe.Pointer(&rsa)) = sa
	if got := u.sockaddrAddrPort(&rsa); got != zoned {
		t.Errorf("read back as %v", got)
	}
	if got := u.readZones.name(1 << 30); got != "1073741824" {
		t.Errorf("an unknown scope named %q", got)
	}
}

// readerWaiting says whether a goroutine waits on the poller inside a raw
// read.
func readerWaiting() bool {
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	for _, g := range strings.Split(stacks, "\n\n") {
		if strings.Contains(g, "rawUDP).readFrom") && strings.Contains(g, "runtime_pollWait") {
			return true
		}
	}
	return false
}

// loopbackInterface is the machine's loopback interface, which every
// Linux machine has, whatever its name.
func loopbackInterface(t *testing.T) net.Interface {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagLoopback != 0 {
			return ifi
		}
	}
	t.Fatal("no loopback interface")
	return net.Interface{}
}
