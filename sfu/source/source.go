package source

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// Limits of the cache and the viewers' queues.
const (
	// maxCache bounds the packets kept since the last keyframe (4.9 MB:
	// a 16 Mbit/s main stream at a 2 s keyframe interval fits); a longer
	// group of pictures is not cached, and a new viewer waits for the
	// next keyframe.
	maxCache = 4096
	// QueueLen is how many packets a viewer may be behind before it drops
	// frames; it holds a whole cache.
	QueueLen = 2 * maxCache
	// clockRate of H.264 and H.265 over RTP.
	clockRate = 90000
)

// Source is one camera's video.
//
// Lifecycle: New; then, from the camera's puller, Start, WriteRTP for each
// packet, Stop, and again Start when the camera is back; viewers come and
// go at any time (AddViewer, Viewer.Close); Close at the end.
type Source struct {
	mu      sync.Mutex
	codec   string
	params  [3][]byte // VPS (H.265), SPS, PPS, as last seen
	playing bool
	closed  bool

	seq uint16
	// The output timestamps run on across a camera's restarts: offset is
	// added to the camera's, re-chosen at each Start.
	tsOffset   uint32
	lastTS     uint32
	lastWall   time.Time
	haveOutput bool
	rebase     bool

	cache      []*Packet
	cacheValid bool
	viewers    []*Viewer

	scratch [MaxPayload]byte
	psBuf   [MaxPayload]byte
	// The packet being written, for piece.
	cur    rtp.Header
	curTS  uint32
	curKey bool
	curAt  time.Time

	// RequestKeyframe, when set before the first viewer, is called when a
	// viewer asks for a keyframe (a PLI): a source whose sender can make
	// one on demand (a meeting participant's browser) is asked, where a
	// camera's next keyframe comes by its own interval.
	RequestKeyframe func()

	// OnForward, when set before viewers come, is told for every packet a
	// viewer sent how long it took from the camera's packet reaching the
	// source (cached packets replayed to a new viewer are not counted).
	OnForward func(time.Duration)

	packetsIn  atomic.Uint64
	keyframes  atomic.Uint64
	oversized  atomic.Uint64
	viewerDrop atomic.Uint64
}

// New makes a source with no camera yet.
func New() *Source {
	return &Source{cache: make([]*Packet, 0, 256)}
}

// Start is called when the camera plays: its codec (H264 or H265) and the
// parameter sets from its description (VPS, SPS, PPS; any may be nil).
func (s *Source) Start(codec string, paramSets [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.codec != codec {
		s.params = [3][]byte{}
		s.dropCache()
	}
	s.codec = codec
	for i, p := range paramSets {
		if i < 3 && len(p) > 0 {
			s.params[i] = append(s.params[i][:0], p...)
		}
	}
	s.playing = true
	s.rebase = s.haveOutput
}

// Stop is called when the camera's stream ended. The cache is dropped: a
// viewer that arrives while the camera is away waits for it to come back.
func (s *Source) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.playing = false
	s.dropCache()
}

// Codec is the camera's codec, "" before it first played.
func (s *Source) Codec() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.codec
}

func (s *Source) dropCache() {
	for _, p := range s.cache {
		p.Release()
	}
	clear(s.cache)
	s.cache = s.cache[:0]
	s.cacheValid = false
}

// WriteRTP takes one packet of the camera: pkt is not kept. The packet is
// split when too large for WebRTC; a keyframe is preceded by the
// parameter sets; every piece goes to the cache and to each viewer.
func (s *Source) WriteRTP(pkt *rtp.Packet) {
	s.packetsIn.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.playing || s.closed || s.codec == "" {
		return
	}
	if s.rebase {
		// The camera came back with a timestamp of its own: carry on
		// from the last one sent, plus the time it was away.
		away := uint32(time.Since(s.lastWall).Seconds() * clockRate)
		s.tsOffset = s.lastTS + away - pkt.Timestamp
		s.rebase = false
	}
	ts := pkt.Timestamp + s.tsOffset
	if s.codec == VP8 {
		// A participant's VP8: no parameter sets, and packets a browser
		// already sized for WebRTC. One larger (a publisher with another
		// MTU) cannot be split here as an H.264 one is: it is dropped and
		// counted, as is padding without a payload.
		if len(pkt.Payload) == 0 {
			return
		}
		if len(pkt.Payload) > MaxPayload {
			s.oversized.Add(1)
			return
		}
		key := IsVP8Keyframe(pkt.Payload)
		if key {
			s.keyframes.Add(1)
		}
		s.cur = pkt.Header
		s.curTS, s.curKey, s.curAt = ts, key, time.Now()
		s.piece(pkt.Payload, true)
		s.lastTS, s.lastWall, s.haveOutput = ts, time.Now(), true
		return
	}
	keyframe := inspect(s.codec, pkt.Payload, s)
	if keyframe {
		s.keyframes.Add(1)
		// Parameter sets first, so that the cache starts with all a
		// decoder needs, whatever the camera sends in-band.
		if ps := aggregate(s.codec, s.params, s.psBuf[:]); ps != nil {
			h := pkt.Header
			h.Marker = false
			s.curAt = time.Now()
			s.emit(&h, ps, ts, true)
			keyframe = false // marked on the parameter sets
		}
	}
	if len(pkt.Payload) > MaxPayload {
		s.oversized.Add(1)
	}
	s.cur = pkt.Header
	s.curTS, s.curKey, s.curAt = ts, keyframe, time.Now()
	split(s.codec, pkt.Payload, MaxPayload, s.scratch[:], s, true)
	s.lastTS, s.lastWall, s.haveOutput = ts, time.Now(), true
}

// param keeps a parameter set seen in-band; s.mu held.
func (s *Source) param(slot int, nalu []byte) {
	if len(nalu) < MaxPayload/3 {
		s.params[slot] = append(s.params[slot][:0], nalu...)
	}
}

// piece emits one piece of the packet being written; s.mu held.
func (s *Source) piece(payload []byte, last bool) {
	h := s.cur
	h.Marker = s.cur.Marker && last
	s.emit(&h, payload, s.curTS, s.curKey)
	s.curKey = false
}

// emit numbers a piece, caches it and offers it to every viewer; s.mu held.
func (s *Source) emit(h *rtp.Header, payload []byte, ts uint32, keyframe bool) {
	p := newPacket(h, payload)
	p.At = s.curAt
	p.Header.SequenceNumber = s.seq
	p.Header.Timestamp = ts
	p.Keyframe = keyframe
	s.seq++
	if keyframe {
		s.dropCache()
		s.cacheValid = true
	}
	if s.cacheValid {
		if len(s.cache) < maxCache {
			p.hold()
			s.cache = append(s.cache, p)
		} else {
			s.dropCache() // a group of pictures too long to keep
		}
	}
	for _, v := range s.viewers {
		v.offer(p)
	}
	p.Release()
}

// ErrClosed is returned by AddViewer on a closed source.
var ErrClosed = errors.New("source closed")

// AddViewer adds a viewer that gets the cached packets since the last
// keyframe at once, then every packet as it comes. write sends one packet
// to the viewer (a WebRTC track); it is called from the viewer's own
// goroutine, and an error from it ends the viewer.
func (s *Source) AddViewer(write func(*rtp.Packet) error) (*Viewer, error) {
	v := &Viewer{src: s, q: make(chan entry, QueueLen), write: write, done: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	s.viewers = append(s.viewers, v)
	v.waitKey = true
	v.replay() // the picture at once, from the cache
	s.mu.Unlock()
	go v.run()
	return v, nil
}

// Viewers is how many viewers the source has.
func (s *Source) Viewers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.viewers)
}

// Stats are a source's counters.
type Stats struct {
	PacketsIn     uint64 `json:"packets_in"`
	Keyframes     uint64 `json:"keyframes"`
	Oversized     uint64 `json:"oversized"`      // camera packets split for WebRTC (VP8: dropped)
	ViewerDropped uint64 `json:"viewer_dropped"` // packets dropped for slow viewers
	Viewers       int    `json:"viewers"`
	CachedPackets int    `json:"cached_packets"`
}

// Stats returns the source's counters.
func (s *Source) Stats() Stats {
	s.mu.Lock()
	n, c := len(s.viewers), len(s.cache)
	s.mu.Unlock()
	return Stats{PacketsIn: s.packetsIn.Load(), Keyframes: s.keyframes.Load(), Oversized: s.oversized.Load(), ViewerDropped: s.viewerDrop.Load(),
		Viewers: n, CachedPackets: c}
}

// Close ends every viewer and drops the cache.
func (s *Source) Close() {
	s.mu.Lock()
	vs := s.viewers
	s.viewers = nil
	s.closed = true
	s.dropCache()
	for _, v := range vs {
		v.closeLocked()
	}
	s.mu.Unlock()
	for _, v := range vs {
		<-v.done
	}
}
