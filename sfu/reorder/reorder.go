// Package reorder puts a stream's RTP packets back into sequence order and
// says which never came: what a consumer that cannot take them out of
// order needs in front of it (a recording's frame assembler; a meeting
// participant's video taken to a wall, whose viewers are renumbered in
// the order packets come, so that a retransmission arriving late would
// land inside a later frame).
//
// Written here rather than taken from pion's jitterbuffer or
// samplebuilder: those allocate per packet or per sample, and neither
// says how many packets a gap lost nor gives up a wait by arrival time.
package reorder

import "time"

// Buffer puts packets of type T back into sequence order. A packet
// missing from the sequence is waited for while later ones are held, up
// to maxWait of arrival time (a retransmission or a packet that took
// another path) or until the window is full; then it is given up as lost
// and the held packets go on. A new SSRC, or a jump of the sequence
// further than the window can bridge, starts the sequence anew.
//
// A Buffer is used from one goroutine. It makes no allocation per packet:
// each slot keeps its T, which copyInto fills (reusing what it holds).
type Buffer[T any] struct {
	slots    []slot[T] // a power of two
	maxWait  time.Duration
	copyInto func(dst, src *T)

	started bool
	ssrc    uint32
	next    uint16 // the sequence number to emit next
	held    int    // packets in slots
	missing int    // packets given up since the last one emitted

	// Emit is called with each packet in sequence order; the packet is
	// the Buffer's, valid during the call.
	Emit func(p *T)
	// Lose is called before Emit when n packets before it never came
	// (n 0: the sequence was started anew).
	Lose func(n int)
}

type slot[T any] struct {
	present bool
	at      time.Time
	v       T
}

// New makes a Buffer of at least window packets (rounded up to a power of
// two) that waits up to maxWait for a missing one; copyInto copies a
// pushed packet into a slot's.
func New[T any](window int, maxWait time.Duration, copyInto func(dst, src *T)) *Buffer[T] {
	n := 1
	for n < window {
		n <<= 1
	}
	return &Buffer[T]{slots: make([]slot[T], n), maxWait: maxWait, copyInto: copyInto}
}

// Window is how many packets the Buffer holds.
func (r *Buffer[T]) Window() int { return len(r.slots) }

func (r *Buffer[T]) slot(seq uint16) *slot[T] { return &r.slots[int(seq)&(len(r.slots)-1)] }

// Push takes one packet, which arrived at at, copied; and emits what is
// now in order.
func (r *Buffer[T]) Push(at time.Time, seq uint16, ssrc uint32, p *T) {
	if r.started && ssrc != r.ssrc {
		r.Restart()
	}
	if !r.started {
		r.started, r.ssrc, r.next = true, ssrc, seq
	}
	win := r.Window()
	d := int(int16(seq - r.next))
	switch {
	case d < -win:
		// Far behind what was emitted: the sender started its
		// sequence anew.
		r.Restart()
		r.started, r.ssrc, r.next = true, ssrc, seq
	case d < 0:
		return // its place is passed: late, or a duplicate
	case d >= 2*win:
		// Far ahead: emit what is held, then go on from it.
		r.Restart()
		r.started, r.ssrc, r.next = true, ssrc, seq
	case d >= win:
		// Ahead by more than the window holds: give up the oldest.
		for int(int16(seq-r.next)) >= win {
			r.advance()
		}
	}
	sl := r.slot(seq)
	if sl.present {
		return // a duplicate
	}
	sl.present, sl.at = true, at
	r.copyInto(&sl.v, p)
	r.held++
	r.Drain(at)
}

// Drain emits the packets in order from the next, and gives up a missing
// one when the oldest held packet has waited longer than maxWait at now.
// Push drains; a consumer whose packets may stop while one is missing
// calls it on a timer too.
func (r *Buffer[T]) Drain(now time.Time) {
	for r.held > 0 {
		if r.slot(r.next).present {
			r.advance()
			continue
		}
		if now.Sub(r.oldestHeld()) <= r.maxWait {
			return
		}
		r.advance() // give up next
	}
}

// Held is how many packets wait for one missing before them.
func (r *Buffer[T]) Held() int { return r.held }

// oldestHeld is the arrival of the first held packet after the gap.
func (r *Buffer[T]) oldestHeld() time.Time {
	for i := 1; i < len(r.slots); i++ {
		if sl := r.slot(r.next + uint16(i)); sl.present {
			return sl.at
		}
	}
	return time.Time{}
}

// advance emits next if it is held, or counts it as missing.
func (r *Buffer[T]) advance() {
	sl := r.slot(r.next)
	r.next++
	if !sl.present {
		r.missing++
		return
	}
	sl.present = false
	r.held--
	if r.missing > 0 {
		r.Lose(r.missing)
		r.missing = 0
	}
	r.Emit(&sl.v)
}

// Flush emits every held packet in order, counting the gaps between them.
func (r *Buffer[T]) Flush() {
	for r.held > 0 {
		r.advance()
	}
	r.missing = 0
}

// Restart flushes and forgets the sequence: the next packet begins a new
// one. The consumer learns of the break through Lose(0).
func (r *Buffer[T]) Restart() {
	r.Flush()
	if r.started {
		r.Lose(0)
	}
	r.started = false
}
