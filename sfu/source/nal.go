package source

import "encoding/binary"

// The RTP payload formats of H.264 (RFC 6184) and H.265 (RFC 7798), as far
// as forwarding needs them: which NAL units a payload carries, whether it
// starts a keyframe, and splitting a payload too large for WebRTC.

// Codecs. VP8 comes from meeting participants (a wall tile showing one);
// cameras send H.264 or H.265.
const (
	H264 = "H264"
	H265 = "H265"
	VP8  = "VP8"
)

// H.264 NAL unit and payload types.
const (
	h264IDR   = 5
	h264SPS   = 7
	h264PPS   = 8
	h264STAPA = 24
	h264FUA   = 28
)

// H.265 NAL unit and payload types.
const (
	h265IRAPFirst = 16 // BLA_W_LP .. CRA_NUT: random access points
	h265IRAPLast  = 21
	h265VPS       = 32
	h265SPS       = 33
	h265PPS       = 34
	h265AP        = 48
	h265FU        = 49
)

func naluType(codec string, nalu []byte) int {
	if codec == H265 {
		return int(nalu[0]>>1) & 0x3f
	}
	return int(nalu[0] & 0x1f)
}

func isKey(codec string, t int) bool {
	if codec == H265 {
		return t >= h265IRAPFirst && t <= h265IRAPLast
	}
	return t == h264IDR
}

// paramSlot is where a parameter set NAL unit goes: 0 VPS, 1 SPS, 2 PPS;
// -1 for other units.
func paramSlot(codec string, t int) int {
	if codec == H265 {
		switch t {
		case h265VPS:
			return 0
		case h265SPS:
			return 1
		case h265PPS:
			return 2
		}
		return -1
	}
	switch t {
	case h264SPS:
		return 1
	case h264PPS:
		return 2
	}
	return -1
}

// headerLen is the NAL unit header length: 1 byte in H.264, 2 in H.265.
func headerLen(codec string) int {
	if codec == H265 {
		return 2
	}
	return 1
}

// nextUnit takes the next NAL unit of an aggregation payload's body (after
// its header): the unit and the rest; ok is false at the end or when the
// body is malformed.
func nextUnit(rest []byte) (unit, tail []byte, ok bool) {
	if len(rest) < 2 {
		return nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(rest))
	if n == 0 || len(rest) < 2+n {
		return nil, nil, false
	}
	return rest[2 : 2+n], rest[2+n:], true
}

func isAggregate(codec string, t int) bool {
	return (codec == H264 && t == h264STAPA) || (codec == H265 && t == h265AP)
}

// firstSlice says whether a slice NAL unit (from its header on; for a
// fragment, body is the unit's bytes after its header) is its picture's
// first: a keyframe of several slices starts once, at its first slice.
// H.264: first_mb_in_slice is 0, a single 1 bit; H.265:
// first_slice_segment_in_pic_flag.
func firstSlice(body []byte) bool { return len(body) > 0 && body[0]&0x80 != 0 }

// inspect tells what a payload starts: a keyframe (the first slice of a
// random access picture, whole or its first fragment), and hands ps every
// complete parameter set NAL unit in it.
func inspect(codec string, payload []byte, ps paramSink) (keyframe bool) {
	hl := headerLen(codec)
	if len(payload) < hl+1 {
		return false
	}
	t := naluType(codec, payload)
	switch {
	case isAggregate(codec, t):
		for rest := payload[hl:]; ; {
			n, tail, ok := nextUnit(rest)
			if !ok {
				return keyframe
			}
			rest = tail
			if len(n) < hl {
				continue
			}
			nt := naluType(codec, n)
			if s := paramSlot(codec, nt); s >= 0 {
				ps.param(s, n)
			}
			keyframe = keyframe || (isKey(codec, nt) && firstSlice(n[hl:]))
		}
	case codec == H264 && t == h264FUA:
		return payload[1]&0x80 != 0 && isKey(codec, int(payload[1]&0x1f)) && firstSlice(payload[2:])
	case codec == H265 && t == h265FU:
		return payload[2]&0x80 != 0 && isKey(codec, int(payload[2]&0x3f)) && firstSlice(payload[3:])
	default:
		if s := paramSlot(codec, t); s >= 0 {
			ps.param(s, payload)
		}
		return isKey(codec, t) && firstSlice(payload[hl:])
	}
}

// paramSink takes parameter sets found in a payload.
type paramSink interface{ param(slot int, nalu []byte) }

// pieceSink takes the pieces of a split payload.
type pieceSink interface{ piece(p []byte, last bool) }

// split hands out the payload as one or more payloads of at most max
// bytes: a small payload as it is; a large single NAL unit as fragments
// (FU-A, FU); a large fragment as smaller fragments; a large aggregation
// as its NAL units, each split again. The final piece is passed with last
// set (when final is), and carries the packet's marker. scratch holds the
// pieces' bytes while out runs; out must copy what it keeps.
func split(codec string, payload []byte, max int, scratch []byte, out pieceSink, final bool) {
	if len(payload) <= max {
		out.piece(payload, final)
		return
	}
	hl := headerLen(codec)
	if len(payload) < hl+1 {
		return
	}
	t := naluType(codec, payload)
	switch {
	case isAggregate(codec, t):
		rest := payload[hl:]
		n, tail, ok := nextUnit(rest)
		for ok {
			next, nextTail, more := nextUnit(tail)
			if len(n) >= hl+1 {
				split(codec, n, max, scratch, out, final && !more)
			}
			n, tail, ok = next, nextTail, more
		}
	case codec == H264 && t == h264FUA, codec == H265 && t == h265FU:
		// A fragment too large: the same fragment header on smaller
		// pieces, the start bit on the first and the end bit on the last.
		fh := hl + 1 // indicator(s) and FU header
		if len(payload) <= fh {
			return
		}
		head, data := payload[:fh], payload[fh:]
		start, end := head[fh-1]&0x80, head[fh-1]&0x40
		chunk := max - fh
		for off := 0; off < len(data); off += chunk {
			n := min(chunk, len(data)-off)
			copy(scratch, head)
			h := head[fh-1] &^ 0xc0
			if off == 0 {
				h |= start
			}
			last := off+n == len(data)
			if last {
				h |= end
			}
			scratch[fh-1] = h
			copy(scratch[fh:], data[off:off+n])
			out.piece(scratch[:fh+n], last && final)
		}
	default:
		// A single NAL unit too large: fragments of it.
		var fh int
		nalHeader, data := payload[:hl], payload[hl:]
		for off := 0; off < len(data); {
			if codec == H265 {
				scratch[0] = nalHeader[0]&0x81 | h265FU<<1
				scratch[1] = nalHeader[1]
				scratch[2] = byte(t)
				fh = 3
			} else {
				scratch[0] = nalHeader[0]&0xe0 | h264FUA
				scratch[1] = byte(t)
				fh = 2
			}
			n := min(max-fh, len(data)-off)
			if off == 0 {
				scratch[fh-1] |= 0x80
			}
			last := off+n == len(data)
			if last {
				scratch[fh-1] |= 0x40
			}
			copy(scratch[fh:], data[off:off+n])
			out.piece(scratch[:fh+n], last && final)
			off += n
		}
	}
}

// aggregate writes the parameter sets as one aggregation payload (STAP-A,
// AP) into dst and returns it; nil when there are none or they do not fit.
func aggregate(codec string, sets [3][]byte, dst []byte) []byte {
	var out []byte
	if codec == H265 {
		out = append(dst[:0], h265AP<<1, 1)
	} else {
		out = append(dst[:0], h264STAPA)
		nri := byte(0)
		for _, s := range sets {
			if len(s) > 0 {
				nri = max(nri, s[0]&0x60)
			}
		}
		out[0] |= nri
	}
	n := 0
	for _, s := range sets {
		if len(s) == 0 {
			continue
		}
		if len(out)+2+len(s) > cap(dst) {
			return nil
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(s)))
		out = append(out, s...)
		n++
	}
	if n == 0 {
		return nil
	}
	return out
}
