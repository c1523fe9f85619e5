package meeting

import (
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// RTCP sender and receiver reports of what the SFU sends, made here rather
// than by pion's report and statistics interceptors: those take a lock and
// the time for every packet of every subscriber, a fifth of the forwarding
// CPU at 200 subscribers (lookout-bench meeting). Reports are once a
// second; the counters they need are the downTrack's own.

// reportInterval is how often each subscriber gets its sender reports.
const reportInterval = time.Second

// ntpEpochOffset is the seconds from 1900 (NTP's epoch) to 1970.
const ntpEpochOffset = 2_208_988_800

// ntpTime is t as a 64-bit NTP timestamp.
func ntpTime(t time.Time) uint64 {
	ns := uint64(t.UnixNano())
	secs := ns/1e9 + ntpEpochOffset
	frac := (ns % 1e9) << 32 / 1e9
	return secs<<32 | frac
}

// senderReport is the track's sender report at now (wall clock; mono is
// the same instant on nanotime's clock), false before its first packet.
// The RTP time of now is the last packet's, advanced by the time since it
// was sent: a paused or muted track's clock goes on.
func (d *downTrack) senderReport(now time.Time, mono int64) (rtcp.SenderReport, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ws == nil || !d.started {
		return rtcp.SenderReport{}, false
	}
	elapsed := uint32((mono - d.lastAt) * int64(d.up.codec.ClockRate) / int64(time.Second))
	return rtcp.SenderReport{
		SSRC:        d.ssrc,
		NTPTime:     ntpTime(now),
		RTPTime:     d.lastTS + elapsed,
		PacketCount: uint32(d.packets.Load()),
		OctetCount:  uint32(d.bytes.Load()),
	}, true
}

// reportsPerPacket is how many sender reports go in one compound RTCP
// packet: 28 bytes each, so that with SRTCP's trailer a packet stays well
// under the MTU (a room of 30 cameras and microphones would otherwise send
// datagrams of 1,700 bytes, which receivers reading 1,500 and networks
// that drop fragments lose).
const reportsPerPacket = 40

// sendReports sends the sender reports of every track the participant
// receives.
func (p *participant) sendReports() {
	p.negMu.Lock()
	pc := p.sub
	p.negMu.Unlock()
	if pc == nil || pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
		return
	}
	// The wall and monotonic clocks read together: the report's NTP time
	// and RTP time are of one instant.
	now, mono := time.Now(), nanotime()
	var pkts []rtcp.Packet
	for _, d := range p.downTracks() {
		if sr, ok := d.senderReport(now, mono); ok {
			pkts = append(pkts, &sr)
		}
	}
	writeInChunks(pkts, reportsPerPacket, pc.WriteRTCP)
}

// writeInChunks writes pkts n at a time (the last chunk may be shorter).
func writeInChunks(pkts []rtcp.Packet, n int, write func([]rtcp.Packet) error) {
	for len(pkts) > 0 {
		k := min(len(pkts), n)
		_ = write(pkts[:k])
		pkts = pkts[k:]
	}
}

// remoteReport is what the subscriber's last receiver report said of a
// track: the fraction lost (of 256) and the round-trip time, if the
// report answered a sender report.
type remoteReport struct {
	fractionLost atomic.Uint32
	rttMicros    atomic.Int64 // 0: not known
}

// boundSSRC is the SSRC the connection gave the track (0 until bound).
func (d *downTrack) boundSSRC() uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ssrc
}

// takeReceiverReport notes the report block about this track.
func (d *downTrack) takeReceiverReport(rr *rtcp.ReceiverReport, now time.Time) {
	ssrc := d.boundSSRC()
	for _, b := range rr.Reports {
		if b.SSRC != ssrc {
			continue
		}
		d.remote.fractionLost.Store(uint32(b.FractionLost))
		if b.LastSenderReport != 0 {
			// RFC 3550 6.4.1: arrival - LSR - DLSR, in 1/65536 s.
			compact := uint32(ntpTime(now) >> 16)
			if rtt := compact - b.LastSenderReport - b.Delay; rtt < 1<<31 {
				d.remote.rttMicros.Store(int64(rtt) * 1_000_000 >> 16)
			}
		}
	}
}

// remoteInbound is the worst fraction lost and the mean round-trip time
// (seconds) the participant's receiver reports say of what it receives.
func (p *participant) remoteInbound() (lost, rtt float64) {
	n := 0
	for _, d := range p.downTracks() {
		lost = max(lost, float64(d.remote.fractionLost.Load())/256)
		if us := d.remote.rttMicros.Load(); us > 0 {
			rtt += float64(us) / 1e6
			n++
		}
	}
	if n > 0 {
		rtt /= float64(n)
	}
	return lost, rtt
}
