package rtc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func listenUDP(t *testing.T, network, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatalf("listen %s on loopback: %v", network, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newTestQueue(t *testing.T, network, addr string) *sendQueue {
	t.Helper()
	q := mustSendQueue(t, listenUDP(t, network, addr))
	t.Cleanup(func() { q.Close() })
	return q
}

func mustSendQueue(t testing.TB, c *net.UDPConn) *sendQueue {
	t.Helper()
	q, err := newSendQueue(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// receive reads n datagrams from c and returns their sequence numbers (the
// first four bytes), failing on any that is not what datagram(i) made.
func receive(t *testing.T, c *net.UDPConn, n int) []uint32 {
	t.Helper()
	var got []uint32
	buf := make([]byte, 2048)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for len(got) < n {
		m, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("after %d of %d datagrams: %v", len(got), n, err)
		}
		i := binary.BigEndian.Uint32(buf)
		if want := datagram(i); !bytes.Equal(buf[:m], want) {
			t.Fatalf("datagram %d: %d bytes, not the %d sent", i, m, len(want))
		}
		got = append(got, i)
	}
	return got
}

// datagram i: its number, then bytes of a length and content that vary
// with it.
// writeEitherWay queues datagram(i) for to through WriteToAddrPort when
// i is even and through WriteTo when it is odd.
func writeEitherWay(q *sendQueue, i uint32, to *net.UDPAddr) error {
	var err error
	if i%2 == 0 {
		_, err = q.WriteToAddrPort(datagram(i), to.AddrPort())
	} else {
		_, err = q.WriteTo(datagram(i), to)
	}
	return err
}

func datagram(i uint32) []byte {
	b := make([]byte, 4+int(i*37)%1100)
	binary.BigEndian.PutUint32(b, i)
	for j := 4; j < len(b); j++ {
		b[j] = byte(int(i) + j)
	}
	return b
}

// Datagrams written from several goroutines to several receivers all
// arrive whole, each writer's in its order, over IPv4 and IPv6, through
// both write methods; the queue wraps around many times.
func TestSendQueueDelivers(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{{"udp4", "127.0.0.1:0"}, {"udp6", "[::1]:0"}, {"udp", "127.0.0.1:0"}} {
		t.Run(tc.network, func(t *testing.T) {
			q := newTestQueue(t, tc.network, tc.addr)
			const writers, each = 4, 1000 // 4,000 datagrams: five turns of the ring
			receivers := make([]*net.UDPConn, writers)
			for i := range receivers {
				receivers[i] = listenUDP(t, tc.network, tc.addr)
				_ = receivers[i].SetReadBuffer(4 << 20)
			}
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					to := receivers[w].LocalAddr().(*net.UDPAddr)
					for i := range uint32(each) {
						if err := writeEitherWay(q, i, to); err != nil {
							t.Error(err)
							return
						}
						if i%100 == 99 {
							time.Sleep(time.Millisecond) // let the receivers keep up
						}
					}
				}()
			}
			for _, r := range receivers {
				got := receive(t, r, each)
				for i, seq := range got {
					if seq != uint32(i) {
						t.Fatalf("datagram %d arrived as the %dth", seq, i)
					}
				}
			}
			wg.Wait()
		})
	}
}

// A datagram the kernel refuses is dropped and counted; those queued with
// it still go.
func TestSendQueueSkipsRefusedDatagram(t *testing.T) {
	q := newTestQueue(t, "udp4", "127.0.0.1:0")
	r := listenUDP(t, "udp4", "127.0.0.1:0")
	to := r.LocalAddr().(*net.UDPAddr).AddrPort()
	bad := netip.MustParseAddrPort("127.0.0.1:0") // port 0: EINVAL
	for i := range uint32(20) {
		if _, err := q.WriteToAddrPort(datagram(i), to); err != nil {
			t.Fatal(err)
		}
		if i%5 == 0 {
			if _, err := q.WriteToAddrPort([]byte("nowhere"), bad); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := receive(t, r, 20); len(got) != 20 {
		t.Fatalf("received %d", len(got))
	}
	deadline := time.Now().Add(5 * time.Second)
	for q.Refused() != 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := q.Refused(); n != 4 {
		t.Fatalf("refused %d datagrams, want 4", n)
	}
}

// Close sends what was queued before it; a write after it fails.
func TestSendQueueCloseDrains(t *testing.T) {
	q := mustSendQueue(t, listenUDP(t, "udp4", "127.0.0.1:0"))
	r := listenUDP(t, "udp4", "127.0.0.1:0")
	_ = r.SetReadBuffer(4 << 20)
	to := r.LocalAddr().(*net.UDPAddr).AddrPort()
	for i := range uint32(500) {
		if _, err := q.WriteToAddrPort(datagram(i), to); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	receive(t, r, 500)
	if n := q.sent.Load(); n != 500 {
		t.Errorf("%d datagrams counted sent, want 500", n)
	}
	if _, err := q.WriteToAddrPort([]byte("late"), to); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	if err := q.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
}

// Queueing a datagram allocates nothing: it is the write of every packet
// a meeting forwards.
func TestSendQueueWriteAllocatesNothing(t *testing.T) {
	q := newTestQueue(t, "udp4", "127.0.0.1:0")
	r := listenUDP(t, "udp4", "127.0.0.1:0")
	to := r.LocalAddr().(*net.UDPAddr).AddrPort()
	b := datagram(7)
	if n := testing.AllocsPerRun(200, func() { _, _ = q.WriteToAddrPort(b, to) }); n != 0 {
		t.Fatalf("%.1f allocations a write", n)
	}
}

func BenchmarkSendQueue(b *testing.B) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	q, err := newSendQueue(c, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	r, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := r.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
		}
	}()
	to := r.LocalAddr().(*net.UDPAddr).AddrPort()
	p := datagram(1000)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		_, _ = q.WriteToAddrPort(p, to)
	}
}
