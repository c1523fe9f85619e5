package meeting

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// Retransmission (NACK) from one history per published layer, shared by
// every subscriber, instead of pion's NACK responder, which keeps a copy
// of every packet for every subscriber: 256 packets of 1460 bytes for
// each video each participant receives (113 of the 180 MB a room bench of
// 60 participants held), and a copy per packet per subscriber.
//
// The upTrack keeps each layer's last packets (historySlots) as it reads
// them; each downTrack remembers, for its last historySize sequence
// numbers, which layer's packet it sent under that number and its
// timestamp. A subscriber's NACK is answered from the two on its RTX
// stream (RFC 4588: the original sequence number before the payload).

// historySize is how many sequence numbers a subscriber remembers, and
// how many packets of a high layer (or of a video without simulcast) are
// kept: 2 s of a 720p layer at 2.5 Mbit/s (about 250 packets/s), far past
// a county link's round trip.
const historySize = 512

// historySlots is how many packets each layer keeps: the lower layers
// send fewer packets a second (a 150 kbit/s low layer about 30), so fewer
// cover the same time.
var historySlots = [numLayers]int{historySize / 4, historySize / 2, historySize}

// historySlotSize holds any packet a browser sends (about 1200 bytes);
// larger ones are not kept.
const historySlotSize = 1500

// packetHistory is one layer's last packets; add runs on the layer's read
// goroutine, get on the subscribers' RTCP goroutines.
type packetHistory struct {
	mu   sync.Mutex
	buf  []byte // the slots of historySlotSize, made at the first add
	meta []slotMeta
}

type slotMeta struct {
	seq   uint16
	size  uint16
	valid bool
}

// add keeps a packet; slots is the layer's historySlots (a power of two,
// so that the slot of a sequence number stays the same across its wrap).
// It says false for a copy of the packet it keeps already under seq.
func (h *packetHistory) add(seq uint16, payload []byte, slots int) (fresh bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.buf == nil {
		h.buf = make([]byte, slots*historySlotSize)
		h.meta = make([]slotMeta, slots)
	}
	i := int(seq) % len(h.meta)
	if m := h.meta[i]; m.valid && int16(seq-m.seq) < 0 {
		return true // a very late packet (the publisher's retransmission): the slot is a newer one's
	} else if m.valid && m.seq == seq {
		return false
	}
	if len(payload) > historySlotSize {
		h.meta[i].valid = false
		return true
	}
	copy(h.buf[i*historySlotSize:], payload)
	h.meta[i] = slotMeta{seq: seq, size: uint16(len(payload)), valid: true}
	return true
}

// appendPayload appends the kept payload of seq to dst.
func (h *packetHistory) appendPayload(dst []byte, seq uint16) ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.meta == nil {
		return dst, false
	}
	i := int(seq) % len(h.meta)
	if m := h.meta[i]; !m.valid || m.seq != seq {
		return dst, false
	}
	return append(dst, h.buf[i*historySlotSize:i*historySlotSize+int(h.meta[i].size)]...), true
}

// sentPacket is what a downTrack sent under one of its sequence numbers,
// and when it last sent it again (resent, milliseconds of nanotime; 0
// never).
type sentPacket struct {
	valid  bool
	marker bool
	layer  uint8
	outSeq uint16
	upSeq  uint16
	ts     uint32
	resent uint32
}

// sentLog is a downTrack's last historySize sequence numbers.
type sentLog [historySize]sentPacket

// retransmit answers a NACK from the subscriber: every packet it names
// that is still kept is sent again. It runs on the downTrack's RTCP
// goroutine; the write takes the downTrack's lock, like forwarding.
//
// A packet sent again is not sent again within three quarters of the
// subscriber's round trip (resendGuard): an ask in that time crossed the
// retransmission on its way, as a browser's sender judges (libwebrtc's
// packet history), and answering it would put the packet twice on the
// link that lost it (a receiver that asks again sooner than a round
// trip, or lists a number in NACKs close together).
//
// Without an RTX stream nothing is resent: the packet again under its own
// sequence number would pass the transport-wide sequence interceptor anew,
// and SRTP would encrypt the same index twice with a different header
// (AES-GCM's nonce reused). Browsers all take the RTX this SFU offers.
func (d *downTrack) retransmit(nack *rtcp.TransportLayerNack) (sent int) {
	d.mu.Lock()
	rtx := d.rtxSSRC != 0
	d.mu.Unlock()
	if d.sent == nil || !rtx {
		return 0
	}
	for _, pair := range nack.Nacks {
		pair.Range(func(seq uint16) bool {
			if d.resend(seq) {
				sent++
			}
			return true
		})
	}
	return sent
}

func (d *downTrack) resend(seq uint16) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.sent[seq%historySize]
	if d.ws == nil || !e.valid || e.outSeq != seq || int(e.layer) >= numLayers {
		return false
	}
	if d.rtxSSRC == 0 {
		return false
	}
	now := uint32(nanotime() / int64(time.Millisecond))
	if e.resent != 0 && now-e.resent < d.resendGuard() {
		return false
	}
	h := &d.up.history[e.layer]
	payload := binary.BigEndian.AppendUint16(d.rtxBuf[:0], seq) // RFC 4588: the original sequence number first
	payload, ok := h.appendPayload(payload, e.upSeq)
	if !ok {
		return false
	}
	d.rtxBuf = payload[:0]
	hdr := rtp.Header{Version: 2, Marker: e.marker, SequenceNumber: d.rtxSeq, Timestamp: e.ts, SSRC: d.rtxSSRC, PayloadType: d.rtxPT,
		Extensions: d.rtxExt[:0]}
	d.rtxSeq++
	d.numberForTWCC(&hdr, len(payload))
	_, err := d.writer().WriteRTP(&hdr, payload)
	d.sent[seq%historySize].resent = max(now, 1)
	return err == nil
}

// resendGuard is how long, in milliseconds, a packet sent again is not
// sent again: three quarters of the round trip (0 while it is unknown).
func (d *downTrack) resendGuard() uint32 {
	return uint32(d.remote.rttMicros.Load() * 3 / 4 / 1000)
}
