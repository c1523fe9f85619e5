package clips

import (
	"errors"
	"sync/atomic"

	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
)

// Codecs a buffer takes, as ingest/rtsp names them.
const (
	H264 = "H264"
	H265 = "H265"
)

// Bounds of an access unit being put together: past them (a stream that
// never ends one) it is dropped.
const (
	maxPending    = h264.MaxAccessUnitSize
	maxAUNALUnits = 256
)

// depacketizer turns RTP packets into access units: gortsplib's decoders
// (RFC 6184, RFC 7798) take each packet's NAL units out of single,
// aggregation and fragmentation payloads, and the access units are put
// together here, ending at the marker bit or, for cameras that do not set
// it, at the first packet of the next timestamp. (Each packet is given to
// the decoder with its marker set, so that the decoder hands out its NAL
// units at once and which timestamp an access unit has is never in doubt.)
//
// The NAL units of an access unit being put together, and the decoder's
// fragments, are slices of earlier packets, while a Sink's packet is valid
// only during WriteRTP: so each payload is first copied into an arena, and
// the decoder is given the copy. Once an access unit is out and nothing
// is pending, the arena is reused from its start: after warm-up, no
// packet allocates here (the decoders allocate a little per packet and per
// fragmented NAL unit).
type depacketizer struct {
	h264 *rtph264.Decoder
	h265 *rtph265.Decoder
	emit func(au [][]byte, ts uint32)

	arena    []byte
	pkt      rtp.Packet // the copy given to the decoder
	au       [][]byte
	auTS     uint32
	fragOpen bool // the decoder holds the fragments of a NAL unit

	errs atomic.Uint64 // packets or access units refused; read by Stats
}

// reset starts over for a stream of codec ("" for none).
func (d *depacketizer) reset(codec string) {
	d.h264, d.h265 = nil, nil
	switch codec {
	case H264:
		// Packetization mode 1 (non-interleaved) decodes mode 0 too.
		d.h264 = &rtph264.Decoder{PacketizationMode: 1}
		_ = d.h264.Init()
	case H265:
		d.h265 = &rtph265.Decoder{}
		_ = d.h265.Init()
	}
	d.drop()
}

// drop forgets the access unit being put together.
func (d *depacketizer) drop() {
	clear(d.au)
	d.au = d.au[:0]
	d.arena = d.arena[:0]
	d.fragOpen = false
}

func (d *depacketizer) flush() {
	if len(d.au) > 0 {
		d.emit(d.au, d.auTS)
	}
	clear(d.au)
	d.au = d.au[:0]
}

// decode takes one packet, and hands out (to emit) the access units it
// completes: the one before, when this packet has another timestamp, and
// its own, when it has the marker bit. The NAL units handed out are valid
// only during emit.
func (d *depacketizer) decode(pkt *rtp.Packet) {
	if d.h264 == nil && d.h265 == nil {
		return
	}
	if len(d.au) > 0 && pkt.Timestamp != d.auTS {
		d.flush()
	}
	if len(d.au) == 0 && !d.fragOpen {
		d.arena = d.arena[:0] // nothing refers to it any more
	}
	if len(d.arena)+len(pkt.Payload) > maxPending {
		d.errs.Add(1)
		d.drop()
		if d.h264 != nil {
			d.reset(H264)
		} else {
			d.reset(H265)
		}
	}
	start := len(d.arena)
	d.arena = append(d.arena, pkt.Payload...)
	d.pkt.Header = pkt.Header
	d.pkt.CSRC, d.pkt.Extensions = nil, nil // the caller's, and unused
	d.pkt.Marker = true
	d.pkt.Payload = d.arena[start:len(d.arena):len(d.arena)]

	var nalus [][]byte
	var err error
	if d.h264 != nil {
		nalus, err = d.h264.Decode(&d.pkt)
	} else {
		nalus, err = d.h265.Decode(&d.pkt)
	}
	switch {
	case errors.Is(err, rtph264.ErrMorePacketsNeeded), errors.Is(err, rtph265.ErrMorePacketsNeeded):
		d.fragOpen = true
	case errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious), errors.Is(err, rtph265.ErrNonStartingPacketAndNoPrevious):
		d.fragOpen = false // joined mid-fragment: normal at the start
	case err != nil:
		d.fragOpen = false
		d.errs.Add(1)
	default:
		d.fragOpen = false
		if len(d.au) == 0 {
			d.auTS = pkt.Timestamp
		}
		if len(d.au)+len(nalus) > maxAUNALUnits {
			d.errs.Add(1)
			d.drop()
			return
		}
		d.au = append(d.au, nalus...)
	}
	if pkt.Marker {
		d.flush()
	}
}
