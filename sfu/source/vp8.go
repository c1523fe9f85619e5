package source

// IsVP8Keyframe reports whether a VP8 RTP payload (RFC 7741) starts a
// keyframe: the start of partition 0 whose frame header's P bit is 0.
func IsVP8Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	d := p[0]
	start, pid := d&0x10 != 0, d&0x07
	if !start || pid != 0 {
		return false
	}
	i := 1
	if d&0x80 != 0 { // X: extended control bits
		if len(p) <= i {
			return false
		}
		x := p[i]
		i++
		if x&0x80 != 0 { // I: picture id, 7 or 15 bits
			if len(p) <= i {
				return false
			}
			if p[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K: TID/Y/KEYIDX
			i++
		}
	}
	if len(p) <= i {
		return false
	}
	return p[i]&0x01 == 0
}
