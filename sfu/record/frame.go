package record

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp/codecs"
)

// frame is one assembled frame: a VP8 frame, an H.264 access unit in AVCC
// form (length-prefixed NAL units, as MP4 holds them) or an Opus packet.
type frame struct {
	ts   uint32
	ssrc uint32
	at   time.Time // arrival of its first packet
	data []byte    // the frame's own
}

// assembler joins the packets of a frame, in sequence order. A video
// frame is the packets of one timestamp, ending at the marker bit (or at
// the next timestamp); it is broken, and never handed on, when a packet of
// it was lost, its first packet does not start a frame, or a payload does
// not parse. Each Opus packet is a frame.
type assembler struct {
	codec   string
	onFrame func(f *frame)

	open    bool
	first   bool // the next packet is the frame's first
	broken  bool
	skipped int // broken frames
	f       frame
	buf     []byte // reused between frames
	vp8     codecs.VP8Packet
	h264    codecs.H264Packet
}

func (a *assembler) init(codec string, onFrame func(*frame)) {
	a.codec, a.onFrame = codec, onFrame
}

func (a *assembler) packet(p *pkt) {
	if len(p.data) == 0 {
		return // padding
	}
	if a.codec == CodecOpus {
		a.onFrame(&frame{ts: p.ts, ssrc: p.ssrc, at: p.at, data: slices.Clone(p.data)})
		return
	}
	if a.open && (p.ts != a.f.ts || p.ssrc != a.f.ssrc) {
		a.end() // the marker was not set
	}
	if !a.open {
		a.open, a.first, a.broken = true, true, false
		a.f = frame{ts: p.ts, ssrc: p.ssrc, at: p.at}
		a.buf = a.buf[:0]
		a.h264 = codecs.H264Packet{IsAVC: true} // forgets a fragment left over
	}
	var out []byte
	var err error
	switch a.codec {
	case CodecVP8:
		out, err = a.vp8.Unmarshal(p.data)
		if err == nil && a.first && (a.vp8.S == 0 || a.vp8.PID != 0) {
			a.broken = true // the frame's start was lost
		}
	case CodecH264:
		if a.first && !a.h264.IsPartitionHead(p.data) {
			a.broken = true
		}
		out, err = a.h264.Unmarshal(p.data)
	}
	a.first = false
	if err != nil {
		a.broken = true
	}
	if !a.broken {
		a.buf = append(a.buf, out...)
	}
	if p.marker {
		a.end()
	}
}

func (a *assembler) end() {
	a.open = false
	if a.broken {
		a.skipped++
		return
	}
	if len(a.buf) == 0 {
		return
	}
	a.f.data = slices.Clone(a.buf)
	a.onFrame(&a.f)
	a.f.data = nil
}

// loss: packets are missing before the next one.
func (a *assembler) loss() {
	if a.open {
		a.broken = true
	}
}

// flush drops a frame left open at the end: without its marker it may be
// short of packets.
func (a *assembler) flush() {
	if a.open {
		a.open = false
		a.skipped++
	}
}

// vp8Frame reads a VP8 frame's header (RFC 6386, 9.1): whether it is a
// keyframe and, if so, its size. ok is false when it cannot be a frame.
func vp8Frame(b []byte) (key bool, width, height int, ok bool) {
	if len(b) < 3 {
		return false, 0, 0, false
	}
	if b[0]&1 != 0 {
		return false, 0, 0, true
	}
	if len(b) < 10 || b[3] != 0x9d || b[4] != 0x01 || b[5] != 0x2a {
		return false, 0, 0, false
	}
	width = int(binary.LittleEndian.Uint16(b[6:]) & 0x3fff)
	height = int(binary.LittleEndian.Uint16(b[8:]) & 0x3fff)
	if width == 0 || height == 0 {
		return false, 0, 0, false
	}
	return true, width, height, true
}

// h264NALs is what an access unit holds of interest.
type h264NALs struct {
	idr      bool
	sps, pps []byte // the last of each, if any
}

// h264Frame walks an AVCC access unit; ok is false when the lengths do not
// add up.
func h264Frame(b []byte) (n h264NALs, ok bool) {
	for len(b) > 0 {
		if len(b) < 4 {
			return n, false
		}
		size := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(size) > uint64(len(b)) {
			return n, false
		}
		nalu := b[:size]
		b = b[size:]
		if len(nalu) == 0 {
			continue
		}
		switch h264.NALUType(nalu[0] & 0x1f) {
		case h264.NALUTypeIDR:
			n.idr = true
		case h264.NALUTypeSPS:
			n.sps = nalu
		case h264.NALUTypePPS:
			n.pps = nalu
		}
	}
	return n, true
}

// h264Size is the picture size an SPS gives; ok is false when it does not
// parse.
func h264Size(sps []byte) (width, height int, ok bool) {
	var s h264.SPS
	if s.Unmarshal(sps) != nil {
		return 0, 0, false
	}
	width, height = s.Width(), s.Height()
	return width, height, width > 0 && height > 0
}
