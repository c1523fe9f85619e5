package rxstamp

import (
	"net"
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
	if at < before.UnixNano() || at > read.UnixNano()-40*time.Millisecond.Nanoseconds() {
		t.Fatalf("stamped %v after the write, the read came %v after it", time.Duration(at-before.UnixNano()), read.Sub(before))
	}
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
