package main

import (
	"bytes"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The meeting bench runs, tiny, against a server in the test's process:
// the fan-out to three subscribers and one room of three; every packet
// expected arrives with its send time.
func TestMeetingBench(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and WebRTC participants")
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
		// intake is how many receivers' connections take their media
		// on the socket's reader (--intake, the default), -1 for none.
		intake int
	}{
		{"fan-out", []string{"--subscribers", "3", "--warmup", "1s", "--duration", "3s"},
			[]string{"subscribers receiving 3 of 3", "layers at the end", "through the publisher's pion", "its first copy"}, 3},
		{"fan-out through pion", []string{"--subscribers", "2", "--warmup", "1s", "--duration", "2s", "--intake=false"},
			[]string{"subscribers receiving 2 of 2", "the receivers decrypting through pion's path (--intake=false)"}, -1},
		// Two builds alternating (here both the one in this process).
		{"compare", []string{"--compare", "other-build", "--pairs", "2", "--subscribers", "2", "--warmup", "1s", "--duration", "2s", "--intake=false"},
			[]string{"run 1 of other-build", "run 2 of bin/lookout", "alternating runs, 2 of each", "  other-build\n", "median: lost 0 of"}, -1},
		{"rooms", []string{"--rooms", "1", "--per-room", "3", "--warmup", "0s", "--duration", "3s", "--sample", "1s"},
			[]string{"hearing everyone: 3 of 3", "videos flowing while measured: 6 of 6", "t=1s", "lookout RSS: first", "slope"}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := meeting(append([]string{"--in-process"}, tc.args...), &out)
			t.Log("\n" + out.String())
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("no %q in the output", w)
				}
			}
			m := regexp.MustCompile(`packets received (\d+) of (\d+) expected`).FindStringSubmatch(out.String())
			if m == nil {
				t.Fatal("no packet count")
			}
			got, _ := strconv.Atoi(m[1])
			want, _ := strconv.Atoi(m[2])
			// Loopback under the race detector: nothing should be lost,
			// but allow a packet or two.
			if want < 100 || got < want-2 {
				t.Errorf("received %d of %d", got, want)
			}
			// Nearly every packet is matched with its leaving the
			// publisher's socket.
			fm := regexp.MustCompile(`the SFU's part; (\d+) packets`).FindStringSubmatch(out.String())
			if fm == nil {
				t.Fatal("no forwarding delay")
			}
			if fwd, _ := strconv.Atoi(fm[1]); fwd < got*9/10 {
				t.Errorf("forwarding delay of %d packets of %d", fwd, got)
			}
			// Each packet leaves as it is forwarded, not when something
			// else (a STUN check, a sender report) wakes the socket's
			// sender: under a millisecond or two even here, against
			// 100 ms. (A fan-out that queued its copies without waking
			// the sender and then did not send them made it 218 ms.)
			if d := regexp.MustCompile(`the SFU's part; \d+ packets\): p50 (\S+)`).FindStringSubmatch(out.String()); d == nil {
				t.Error("no median forwarding delay")
			} else if p50, err := time.ParseDuration(d[1]); err != nil || p50 > 100*time.Millisecond {
				t.Errorf("median forwarding delay %s (%v)", d[1], err)
			}
			// The receivers feed the SFU's bandwidth estimators.
			if tc.name != "rooms" {
				fb := regexp.MustCompile(`TWCC feedback packets from the receivers: (\d+)`).FindStringSubmatch(out.String())
				if fb == nil {
					t.Fatal("no TWCC feedback count")
				}
				if n, _ := strconv.Atoi(fb[1]); n < 10 {
					t.Errorf("TWCC feedback packets: %d", n)
				}
			}
			if !strings.Contains(out.String(), "without a send time 0") {
				t.Error("packets without a readable send time")
			}
			// The receivers' intakes caught their connections' keys and
			// took the media (the fan-out's count is at its end).
			if tc.intake > 0 {
				im := regexp.MustCompile(`on their sockets' readers \(the default, --intake\): (\d+) connections, (\d+) packets`).FindAllStringSubmatch(out.String(), -1)
				if im == nil {
					t.Fatal("no intake count")
				}
				for _, m := range im {
					conns, _ := strconv.Atoi(m[1])
					taken, _ := strconv.Atoi(m[2])
					if conns != tc.intake || tc.name != "rooms" && taken < want/2 {
						t.Errorf("intakes: %d connections (want %d), %d packets taken of %d received", conns, tc.intake, taken, want)
					}
				}
			}
		})
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, time.Millisecond}} {
		got := h.quantile(tc.q)
		if got < tc.want || float64(got) > float64(tc.want)*1.04 {
			t.Errorf("quantile(%v) = %s, want %s within 4 %%", tc.q, got, tc.want)
		}
	}
	// Every value falls in a bucket whose upper bound is at or above it,
	// and the buckets are in order.
	for v := int64(0); v < 1<<20; v = v*9/8 + 1 {
		i := histIndex(v)
		if histUpper(i) < v || i > 0 && histUpper(i-1) >= v {
			t.Fatalf("%d in bucket %d (%d-%d)", v, i, histUpper(i-1)+1, histUpper(i))
		}
	}
}

// The receivers find the send time where the publisher put it, in every
// kind of VP8 packet, and count losses, late packets and duplicates.
func TestRecvTrack(t *testing.T) {
	buf := make([]byte, 1200)
	for _, tc := range []struct {
		name        string
		first, key  bool
		wantDataOff int
	}{{"keyframe start", true, true, 14}, {"interframe start", true, false, 7}, {"continuation", false, false, 4}} {
		p := vp8Packet(buf, tc.first, tc.key, 300, [2]uint16{1280, 720}, 900, [5]byte{0, 7, 2, 1, 2})
		if got := vp8DataOffset(p); got != tc.wantDataOff {
			t.Errorf("%s: data at %d, want %d", tc.name, got, tc.wantDataOff)
		}
		if mark := p[tc.wantDataOff+8 : tc.wantDataOff+sentMarkLen]; string(mark) != "\x00\x07\x02\x01\x02" {
			t.Errorf("%s: mark % x", tc.name, mark)
		}
		if isKey := p[0]&0x10 != 0 && p[4]&1 == 0; isKey != tc.key {
			t.Errorf("%s: keyframe %v", tc.name, isKey)
		}
	}

	var phase atomic.Int32
	phase.Store(phaseMeasure)
	tr := &recvTrack{phase: &phase}
	pkt := func(seq uint16) []byte {
		b := make([]byte, 12, 1200)
		b[0] = 0x80
		b[2], b[3] = byte(seq>>8), byte(seq)
		return append(b, vp8Packet(buf, false, false, 1, [2]uint16{}, 100, [5]byte{})...)
	}
	for _, seq := range []uint16{65534, 65535, 1, 2, 0, 2, 5} { // 0 late, 2 twice, 3 and 4 lost
		tr.take(pkt(seq), benchNow()+int64(time.Millisecond))
	}
	var h, sock, fwd histogram
	r := tr.result(&h, &sock, &fwd)
	if r.expected != 8 || r.received != 6 || r.late != 1 || r.dups != 1 || r.gaps != 3 || h.n != 6 {
		t.Errorf("%+v, %d delays", r, h.n)
	}
}

// A packet's first and last copies are the least and greatest of its
// copies' delays, each packet counted once whatever its stream.
func TestCopySpread(t *testing.T) {
	var s copySpread
	for _, c := range []struct {
		stream byte
		seq    uint16
		delay  int64
	}{
		{0, 7, 3000}, {0, 7, 1000}, {0, 7, 2000}, // first 1 µs, last 3 µs
		{audioStream, 7, 0}, // another stream's packet 7: delay 0 counts
		{2, 65535, 9000},    // one copy: first and last
	} {
		s.note(c.stream, c.seq, c.delay)
	}
	first, last := s.histograms()
	if first.n != 3 || last.n != 3 {
		t.Fatalf("%d first and %d last copies, want 3 packets", first.n, last.n)
	}
	if lo, hi := first.quantile(0), first.quantile(1); lo > time.Microsecond/2 || hi < 9*time.Microsecond {
		t.Errorf("first copies from %s to %s, want 0 to 9µs", lo, hi)
	}
	// The second of three (the histogram's quantile is the value at
	// rank ⌊q·n⌋).
	if m := last.quantile(0.7); m < 3*time.Microsecond || m > 4*time.Microsecond {
		t.Errorf("middle last copy %s, want 3µs (packet 7's)", m)
	}
	if m := first.quantile(0.7); m < time.Microsecond || m > 2*time.Microsecond {
		t.Errorf("middle first copy %s, want 1µs (packet 7's)", m)
	}
}

// contextSwitches counts a process's switches thread by thread: a
// process that sleeps again and again makes them, and switchesBetween
// sums them and finds the busiest thread.
func TestContextSwitches(t *testing.T) {
	before, err := contextSwitches(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		time.Sleep(time.Millisecond)
	}
	after, err := contextSwitches(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if total, busiest := switchesBetween(before, after); total < 25 || busiest < 1 || busiest > total {
		t.Fatalf("%d context switches over 50 sleeps, at most %d in one thread", total, busiest)
	}
	if _, err := contextSwitches(1 << 30); err == nil {
		t.Fatal("no error for a process that does not exist")
	}
	total, busiest := switchesBetween(map[string]int64{"1": 10, "2": 5, "gone": 7}, map[string]int64{"1": 40, "2": 5, "3": 12})
	if total != 42 || busiest != 30 {
		t.Fatalf("switchesBetween: %d in all, %d at most; want 42, 30", total, busiest)
	}
}
