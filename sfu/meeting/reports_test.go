package meeting

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

func TestNTPTime(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want uint64
	}{
		{time.Unix(0, 0), ntpEpochOffset << 32},
		{time.Unix(1, 500_000_000), (ntpEpochOffset+1)<<32 | 1<<31},
		{time.Date(2026, 11, 30, 12, 0, 0, 250_000_000, time.UTC), uint64(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC).Unix()+ntpEpochOffset)<<32 | 1<<30},
	} {
		if got := ntpTime(tc.t); got != tc.want {
			t.Errorf("ntpTime(%v) = %x, want %x", tc.t, got, tc.want)
		}
	}
}

// A sender report carries the counts of what was sent and the RTP time of
// its own moment; the receiver report that answers it gives the round
// trip.
func TestSenderAndReceiverReports(t *testing.T) {
	u, downs := benchTrack(1)
	d := downs[0]
	if _, ok := d.senderReport(time.Now(), nanotime()); ok {
		t.Fatal("a report before the first packet")
	}
	payload := make([]byte, 500)
	payload[0] = 0x10 // a VP8 keyframe's start
	sent := nanotime()
	forward(u, layerHigh, &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 7, Timestamp: 90_000}, Payload: payload}, sent)
	forward(u, layerHigh, &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 8, Timestamp: 90_000}, Payload: payload}, sent)

	wall := time.Now()
	sr, ok := d.senderReport(wall, sent+int64(500*time.Millisecond))
	if !ok {
		t.Fatal("no report")
	}
	if sr.SSRC != d.ssrc || sr.PacketCount != 2 || sr.OctetCount != 1000 || sr.RTPTime != 90_000+45_000 || sr.NTPTime != ntpTime(wall) {
		t.Fatalf("report %+v", sr)
	}

	// The subscriber answers 80 ms later, having held it for 30 ms.
	lsr := uint32(sr.NTPTime >> 16)
	d.takeReceiverReport(&rtcp.ReceiverReport{Reports: []rtcp.ReceptionReport{
		{SSRC: d.ssrc + 1, FractionLost: 200},
		{SSRC: d.ssrc, FractionLost: 64, LastSenderReport: lsr, Delay: 30 * 65536 / 1000},
	}}, wall.Add(80*time.Millisecond))
	p := &participant{downs: map[*upTrack]*downTrack{u: d}}
	lost, rtt := p.remoteInbound()
	if lost != 0.25 || rtt < 0.049 || rtt > 0.051 {
		t.Fatalf("lost %v, rtt %v", lost, rtt)
	}
}

// Many sender reports go out in packets that stay under the MTU.
func TestSenderReportsStayUnderTheMTU(t *testing.T) {
	var pkts []rtcp.Packet
	for i := range 97 {
		pkts = append(pkts, &rtcp.SenderReport{SSRC: uint32(i + 1)})
	}
	var sizes []int
	seen := 0
	writeInChunks(pkts, reportsPerPacket, func(chunk []rtcp.Packet) error {
		b, err := rtcp.Marshal(chunk)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(b))
		seen += len(chunk)
		return nil
	})
	if seen != 97 || len(sizes) != 3 {
		t.Fatalf("%d reports in %d packets", seen, len(sizes))
	}
	for _, n := range sizes {
		if n+14 > 1200 { // SRTCP adds its index and tag
			t.Fatalf("a packet of %d bytes", n)
		}
	}
}
