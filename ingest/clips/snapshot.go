package clips

import (
	"encoding/binary"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// MaxFutureSkew is how far after the buffer's clock a span's end may be:
// a span asked for "until now" by a client whose clock runs a little ahead.
// A later end is refused; an end after the newest frame but within it ends
// the clip at the newest frame.
const MaxFutureSkew = 5 * time.Second

// Segment is a copy of a stretch of a buffer, ready to be written as MP4.
type Segment struct {
	Codec string
	// Params are the VPS (H.265 only), SPS and PPS of every frame.
	Params [3][]byte
	// Frames in decoding order, the first a keyframe.
	Frames []Frame
}

// Frame is one access unit of a Segment.
type Frame struct {
	// PTS is the presentation time in 90 kHz units, on the buffer's
	// timeline.
	PTS int64
	// At is when the frame was received.
	At  time.Time
	Key bool
	// Data holds the NAL units, each behind its 4-byte length (AVCC).
	Data []byte
}

// Span is from the first frame's receive time to the last's.
func (s *Segment) Span() Span {
	return Span{From: s.Frames[0].At, To: s.Frames[len(s.Frames)-1].At}
}

// Available is the span the buffer holds; ok is false when it is empty.
func (b *Buffer) Available() (Span, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.r.count == 0 {
		return Span{}, false
	}
	return Span{From: b.r.front().at, To: b.r.back().at}, true
}

// Snapshot copies out the frames of [from, to]: from the last keyframe at
// or before from, to the last frame received at or before to. from must lie
// within what the buffer holds (ErrSpanNotBuffered, saying what it holds,
// otherwise); to may lie after the newest frame, by at most MaxFutureSkew
// after now. A clip does not cross a change of the camera's parameter sets
// (a new resolution, say): it ends before it.
func (b *Buffer) Snapshot(from, to time.Time) (*Segment, error) {
	if !to.After(from) {
		return nil, invalidSpan("to", "must be after from")
	}
	if now := b.p.Now(); to.After(now.Add(MaxFutureSkew)) {
		return nil, invalidSpan("to", "is in the future")
	}
	// The copy's memory is made (and zeroed) outside the lock, which the
	// camera's packets wait for: the span is found, the lock let go, the
	// memory made, and the span found again and copied; should the camera
	// have brought more meanwhile, once more, and at the third time under
	// the lock.
	var data []byte
	var frames []Frame
	for attempt := 0; ; attempt++ {
		b.mu.Lock()
		first, last, size, err := b.spanLocked(from, to)
		if err != nil {
			b.mu.Unlock()
			return nil, err
		}
		if (cap(data) >= size && cap(frames) >= last-first+1) || attempt == 2 {
			seg := b.copyLocked(first, last, data[:0], frames[:0])
			b.mu.Unlock()
			return seg, nil
		}
		b.mu.Unlock()
		data, frames = make([]byte, 0, size+size/8), make([]Frame, 0, (last-first+1)*9/8+8)
	}
}

// spanLocked finds the frames of [from, to]: the first (a keyframe), the
// last (not past a change of parameter sets) and their bytes; b.mu held.
func (b *Buffer) spanLocked(from, to time.Time) (first, last, size int, err error) {
	if b.r.count == 0 {
		return 0, 0, 0, ErrNothingBuffered
	}
	avail := Span{From: b.r.front().at, To: b.r.back().at}
	if from.Before(avail.From) {
		return 0, 0, 0, notBuffered("from", avail, "from is before the oldest frame buffered")
	}
	if from.After(avail.To) {
		return 0, 0, 0, notBuffered("from", avail, "from is after the newest frame buffered")
	}
	first = b.r.find(func(f *frame) bool { return !f.at.After(from) })
	for !b.r.at(first).key {
		first-- // the oldest frame is a keyframe
	}
	last = b.r.find(func(f *frame) bool { return !f.at.After(to) })
	gen := b.r.at(first).gen
	for i := first; i <= last; i++ {
		if f := b.r.at(i); f.gen != gen {
			last = i - 1
			break
		} else {
			size += f.n
		}
	}
	return first, last, size, nil
}

// copyLocked copies frames first..last out of the ring into data and
// frames (grown if they lack room); b.mu held.
func (b *Buffer) copyLocked(first, last int, data []byte, frames []Frame) *Segment {
	gen := b.r.at(first).gen
	seg := &Segment{Codec: b.codec, Frames: frames}
	for _, g := range b.gens {
		if g.gen == gen {
			seg.Params = g.ps
		}
	}
	// An H.265 clip that starts at a CRA picture leaves out its RASL
	// pictures: they refer to pictures before it, and no decoder shows them.
	ff := b.r.at(first)
	skipRASL := b.codec == H265 && isCRA(b.r.data[ff.off:ff.off+ff.n])
	for i := first; i <= last; i++ {
		f := b.r.at(i)
		fd := b.r.data[f.off : f.off+f.n]
		if i > first && f.key {
			skipRASL = false
		}
		if skipRASL && isRASL(fd) {
			continue
		}
		start := len(data)
		data = append(data, fd...)
		seg.Frames = append(seg.Frames, Frame{PTS: f.pts, At: f.at, Key: f.key, Data: data[start:len(data):len(data)]})
	}
	return seg
}

// h265Types calls fn with the type of every NAL unit of an AVCC frame
// until it returns true, and reports whether it did.
func h265Types(avcc []byte, fn func(t h265.NALUType) bool) bool {
	for len(avcc) > 4 {
		n := int(binary.BigEndian.Uint32(avcc))
		if n < 2 || n > len(avcc)-4 {
			return false
		}
		if fn(h265.NALUType((avcc[4] >> 1) & 0x3f)) {
			return true
		}
		avcc = avcc[4+n:]
	}
	return false
}

func isCRA(avcc []byte) bool {
	return h265Types(avcc, func(t h265.NALUType) bool { return t == h265.NALUType_CRA_NUT })
}

func isRASL(avcc []byte) bool {
	return h265Types(avcc, func(t h265.NALUType) bool { return t == h265.NALUType_RASL_N || t == h265.NALUType_RASL_R })
}
