package record

import "time"

// pkt is a packet the track's goroutine owns, copied out of the queue.
type pkt struct {
	at     time.Time
	seq    uint16
	ts     uint32
	ssrc   uint32
	marker bool
	data   []byte
}

// reorder puts packets back into sequence order and says which never
// came. A packet missing from the sequence is waited for while later ones
// are held, up to maxWait of arrival time (a retransmission or a packet
// that took another path) or until the window is full; then it is given
// up as lost and the held packets go on. A new SSRC, or a jump of the
// sequence further than the window can bridge, starts the sequence anew.
type reorder struct {
	slots   []rslot // a power of two
	maxWait time.Duration

	started bool
	ssrc    uint32
	next    uint16 // the sequence number to emit next
	held    int    // packets in slots
	missing int    // packets given up since the last one emitted

	emit func(p *pkt) // called in sequence order
	lose func(n int)  // called before emit when n packets before it never came (0: the sequence was restarted)
}

type rslot struct {
	present bool
	p       pkt
}

func newReorder(window int, maxWait time.Duration) *reorder {
	n := 1
	for n < window {
		n <<= 1
	}
	return &reorder{slots: make([]rslot, n), maxWait: maxWait}
}

func (r *reorder) window() int { return len(r.slots) }

func (r *reorder) slot(seq uint16) *rslot { return &r.slots[int(seq)&(len(r.slots)-1)] }

// push takes one packet from the queue (copying its payload) and emits
// what is now in order.
func (r *reorder) push(s *slot) {
	if r.started && s.ssrc != r.ssrc {
		r.restart()
	}
	if !r.started {
		r.started, r.ssrc, r.next = true, s.ssrc, s.seq
	}
	win := r.window()
	d := int(int16(s.seq - r.next))
	switch {
	case d < -win:
		// Far behind what was emitted: the sender started its
		// sequence anew.
		r.restart()
		r.started, r.ssrc, r.next = true, s.ssrc, s.seq
	case d < 0:
		return // its place is passed: late, or a duplicate
	case d >= 2*win:
		// Far ahead: emit what is held, then go on from s.
		r.restart()
		r.started, r.ssrc, r.next = true, s.ssrc, s.seq
	case d >= win:
		// Ahead by more than the window holds: give up the oldest.
		for int(int16(s.seq-r.next)) >= win {
			r.advance()
		}
	}
	sl := r.slot(s.seq)
	if sl.present {
		return // a duplicate
	}
	sl.present = true
	sl.p = pkt{at: s.at, seq: s.seq, ts: s.ts, ssrc: s.ssrc, marker: s.marker, data: append(sl.p.data[:0], s.buf[:s.n]...)}
	r.held++
	r.drain(s.at)
}

// drain emits the packets in order from next, and gives up a missing one
// when the oldest held packet has waited longer than maxWait.
func (r *reorder) drain(now time.Time) {
	for r.held > 0 {
		if r.slot(r.next).present {
			r.advance()
			continue
		}
		oldest := r.oldestHeld()
		if now.Sub(oldest) <= r.maxWait {
			return
		}
		r.advance() // give up next
	}
}

// oldestHeld is the arrival of the first held packet after the gap.
func (r *reorder) oldestHeld() time.Time {
	for i := 1; i < len(r.slots); i++ {
		if sl := r.slot(r.next + uint16(i)); sl.present {
			return sl.p.at
		}
	}
	return time.Time{}
}

// advance emits next if it is held, or counts it as missing.
func (r *reorder) advance() {
	sl := r.slot(r.next)
	r.next++
	if !sl.present {
		r.missing++
		return
	}
	sl.present = false
	r.held--
	if r.missing > 0 {
		r.lose(r.missing)
		r.missing = 0
	}
	r.emit(&sl.p)
}

// flush emits every held packet in order, counting the gaps between them.
func (r *reorder) flush() {
	for r.held > 0 {
		r.advance()
	}
	r.missing = 0
}

// restart flushes and forgets the sequence: the next packet begins a new
// one. The consumer learns of the break through lose(0).
func (r *reorder) restart() {
	r.flush()
	if r.started {
		r.lose(0)
	}
	r.started = false
}
