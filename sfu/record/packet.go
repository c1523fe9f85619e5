package record

import "time"

// pkt is a packet the track's goroutine owns, copied out of the queue into
// the writer's reorder buffer (sfu/reorder).
type pkt struct {
	at     time.Time
	seq    uint16
	ts     uint32
	ssrc   uint32
	marker bool
	data   []byte
}

// copyPkt copies src into dst, reusing dst's bytes.
func copyPkt(dst, src *pkt) {
	data := append(dst.data[:0], src.data...)
	*dst = *src
	dst.data = data
}
