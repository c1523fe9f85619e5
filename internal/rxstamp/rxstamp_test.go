package rxstamp

import (
	"net"
	"syscall"
	"testing"
	"time"
)

func TestReceiveTime(t *testing.T) {
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	if err := Enable(rx); err != nil {
		t.Fatal(err)
	}
	tx, err := net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	before := time.Now()
	if _, err := tx.Write([]byte("stamp me")); err != nil {
		t.Fatal(err)
	}
	// When the datagram is seen queued on the socket (peeked, not read).
	// On a loaded machine the kernel may take its time to deliver even a
	// loopback datagram (its receive work deferred to ksoftirqd): the
	// stamp is that delivery, whenever it came.
	queued := waitQueued(t, rx)
	// Read well after the datagram came: the stamp is its arrival, not
	// the read.
	time.Sleep(50 * time.Millisecond)
	buf, oob := make([]byte, 64), make([]byte, OOBSize)
	_, oobn, _, _, err := rx.ReadMsgUDP(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	read := time.Now()
	at, ok := Time(oob[:oobn])
	if !ok {
		t.Fatal("no timestamp in the control messages")
	}
	if at < before.UnixNano() || at > queued.UnixNano() || read.UnixNano()-at < 50*time.Millisecond.Nanoseconds() {
		t.Fatalf("stamped %v after the write; seen queued %v and read %v after it", time.Duration(at-before.UnixNano()), queued.Sub(before), read.Sub(before))
	}
}

// waitQueued returns when a datagram is queued on c, without reading it.
func waitQueued(t *testing.T, c *net.UDPConn) time.Time {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	peek := make([]byte, 1)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Microsecond) {
		var queued bool
		if err := rc.Control(func(fd uintptr) {
			_, _, err := syscall.Recvfrom(int(fd), peek, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			queued = err == nil
		}); err != nil {
			t.Fatal(err)
		}
		if queued {
			return time.Now()
		}
	}
	t.Fatal("no datagram queued within 10 s")
	return time.Time{}
}

func TestTimeRefusesBrokenControlMessages(t *testing.T) {
	for _, oob := range [][]byte{nil, make([]byte, 8), make([]byte, 15), {255, 255, 255, 255, 255, 255, 255, 255, 1, 0, 0, 0, 35, 0, 0, 0}} {
		if _, ok := Time(oob); ok {
			t.Errorf("Time(%v) found a timestamp", oob)
		}
	}
}

// FuzzTime: whatever the control messages, Time reads inside them.
func FuzzTime(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{32, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 35, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{17, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, oob []byte) {
		Time(oob)
	})
}
