package source

import (
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// entry is a packet in a viewer's queue; a replayed packet from the cache
// carries the timestamp it is sent with.
type entry struct {
	p        *Packet
	ts       uint32
	override bool
}

// Viewer is one receiver of a source: its own queue, its own goroutine
// writing to it, and its own sequence numbers, so that the frames it drops
// leave no gap a browser would ask to have retransmitted.
type Viewer struct {
	src   *Source
	q     chan entry
	write func(*rtp.Packet) error
	done  chan struct{}

	// Guarded by src.mu.
	waitKey  bool // drop until the next keyframe
	lagging  bool // the queue overflowed: catch up from the cache
	closed   bool
	keyAsked atomic.Bool // a PLI: send the cached keyframe again

	// The writer goroutine's own.
	pkt rtp.Packet
	seq uint16

	sent    atomic.Uint64
	dropped atomic.Uint64
	err     atomic.Pointer[error]
}

// offer queues a packet for the viewer, or drops it; src.mu held.
func (v *Viewer) offer(p *Packet) {
	if v.closed {
		return
	}
	if asked, caughtUp := v.keyAsked.Swap(false), v.lagging && len(v.q) < cap(v.q)/2; asked || caughtUp {
		if v.src.codec == VP8 {
			// No replay: a browser knows a VP8 frame by its picture id,
			// which a replayed frame repeats, and drops the replay as
			// frames it has decoded past. It would only add the group
			// of pictures to the viewer's link at each request, and
			// under load a storm of them: losses, requests, replays. A
			// request goes to the publisher (RequestKeyframe), whose
			// next keyframe restarts the viewer.
			if caughtUp {
				v.lagging = false // waitKey is set: from the next keyframe
			}
		} else if v.replay() && v.src.cacheValid {
			// The cache holds the packets since the last keyframe, p
			// among them when it is cached: the replay brings the
			// viewer up to p.
			return
		}
	}
	if v.waitKey {
		if !p.Keyframe {
			v.drop()
			return
		}
		v.waitKey = false
	}
	p.hold()
	select {
	case v.q <- entry{p: p}:
	default:
		// Too slow: drop this frame and what follows until the queue has
		// room, then start again from the cached keyframe.
		p.Release()
		v.drop()
		v.lagging, v.waitKey = true, true
	}
}

func (v *Viewer) drop() {
	v.dropped.Add(1)
	v.src.viewerDrop.Add(1)
}

// replay queues the cache (the packets since the last keyframe) with their
// timestamps moved up to the newest one, one tick apart: a browser decodes
// them at once and shows the newest picture, rather than playing the last
// seconds again behind live. It reports whether it did; src.mu held.
func (v *Viewer) replay() bool {
	c := v.src.cache
	if !v.src.cacheValid || len(c) == 0 || cap(v.q)-len(v.q) < len(c) {
		v.waitKey = true
		return false
	}
	frames := uint32(0)
	for i := 1; i < len(c); i++ {
		if c[i].Header.Timestamp != c[i-1].Header.Timestamp {
			frames++
		}
	}
	newest := c[len(c)-1].Header.Timestamp
	frame := uint32(0)
	for i, p := range c {
		if i > 0 && p.Header.Timestamp != c[i-1].Header.Timestamp {
			frame++
		}
		p.hold()
		v.q <- entry{p: p, ts: newest - (frames - frame), override: true}
	}
	v.waitKey, v.lagging = false, false
	return true
}

// RequestKeyframe asks for the cached keyframe again (a viewer's PLI or
// FIR): it is answered from the cache (not for VP8: see offer), and
// passed on only to a sender that makes keyframes on demand
// (Source.RequestKeyframe), never to a camera.
func (v *Viewer) RequestKeyframe() {
	v.keyAsked.Store(true)
	if f := v.src.RequestKeyframe; f != nil {
		f()
	}
}

func (v *Viewer) run() {
	defer close(v.done)
	for e := range v.q {
		if v.err.Load() != nil {
			e.p.Release()
			continue // ended: drain what is queued
		}
		v.pkt.Header = e.p.Header
		v.pkt.Header.SequenceNumber = v.seq
		if e.override {
			v.pkt.Header.Timestamp = e.ts
		}
		v.pkt.Payload = e.p.Payload
		err := v.write(&v.pkt)
		v.pkt.Payload = nil
		if f := v.src.OnForward; f != nil && !e.override && err == nil {
			f(time.Since(e.p.At))
		}
		e.p.Release()
		if err != nil {
			v.err.Store(&err)
			go v.Close() // not on this goroutine: Close waits for it
			continue
		}
		v.seq++
		v.sent.Add(1)
	}
}

// Close removes the viewer from its source and waits until its goroutine
// has released every queued packet. It may be called more than once.
func (v *Viewer) Close() {
	v.src.mu.Lock()
	for i, o := range v.src.viewers {
		if o == v {
			v.src.viewers = append(v.src.viewers[:i], v.src.viewers[i+1:]...)
			break
		}
	}
	v.closeLocked()
	v.src.mu.Unlock()
	<-v.done
}

func (v *Viewer) closeLocked() {
	if !v.closed {
		v.closed = true
		close(v.q)
	}
}

// ViewerStats are a viewer's counters.
type ViewerStats struct {
	Sent    uint64 `json:"sent"`
	Dropped uint64 `json:"dropped"`
	Queued  int    `json:"queued"`
}

// Stats returns the viewer's counters.
func (v *Viewer) Stats() ViewerStats {
	return ViewerStats{Sent: v.sent.Load(), Dropped: v.dropped.Load(), Queued: len(v.q)}
}

// Done is closed once the viewer has ended: closed by its owner, by its
// source (the camera went away), or on a failed write.
func (v *Viewer) Done() <-chan struct{} { return v.done }

// Err is why the viewer ended on its own (its write failed), or nil.
func (v *Viewer) Err() error {
	if e := v.err.Load(); e != nil {
		return *e
	}
	return nil
}
