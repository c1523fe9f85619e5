package bwe

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
)

var testConfig = Config{Initial: 1_000_000, Min: 30_000, Max: 8_000_000}

// link simulates a subscriber's downlink: packets queue at a bottleneck of
// capacity bit/s (0: none) and leave at its rate, those that would wait
// more than 250 ms are dropped (a router's queue), and each takes 20 ms
// more to arrive. The receiver is pion's TWCC recorder, as a pion client
// has, and reports every 100 ms; the reports travel 20 ms back and are
// marshalled and parsed on the way, as the SFU reads them.
type link struct {
	t        *testing.T
	e        *Estimator
	capacity int64
	rec      *twcc.Recorder
	now      int64 // ns
	busy     int64 // when the bottleneck is free
	inFlight []flight
	reports  []report
	nextFB   int64
	sent     int
	lost     int
}

type flight struct {
	seq uint16
	at  int64
}

type report struct {
	at  int64
	raw []byte
}

const (
	oneWay    = 20 * int64(time.Millisecond)
	maxQueue  = 250 * int64(time.Millisecond)
	fbEvery   = 100 * int64(time.Millisecond)
	packetLen = 1200
)

func newLink(t *testing.T, capacity int64) *link {
	return &link{t: t, e: New(testConfig), capacity: capacity, rec: twcc.NewRecorder(1), now: int64(time.Second)}
}

// send sends one packet of size bytes now.
func (l *link) send(size int) {
	seq := l.e.Sent(size, l.now)
	l.sent++
	leave := l.now
	if l.capacity > 0 {
		start := max(l.busy, l.now)
		if start-l.now > maxQueue {
			l.lost++
			return
		}
		l.busy = start + int64(size*8)*int64(time.Second)/l.capacity
		leave = l.busy
	}
	l.inFlight = append(l.inFlight, flight{seq: seq, at: leave + oneWay})
}

// advance moves time to until, delivering packets and reports due.
func (l *link) advance(until int64) {
	for l.now < until {
		l.now = min(until, l.now+int64(time.Millisecond))
		n := 0
		for _, f := range l.inFlight {
			if f.at <= l.now {
				l.rec.Record(1, f.seq, f.at/1000)
			} else {
				l.inFlight[n] = f
				n++
			}
		}
		l.inFlight = l.inFlight[:n]
		if l.now >= l.nextFB {
			l.nextFB = l.now + fbEvery
			for _, p := range l.rec.BuildFeedbackPacket() {
				raw, err := p.Marshal()
				if err != nil {
					l.t.Fatal(err)
				}
				l.reports = append(l.reports, report{at: l.now + oneWay, raw: raw})
			}
		}
		m := 0
		for _, r := range l.reports {
			if r.at > l.now {
				l.reports[m] = r
				m++
				continue
			}
			pkts, err := rtcp.Unmarshal(r.raw)
			if err != nil {
				l.t.Fatal(err)
			}
			for _, p := range pkts {
				if fb, ok := p.(*rtcp.TransportLayerCC); ok {
					l.e.Feedback(fb, l.now)
				}
			}
		}
		l.reports = l.reports[:m]
	}
}

// run sends at rate(now) bit/s, in 1,200-byte packets, for d.
func (l *link) run(d time.Duration, rate func() int64) {
	end := l.now + int64(d)
	var credit float64
	for l.now < end {
		credit += float64(rate()) / 8 / 1000 // bytes a millisecond
		for credit >= packetLen {
			l.send(packetLen)
			credit -= packetLen
		}
		l.advance(l.now + int64(time.Millisecond))
	}
}

func constant(r int64) func() int64 { return func() int64 { return r } }

// A link with room to spare: no loss, no overuse, and the estimate grows
// past what is sent (up to 1.5 times it).
func TestEstimateGrowsOnAClearLink(t *testing.T) {
	l := newLink(t, 0)
	l.run(10*time.Second, constant(1_000_000))
	s := l.e.State()
	if s.Overuse || s.Loss > 0 {
		t.Fatalf("clear link: %+v", s)
	}
	if s.Estimate < 1_200_000 || s.Estimate > 1_600_000 {
		t.Fatalf("estimate %d after 10 s of 1 Mbit/s on a clear link, want 1.2-1.6 Mbit/s", s.Estimate)
	}
	if s.Received < 950_000 || s.Received > 1_050_000 {
		t.Fatalf("received %d, sent 1 Mbit/s", s.Received)
	}
}

// Sending 900 kbit/s into a 400 kbit/s link: the estimator sees the delay
// grow before the queue overflows, and its estimate falls near the link's
// rate, below what is sent, which is what the meeting's allocator acts
// on; then the loss.
func TestCongestionIsSeen(t *testing.T) {
	l := newLink(t, 400_000)
	overuse := false
	for range 20 {
		l.run(100*time.Millisecond, constant(900_000))
		if l.e.State().Overuse {
			overuse = true
			break
		}
	}
	if !overuse {
		t.Fatalf("no overuse within 2 s of sending 900 kbit/s into 400 kbit/s: %+v", l.e.State())
	}
	if lost := l.lost; lost > 0 {
		t.Logf("%d packets dropped by the time overuse was seen", lost)
	}
	l.run(300*time.Millisecond, constant(900_000))
	if s := l.e.State(); s.Estimate > 500_000 || s.Estimate < 200_000 {
		t.Fatalf("estimate %d after overuse on a 400 kbit/s link, want 200-500 kbit/s", s.Estimate)
	}
	// A sender that goes on regardless loses more than half: the
	// loss-based estimate keeps falling.
	l.run(3*time.Second, constant(900_000))
	if s := l.e.State(); s.Loss < 0.3 || s.Estimate > 200_000 {
		t.Fatalf("loss %.2f, estimate %d after 3 s more of 900 kbit/s into 400 kbit/s", s.Loss, s.Estimate)
	}
}

// A sender that follows the estimate settles near the link's capacity,
// with little loss: the AIMD loop works end to end.
func TestSenderFollowingTheEstimateFitsTheLink(t *testing.T) {
	l := newLink(t, 1_000_000)
	rate := func() int64 { return l.e.State().Estimate }
	l.run(20*time.Second, rate)
	sentBefore, lostBefore := l.sent, l.lost
	var sum, n int64
	for range 100 {
		l.run(100*time.Millisecond, rate)
		sum += l.e.State().Estimate
		n++
	}
	avg := sum / n
	if avg < 600_000 || avg > 1_300_000 {
		t.Fatalf("average estimate %d over the last 10 s on a 1 Mbit/s link", avg)
	}
	if loss := float64(l.lost-lostBefore) / float64(l.sent-sentBefore); loss > 0.05 {
		t.Fatalf("%.1f%% lost while following the estimate", 100*loss)
	}
}

// A link that goes from 2 Mbit/s to 300 kbit/s: the estimate follows it
// down within a few seconds.
func TestEstimateFollowsTheLinkDown(t *testing.T) {
	l := newLink(t, 2_000_000)
	rate := func() int64 { return l.e.State().Estimate }
	l.run(10*time.Second, rate)
	l.capacity = 300_000
	l.run(5*time.Second, rate)
	if s := l.e.State(); s.Estimate > 450_000 {
		t.Fatalf("estimate %d 5 s after the link fell to 300 kbit/s", s.Estimate)
	}
}

// Reports the estimator cannot trust in full are read as far as they make
// sense: unknown packets (sent before a restart, or never) are ignored, a
// packet reported twice is counted once, and a report with fewer arrival
// times than it says arrived neither panics nor invents times.
func TestOddReports(t *testing.T) {
	e := New(testConfig)
	for i := range 10 {
		e.Sent(1000, int64(i)*int64(time.Millisecond))
	}
	fb := func(base uint16, count uint16, chunks []rtcp.PacketStatusChunk, deltas ...int64) *rtcp.TransportLayerCC {
		f := &rtcp.TransportLayerCC{BaseSequenceNumber: base, PacketStatusCount: count, ReferenceTime: 100, PacketChunks: chunks}
		for _, d := range deltas {
			f.RecvDeltas = append(f.RecvDeltas, &rtcp.RecvDelta{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: d})
		}
		return f
	}
	run := func(symbol, n uint16) rtcp.PacketStatusChunk {
		return &rtcp.RunLengthChunk{Type: rtcp.TypeTCCRunLengthChunk, PacketStatusSymbol: symbol, RunLength: n}
	}
	received, notReceived := rtcp.TypeTCCPacketReceivedSmallDelta, rtcp.TypeTCCPacketNotReceived

	// Packets 0-3 arrived, 4-5 lost.
	e.Feedback(fb(0, 6, []rtcp.PacketStatusChunk{run(received, 4), run(notReceived, 2)}, 1000, 1000, 1000, 1000), int64(time.Second))
	if s := e.State(); s.Loss < 0.3 || s.Loss > 0.4 {
		t.Fatalf("loss %.2f after 2 of 6 lost", s.Loss)
	}
	// 0-3 again (a duplicate report), 100-109 (never sent): nothing new.
	before := e.State()
	e.Feedback(fb(0, 4, []rtcp.PacketStatusChunk{run(received, 4)}, 1000, 1000, 1000, 1000), int64(time.Second)+1)
	e.Feedback(fb(100, 10, []rtcp.PacketStatusChunk{run(received, 10)}, 1000), int64(time.Second)+2)
	if after := e.State(); after != before {
		t.Fatalf("a duplicate and an unknown report changed the state: %+v to %+v", before, after)
	}
	// 6-9 said received, with one arrival time for four; a length that
	// cuts the fixed fields; not a feedback packet: refused whole.
	before = e.State()
	raw := func(f *rtcp.TransportLayerCC) []byte {
		b, err := f.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		b[0], b[1] = 0x80|rtcp.FormatTCC, byte(rtcp.TypeTransportSpecificFeedback)
		binary.BigEndian.PutUint16(b[2:], uint16(len(b)/4-1))
		return b
	}
	if err := e.FeedbackRaw(raw(fb(6, 4, []rtcp.PacketStatusChunk{run(received, 4)}, 1000)), int64(time.Second)+3); !errors.Is(err, ErrShortReport) {
		t.Fatalf("four received, one delta: %v", err)
	}
	cut := raw(fb(6, 4, []rtcp.PacketStatusChunk{run(received, 4)}, 1000, 1000, 1000, 1000))
	binary.BigEndian.PutUint16(cut[2:], 3) // 16 bytes
	if err := e.FeedbackRaw(cut, int64(time.Second)+3); !errors.Is(err, ErrShortReport) {
		t.Fatalf("a length of 16 bytes: %v", err)
	}
	if err := e.FeedbackRaw([]byte{0x81, 201, 0, 1, 0, 0, 0, 0}, int64(time.Second)+3); !errors.Is(err, ErrNotFeedback) {
		t.Fatalf("a receiver report: %v", err)
	}
	if after := e.State(); after != before {
		t.Fatalf("malformed reports changed the state: %+v to %+v", before, after)
	}
	// A status vector of one-bit symbols: 1 is received.
	e2 := New(testConfig)
	for range 3 {
		e2.Sent(1000, 0)
	}
	e2.Feedback(fb(0, 3, []rtcp.PacketStatusChunk{&rtcp.StatusVectorChunk{Type: rtcp.TypeTCCStatusVectorChunk,
		SymbolSize: rtcp.TypeTCCSymbolSizeOneBit, SymbolList: []uint16{1, 0, 1}}}, 1000, 1000), int64(time.Second))
	if s := e2.State(); s.Loss < 0.3 || s.Loss > 0.4 {
		t.Fatalf("loss %.2f after 1 of 3 lost in a one-bit vector", s.Loss)
	}
}

// The reference time wraps after 2^24 64 ms units (12 days): arrivals on
// either side of the wrap stay in order.
func TestReferenceTimeWraps(t *testing.T) {
	e := New(testConfig)
	e.Sent(1000, 0)
	e.Sent(1000, 1)
	one := func(seq uint16, ref uint32) *rtcp.TransportLayerCC {
		return &rtcp.TransportLayerCC{BaseSequenceNumber: seq, PacketStatusCount: 1, ReferenceTime: ref,
			PacketChunks: []rtcp.PacketStatusChunk{&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 1}},
			RecvDeltas:   []*rtcp.RecvDelta{{Type: rtcp.TypeTCCPacketReceivedSmallDelta}}}
	}
	e.Feedback(one(0, 1<<24-1), 1)
	first := e.arrivals[0].arrived
	e.Feedback(one(1, 0), 2)
	if got := e.arrivals[0].arrived - first; got != 64*int64(time.Millisecond) {
		t.Fatalf("the arrival after the wrap is %v after the one before it, want 64ms", time.Duration(got))
	}
}

// Recording a sent packet and reading a report allocate nothing: Sent runs
// for every packet to every subscriber.
func TestNoAllocation(t *testing.T) {
	e := New(testConfig)
	if n := testing.AllocsPerRun(1000, func() { e.Sent(1200, 1) }); n != 0 {
		t.Fatalf("Sent: %.1f allocations", n)
	}
	l := newLink(t, 0)
	l.run(time.Second, constant(1_000_000))
	fb, err := reportOf(t, 20).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	e = New(testConfig)
	if n := testing.AllocsPerRun(100, func() {
		for range 20 {
			e.Sent(1200, 1)
		}
		if err := e.FeedbackRaw(fb, 2); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("FeedbackRaw: %.1f allocations", n)
	}
}

// reportOf is a real report (pion's recorder) of n packets 1 ms apart.
func reportOf(t testing.TB, n int) *rtcp.TransportLayerCC {
	rec := twcc.NewRecorder(1)
	for i := range n {
		rec.Record(1, uint16(i), int64(i)*1000)
	}
	return rec.BuildFeedbackPacket()[0].(*rtcp.TransportLayerCC)
}

func BenchmarkSent(b *testing.B) {
	e := New(testConfig)
	b.ReportAllocs()
	for b.Loop() {
		e.Sent(1200, 1)
	}
}

// BenchmarkFeedback is 20 packets sent and reported (the report read from
// its wire form): per packet, divide by 20.
func BenchmarkFeedback(b *testing.B) {
	fb, err := reportOf(b, 20).Marshal()
	if err != nil {
		b.Fatal(err)
	}
	e := New(testConfig)
	b.ReportAllocs()
	now := int64(0)
	for b.Loop() {
		for range 20 {
			now += int64(time.Millisecond)
			e.Sent(1200, now)
		}
		binary.BigEndian.PutUint16(fb[12:], e.next-20) // the base sequence number
		fb[18]++                                       // the reference time's low byte
		if err := e.FeedbackRaw(fb, now); err != nil {
			b.Fatal(err)
		}
	}
}
