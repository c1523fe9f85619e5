// Package clips keeps a camera's last seconds of video in memory, a
// pre-alert buffer fed beside the camera's source, and writes spans of it
// as MP4 files (ISO/IEC 14496-12 and -15: ftyp, moov, mdat) that browsers
// and ffprobe play, indexed in the state database.
//
// A Buffer is an ingest/rtsp Sink: it depacketizes the camera's RTP into
// access units (gortsplib's H.264 and H.265 decoders) and keeps each with
// its presentation time, its receive time, whether it is a random access
// point, and the parameter sets it was coded with. A Store cuts spans out of
// buffers and keeps them under the data directory.
package clips

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"
)

// Defaults and limits of Params.
const (
	DefaultDuration = 30 * time.Second
	DefaultMaxBytes = 64 << 20
	// MaxMaxBytes bounds MaxBytes: an MP4 written here has 32-bit sizes
	// and offsets.
	MaxMaxBytes = 1 << 30
	// clockRate of H.264 and H.265 over RTP.
	clockRate = 90000
)

// Params configure a Buffer. Zero values take the defaults.
type Params struct {
	// Duration is how far back the buffer reaches: it holds at least the
	// last Duration of video (once the camera has sent that much) from a
	// keyframe at or before it, so at most Duration plus one keyframe
	// interval; for a camera whose keyframes are further apart than
	// Duration, at most twice Duration.
	Duration time.Duration
	// MaxBytes bounds the video held (the access units' bytes; the buffer
	// allocates them by doubling up to it, and never beyond). When the
	// next frame does not fit, the oldest frames go early, a keyframe
	// interval at a time, and are counted in Stats.EvictedForBytes.
	MaxBytes int64
	// Now is the clock frames are stamped with (default time.Now).
	Now func() time.Time
}

// Stats describe what a buffer holds and what it could not keep.
type Stats struct {
	Codec string `json:"codec,omitempty"`
	// From and To are the receive times of the oldest frame (always a
	// keyframe) and the newest; zero when the buffer is empty.
	From   time.Time `json:"from,omitzero"`
	To     time.Time `json:"to,omitzero"`
	Frames int       `json:"frames"`
	// Bytes is the video held; Allocated what the buffer has allocated
	// for it, at most MaxBytes.
	Bytes     int64 `json:"bytes"`
	Allocated int64 `json:"allocated"`
	MaxBytes  int64 `json:"max_bytes"`
	// DroppedNoKeyframe counts frames not kept because no keyframe (or
	// no parameter set) before them was: the start of each stream.
	DroppedNoKeyframe uint64 `json:"dropped_no_keyframe"`
	// DroppedTooLarge counts frames larger than MaxBytes.
	DroppedTooLarge uint64 `json:"dropped_too_large"`
	// EvictedForBytes counts frames evicted before their time to stay
	// within MaxBytes.
	EvictedForBytes uint64 `json:"evicted_for_bytes"`
	// DecodeErrors counts packets the depacketizer refused (lost
	// fragments, malformed payloads).
	DecodeErrors uint64 `json:"decode_errors"`
}

// paramSets are the VPS (H.265 only), SPS and PPS of a stretch of frames.
// Their slices are never changed once made: snapshots share them.
type paramSets struct {
	gen uint32
	ps  [3][]byte
}

// Buffer is one camera's pre-alert buffer.
//
// Lifecycle: New; then, from the camera's puller, Start, WriteRTP for each
// packet, Stop, and Start again when the camera is back (its frames from
// before stay, and its timeline goes on); Snapshot and Stats at any time,
// from any goroutine.
type Buffer struct {
	p Params

	// The writer's: touched only from Start, WriteRTP and Stop, which
	// are called one at a time.
	dp      depacketizer
	lastTS  uint32 // RTP timestamp of the newest access unit
	started bool   // an access unit came in this session
	pts     int64  // of the newest access unit
	ptsAt   time.Time
	havePTS bool

	mu      sync.Mutex
	codec   string
	cur     paramSets   // the parameter sets in force
	gens    []paramSets // those of the frames held, and cur
	r       ring
	dropKey uint64
	dropBig uint64
	evicted uint64
}

// New makes an empty buffer.
func New(p Params) *Buffer {
	if p.Duration <= 0 {
		p.Duration = DefaultDuration
	}
	if p.MaxBytes <= 0 {
		p.MaxBytes = DefaultMaxBytes
	}
	p.MaxBytes = min(p.MaxBytes, MaxMaxBytes)
	if p.Now == nil {
		p.Now = time.Now
	}
	b := &Buffer{p: p, r: newRing(int(p.MaxBytes))}
	b.dp.emit = b.onAU
	return b
}

// Start begins a session of the camera: its codec (H264 or H265) and the
// parameter sets of its description (VPS, SPS, PPS; any may be nil, and
// then come in-band). A new codec empties the buffer.
func (b *Buffer) Start(codec string, sets [][]byte) {
	b.dp.reset(codec)
	b.started = false
	b.mu.Lock()
	defer b.mu.Unlock()
	if codec != b.codec {
		b.r.clear()
		b.codec = codec
		b.cur = paramSets{gen: b.cur.gen + 1}
		b.gens = b.gens[:0]
		b.havePTS = false
	}
	// The description's sets come in order VPS, SPS, PPS for H.265 and
	// SPS, PPS for H.264.
	slot := 0
	if codec == H264 {
		slot = 1
	}
	for _, ps := range sets {
		if slot < 3 && len(ps) > 0 {
			b.setParamLocked(slot, ps)
		}
		slot++
	}
}

// WriteRTP takes one packet of the video; pkt is not kept.
func (b *Buffer) WriteRTP(pkt *rtp.Packet) {
	b.dp.decode(pkt)
}

// onAU takes an access unit from the depacketizer.
func (b *Buffer) onAU(au [][]byte, ts uint32) {
	now := b.p.Now()
	// The presentation time runs on from the RTP timestamps (their
	// differences, so wrapping is no matter), and across the camera's
	// sessions by the time it was away.
	switch {
	case b.started:
		b.pts += int64(int32(ts - b.lastTS))
	case b.havePTS:
		b.pts += max(1, int64(now.Sub(b.ptsAt).Seconds()*clockRate))
	}
	b.started, b.havePTS, b.lastTS, b.ptsAt = true, true, ts, now
	b.commit(au, b.pts, now)
}

// Stop ends the session; what is buffered stays.
func (b *Buffer) Stop() {
	b.dp.reset("")
}

// setParamLocked makes nalu the parameter set of its slot (0 VPS, 1 SPS,
// 2 PPS), starting a new generation when it differs; b.mu held.
func (b *Buffer) setParamLocked(slot int, nalu []byte) {
	if bytes.Equal(b.cur.ps[slot], nalu) {
		return
	}
	b.cur.gen++
	b.cur.ps[slot] = slices.Clone(nalu)
}

// paramSlot is where a NAL unit of the codec goes: 0 VPS, 1 SPS, 2 PPS;
// -1 for a unit that goes into the sample; -2 for one dropped (access
// unit delimiters and filler, which MP4 samples leave out).
func paramSlot(codec string, nalu []byte) int {
	if codec == H265 {
		switch h265.NALUType((nalu[0] >> 1) & 0x3f) {
		case h265.NALUType_VPS_NUT:
			return 0
		case h265.NALUType_SPS_NUT:
			return 1
		case h265.NALUType_PPS_NUT:
			return 2
		case h265.NALUType_AUD_NUT:
			return -2
		}
		return -1
	}
	switch h264.NALUType(nalu[0] & 0x1f) {
	case h264.NALUTypeSPS:
		return 1
	case h264.NALUTypePPS:
		return 2
	case h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeFillerData:
		return -2
	}
	return -1
}

func isKey(codec string, nalu []byte) bool {
	if codec == H265 {
		switch h265.NALUType((nalu[0] >> 1) & 0x3f) {
		case h265.NALUType_IDR_W_RADL, h265.NALUType_IDR_N_LP, h265.NALUType_CRA_NUT:
			return true
		}
		return false
	}
	return h264.NALUType(nalu[0]&0x1f) == h264.NALUTypeIDR
}

// paramsComplete: the sets a decoder needs are known.
func (b *Buffer) paramsComplete() bool {
	ok := len(b.cur.ps[1]) > 0 && len(b.cur.ps[2]) > 0
	if b.codec == H265 {
		ok = ok && len(b.cur.ps[0]) > 0
	}
	return ok
}

// commit keeps one access unit: parameter sets go to the sample entry
// rather than the sample, the rest is stored in AVCC form.
func (b *Buffer) commit(au [][]byte, pts int64, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	size, key := 0, false
	hl := 1
	if b.codec == H265 {
		hl = 2
	}
	for _, n := range au {
		if len(n) < hl {
			continue
		}
		switch s := paramSlot(b.codec, n); s {
		case -1:
			size += 4 + len(n)
			key = key || isKey(b.codec, n)
		case -2:
		default:
			b.setParamLocked(s, n)
		}
	}
	if size == 0 {
		return
	}
	if b.r.count == 0 && (!key || !b.paramsComplete()) {
		b.dropKey++
		return
	}
	if size > b.r.max {
		b.dropBig++
		return
	}
	if key && (len(b.gens) == 0 || b.gens[len(b.gens)-1].gen != b.cur.gen) {
		b.gens = append(b.gens, b.cur)
	}

	// Old enough to go: whole keyframe intervals, while the next one
	// still starts at least Duration ago; and anything past twice
	// Duration.
	keep := at.Add(-b.p.Duration)
	for b.r.k2 > 0 && !b.r.at(b.r.k2).at.After(keep) {
		for i := b.r.k2; i > 0; i-- {
			b.r.pop()
		}
	}
	for b.r.count > 0 && at.Sub(b.r.front().at) > 2*b.p.Duration {
		b.r.popGOP()
	}
	off, ok := b.r.fit(size)
	for !ok {
		if !b.r.grow(b.r.used + size) {
			b.evicted += uint64(b.r.popGOP())
		}
		off, ok = b.r.fit(size)
	}
	if b.r.count == 0 && !key {
		// The evictions took this frame's keyframe.
		b.dropKey++
		return
	}
	dst := b.r.data[off : off+size : off+size]
	p := 0
	for _, n := range au {
		if len(n) < hl || paramSlot(b.codec, n) != -1 {
			continue
		}
		binary.BigEndian.PutUint32(dst[p:], uint32(len(n)))
		p += 4 + copy(dst[p+4:], n)
	}
	b.r.push(frame{off: off, n: size, pts: pts, at: at, key: key, gen: b.gens[len(b.gens)-1].gen})
	b.trimGensLocked()
}

// trimGensLocked forgets parameter sets no frame held uses.
func (b *Buffer) trimGensLocked() {
	oldest := b.r.front().gen
	i := 0
	for i < len(b.gens)-1 && b.gens[i].gen < oldest {
		i++
	}
	if i > 0 {
		b.gens = append(b.gens[:0], b.gens[i:]...)
	}
}

// Stats returns what the buffer holds now.
func (b *Buffer) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := Stats{Codec: b.codec, Frames: b.r.count, Bytes: int64(b.r.used), Allocated: int64(len(b.r.data)), MaxBytes: int64(b.r.max),
		DroppedNoKeyframe: b.dropKey, DroppedTooLarge: b.dropBig, EvictedForBytes: b.evicted}
	if b.r.count > 0 {
		st.From, st.To = b.r.front().at, b.r.back().at
	}
	st.DecodeErrors = b.dp.errs.Load()
	return st
}

// Span is a stretch of time, as a buffer reports what it holds.
type Span struct{ From, To time.Time }

func (s Span) String() string {
	const layout = "2006-01-02T15:04:05.000Z07:00"
	return fmt.Sprintf("%s to %s (%.1f s)", s.From.UTC().Format(layout), s.To.UTC().Format(layout), s.To.Sub(s.From).Seconds())
}
