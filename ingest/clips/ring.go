package clips

import "time"

// frame is one access unit held: its NAL units in AVCC form (each behind
// its 4-byte length) at data[off:off+n] of the ring.
type frame struct {
	off, n int
	pts    int64     // 90 kHz, continuous across the camera's sessions
	at     time.Time // when it was received
	key    bool      // a random access point (IDR; IRAP in H.265)
	gen    uint32    // the parameter sets it was coded with
}

// ring holds frames, oldest first, and their bytes in one circular byte
// slice that grows (by doubling, to at most max) only while the frames do
// not fit: once grown, appending copies the frame's bytes and allocates
// nothing.
//
// Bytes are placed in order: after the newest frame's, or, when that does
// not leave room, from the start of data, before the oldest's. A frame's
// bytes are never split.
type ring struct {
	data []byte
	max  int
	used int // bytes of the frames held

	frames []frame // circular, len a power of two
	head   int
	count  int
	// k2 is the index (from the oldest) of the oldest keyframe but the
	// first, -1 when there is none: where the buffer can be cut.
	k2 int
}

func newRing(max int) ring { return ring{max: max, k2: -1} }

func (r *ring) at(i int) *frame { return &r.frames[(r.head+i)&(len(r.frames)-1)] }

func (r *ring) front() *frame { return r.at(0) }
func (r *ring) back() *frame  { return r.at(r.count - 1) }

// fit finds room for n bytes without evicting: the offset, and ok.
func (r *ring) fit(n int) (int, bool) {
	if r.count == 0 {
		return 0, n <= len(r.data)
	}
	head, tail := r.front().off, r.back().off+r.back().n
	if r.back().off >= head { // not wrapped: free after tail and before head
		if len(r.data)-tail >= n {
			return tail, true
		}
		return 0, head >= n
	}
	return tail, head-tail >= n // wrapped: free between tail and head
}

// grow makes data larger (to hold at least need bytes, within max),
// moving the frames' bytes to its start. It reports false at max.
func (r *ring) grow(need int) bool {
	if len(r.data) >= r.max {
		return false
	}
	size := max(2*len(r.data), need, 256<<10)
	size = min(size, r.max)
	data := make([]byte, size)
	off := 0
	for i := 0; i < r.count; i++ {
		f := r.at(i)
		copy(data[off:], r.data[f.off:f.off+f.n])
		f.off = off
		off += f.n
	}
	r.data = data
	return true
}

// push appends a frame whose bytes are placed at f.off already.
func (r *ring) push(f frame) {
	if r.count == len(r.frames) {
		frames := make([]frame, max(64, 2*len(r.frames)))
		for i := 0; i < r.count; i++ {
			frames[i] = *r.at(i)
		}
		r.frames, r.head = frames, 0
	}
	if f.key && r.count > 0 && r.k2 < 0 {
		r.k2 = r.count
	}
	*r.at(r.count) = f
	r.count++
	r.used += f.n
}

// pop removes the oldest frame.
func (r *ring) pop() {
	f := r.front()
	r.used -= f.n
	*f = frame{}
	r.head = (r.head + 1) & (len(r.frames) - 1)
	r.count--
	switch {
	case r.k2 > 1:
		r.k2--
	case r.k2 == 1: // the oldest is that keyframe now: find the next one
		r.k2 = -1
		for i := 1; i < r.count; i++ {
			if r.at(i).key {
				r.k2 = i
				break
			}
		}
	}
	if r.count == 0 {
		r.head = 0
	}
}

// popGOP removes the oldest frame and the frames that depend on it (up to
// the next keyframe): a buffer always starts at a keyframe. It returns how
// many frames went.
func (r *ring) popGOP() int {
	n := 0
	for r.count > 0 && (n == 0 || !r.front().key) {
		r.pop()
		n++
	}
	return n
}

// clear drops every frame; the bytes stay allocated.
func (r *ring) clear() {
	for r.count > 0 {
		r.pop()
	}
}

// find returns the index of the last frame for which before is true,
// frames being ordered so that before is true up to some index and false
// after it; -1 when it is true for none.
func (r *ring) find(before func(*frame) bool) int {
	lo, hi := 0, r.count // the answer is in [lo-1, hi-1]
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if before(r.at(mid)) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo - 1
}
