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
// counted 34 for one packet). The track's reader sees every packet, the
// repaired ones too, so the log is kept there.
//
// A gap is asked for after nackFirstAfter (a packet only reordered comes
// within it), then again every nackRetryAfter while it has not come, at
// most nackMaxAsks times; a packet older than nackGiveUpAfter is given
// up (its frame is past use, and a keyframe request mends what it
// breaks). A jump of more than nackMaxGap numbers is not asked for: the
// stream restarted or lost a stretch no retransmission would mend in
// time.
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

// received notes packet seq's arrival at now (nanotime) and returns the
// NACK due then, if any (nil otherwise), for the layer's SSRC.
func (l *nackLog) received(seq uint16, now int64, ssrc uint32) *rtcp.TransportLayerNack {
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
	l.lastCheck = now
	return l.due(now, ssrc)
}

// due drops what is given up and collects what is to be asked for now.
func (l *nackLog) due(now int64, ssrc uint32) *rtcp.TransportLayerNack {
	l.seqs = l.seqs[:0]
	kept := l.missing[:0]
	for _, m := range l.missing {
		if now-m.since > int64(nackGiveUpAfter) || m.asks >= nackMaxAsks && now-m.asked >= int64(nackRetryAfter) {
			continue
		}
		if m.asks < nackMaxAsks && (m.asks == 0 && now-m.since >= int64(nackFirstAfter) || m.asks > 0 && now-m.asked >= int64(nackRetryAfter)) {
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
