package meeting

import (
	"time"

	"github.com/pion/rtcp"
)

// nackLog asks a publisher again for the packets of one video layer lost
// on its way to the SFU (RFC 4585 generic NACK), and stops asking for a
// packet once it came: over the layer's RTX stream or late.
//
// Why not pion's NACK generator: pion unwraps a retransmission on the RTX
// stream's reader and hands it to the track past the media stream's
// interceptors, so its generator never sees the repaired packet and asks
// for it every 100 ms until 512 packets later (pion/webrtc#3063): some
// twenty asks, each a retransmission more on the publisher's uplink, the
// weak county link that lost the packet (TestPublisherLossAskedForAFewTimes
// counted 35 for one packet; in TestBrowserMeetingUplinkLoss Chromium sent
// ten retransmissions a loss). The track's reader sees every packet, the
// repaired ones too, so the log is kept there.
//
// A gap is asked for after nackFirstAfter (a packet only reordered comes
// within it), then again while it has not come, a round trip later
// (nackRetry: at least nackRetryAfter, as a browser's sender resends a
// packet at most once a round trip), at most nackMaxAsks times; a packet
// older than nackGiveUpAfter is given up (its frame is past use, and a
// keyframe request mends what it breaks). A jump of more than nackMaxGap
// numbers is not asked for: the stream restarted or lost a stretch no
// retransmission would mend in time.
//
// Asks are made as packets arrive and, between them, when the track's
// read deadline (set to nextDue) passes: a layer at a frame a second, a
// screen share, asks as soon as a 30-frame one.
//
// It is used by the layer's one reader; it allocates nothing per packet,
// only a NACK when one is sent.
type nackLog struct {
	started bool
	highest uint16
	// missing are the numbers not yet come, oldest first.
	missing   []missingPacket
	lastCheck int64
	// seqs is the scratch of one NACK's numbers.
	seqs []uint16
}

type missingPacket struct {
	seq   uint16
	since int64 // when the gap was seen (nanotime)
	asked int64 // when last asked for, 0 not yet
	asks  uint8
}

const (
	nackFirstAfter  = 10 * time.Millisecond
	nackRetryAfter  = 100 * time.Millisecond
	nackMaxAsks     = 3
	nackGiveUpAfter = time.Second
	nackMaxGap      = 200
	// nackMaxMissing bounds the log: more missing at once is a link
	// that is gone, not one to mend packet by packet.
	nackMaxMissing = 256
	// nackCheckEvery is how often, at most, a packet's arrival looks
	// for asks that are due.
	nackCheckEvery = 5 * time.Millisecond
)

// nackRetry is the wait between two asks for a packet: a round trip and a
// half to the publisher (rtt; 0 unknown), at least nackRetryAfter.
func nackRetry(rtt time.Duration) int64 {
	return int64(max(nackRetryAfter, rtt*3/2))
}

// received notes packet seq's arrival at now (nanotime) and returns the
// NACK due then, if any (nil otherwise), for the layer's SSRC; retry is
// nackRetry's.
func (l *nackLog) received(seq uint16, now int64, ssrc uint32, retry int64) *rtcp.TransportLayerNack {
	switch d := int16(seq - l.highest); {
	case !l.started:
		l.started, l.highest = true, seq
	case d > 0:
		if d > 1 && d <= nackMaxGap {
			for s := l.highest + 1; s != seq; s++ {
				if len(l.missing) == nackMaxMissing {
					copy(l.missing, l.missing[1:])
					l.missing = l.missing[:len(l.missing)-1]
				}
				l.missing = append(l.missing, missingPacket{seq: s, since: now})
			}
		}
		l.highest = seq
	default:
		// Late or repaired: no longer missing.
		for i := range l.missing {
			if l.missing[i].seq == seq {
				l.missing = append(l.missing[:i], l.missing[i+1:]...)
				break
			}
		}
	}
	if len(l.missing) == 0 || now-l.lastCheck < int64(nackCheckEvery) {
		return nil
	}
	return l.due(now, ssrc, retry)
}

// due drops what is given up and collects what is to be asked for now.
func (l *nackLog) due(now int64, ssrc uint32, retry int64) *rtcp.TransportLayerNack {
	l.lastCheck = now
	l.seqs = l.seqs[:0]
	kept := l.missing[:0]
	for _, m := range l.missing {
		if now-m.since > int64(nackGiveUpAfter) || m.asks >= nackMaxAsks && now-m.asked >= retry {
			continue
		}
		if m.asks < nackMaxAsks && (m.asks == 0 && now-m.since >= int64(nackFirstAfter) || m.asks > 0 && now-m.asked >= retry) {
			m.asks++
			m.asked = now
			l.seqs = append(l.seqs, m.seq)
		}
		kept = append(kept, m)
	}
	l.missing = kept
	if len(l.seqs) == 0 {
		return nil
	}
	return &rtcp.TransportLayerNack{MediaSSRC: ssrc, Nacks: rtcp.NackPairsFromSequenceNumbers(l.seqs)}
}

// nextDue is when due next has something to do (an ask, or a packet to
// give up), nanotime; 0 when nothing is missing.
func (l *nackLog) nextDue(retry int64) int64 {
	next := int64(0)
	for _, m := range l.missing {
		at := m.since + int64(nackGiveUpAfter) + 1
		if m.asks == 0 {
			at = m.since + int64(nackFirstAfter)
		} else {
			at = min(at, m.asked+retry)
		}
		if next == 0 || at < next {
			next = at
		}
	}
	return next
}
