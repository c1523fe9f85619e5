package meeting

import "github.com/lookout-cc/lookout/sfu/source"

// Keyframe detection on the RTP payloads publishers send, so that a
// subscriber is moved to another simulcast layer only where that layer can
// be decoded from: at its keyframe.

// isVP8Keyframe reports whether a VP8 RTP payload starts a keyframe.
func isVP8Keyframe(p []byte) bool { return source.IsVP8Keyframe(p) }

// isH265Keyframe reports whether an H.265 RTP payload (RFC 7798) starts a
// keyframe: an IRAP picture (BLA, IDR, CRA) or a VPS/SPS, alone, in an
// aggregation packet, or as the first fragment of a fragmentation unit.
func isH265Keyframe(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	key := func(t byte) bool { return (t >= 16 && t <= 21) || t == 32 || t == 33 }
	switch t := p[0] >> 1 & 0x3f; t {
	case 48: // aggregation packet
		for rest := p[2:]; len(rest) > 2; {
			n := int(rest[0])<<8 | int(rest[1])
			rest = rest[2:]
			if n == 0 || n > len(rest) {
				return false
			}
			if key(rest[0] >> 1 & 0x3f) {
				return true
			}
			rest = rest[n:]
		}
		return false
	case 49: // fragmentation unit
		return len(p) > 2 && p[2]&0x80 != 0 && key(p[2]&0x3f)
	default:
		return key(t)
	}
}

// H.264 NAL unit types (RFC 6184).
const (
	h264IDR   = 5
	h264SPS   = 7
	h264STAPA = 24
	h264FUA   = 28
)

// isH264Keyframe reports whether an H.264 RTP payload starts a keyframe: an
// IDR slice or a sequence parameter set, alone, in a STAP-A, or as the
// first fragment of an FU-A.
func isH264Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch t := p[0] & 0x1f; t {
	case h264IDR, h264SPS:
		return true
	case h264STAPA:
		for rest := p[1:]; len(rest) > 2; {
			n := int(rest[0])<<8 | int(rest[1])
			rest = rest[2:]
			if n == 0 || n > len(rest) {
				return false
			}
			if u := rest[0] & 0x1f; u == h264IDR || u == h264SPS {
				return true
			}
			rest = rest[n:]
		}
	case h264FUA:
		return len(p) > 1 && p[1]&0x80 != 0 && p[1]&0x1f == h264IDR
	}
	return false
}
