package record

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"

	"github.com/lookout-cc/lookout/sfu/reorder"
)

// reorderWait is how long a missing packet is waited for: a retransmission
// comes within a round trip, a mobile one's included.
const reorderWait = 500 * time.Millisecond

// discontinuity is how far the RTP clock may run from the wall clock
// between two frames before the timeline follows the wall clock instead:
// the sender restarted its timestamps (a new SSRC, a reconnect).
const discontinuity = 2 * time.Second

// writer is the track's goroutine's state: from queued packets to the
// file. Nothing here is touched by another goroutine until finished.
type writer struct {
	log   *slog.Logger
	codec codecInfo
	clock int64
	reqKF func()

	path string
	f    *os.File
	out  *output
	mux  muxer // made at the first frame, when the codec's parameters are known

	order *reorder.Buffer[pkt]
	in    pkt // the packet pushed, a view of the queue's slot
	asm   assembler
	tl    timeline

	// Video waits for a keyframe at the start and after a loss.
	needKey bool
	lastReq time.Time
	width   int
	height  int
	sps     []byte // H.264 parameter sets, as last seen
	pps     []byte

	// What was written.
	frames   int
	started  time.Time
	lastAt   time.Time
	lastPTS  int64
	lastDur  int64 // ticks of the last frame
	gotFrame bool

	// Pauses: the last packet's arrival (for gaps) and the caller's open
	// pause.
	lastArrival time.Time
	pausedAt    time.Time
	paused      bool
	pauses      []Pause

	summary Summary
	err     error // the first write error; later frames are not written
}

func newWriter(p Params, c codecInfo, f *os.File, path string, log *slog.Logger) *writer {
	w := &writer{
		log:     log,
		codec:   c,
		clock:   int64(p.ClockRate),
		reqKF:   p.RequestKeyframe,
		path:    path,
		f:       f,
		out:     &output{f: f, bw: bufio.NewWriterSize(f, 64<<10)},
		needKey: c.video,
	}
	window := 64
	if c.video {
		window = 512
	}
	w.order = reorder.New(window, reorderWait, copyPkt)
	w.order.Emit = w.onPacket
	w.order.Lose = w.onLoss
	w.asm.init(c.name, w.onFrame)
	w.tl.clock = w.clock
	return w
}

// packet takes one packet from the queue.
func (w *writer) packet(s *slot) {
	if !w.paused && !w.lastArrival.IsZero() && s.at.Sub(w.lastArrival) > GapThreshold {
		w.pauses = append(w.pauses, Pause{From: w.lastArrival, To: s.at, Reason: ReasonGap})
	}
	if s.at.After(w.lastArrival) {
		w.lastArrival = s.at
	}
	w.in = pkt{at: s.at, seq: s.seq, ts: s.ts, ssrc: s.ssrc, marker: s.marker, data: s.buf[:s.n]}
	w.order.Push(s.at, s.seq, s.ssrc, &w.in)
	w.in.data = nil
}

// event applies a Pause or Resume.
func (w *writer) event(e event) {
	switch {
	case !e.resume && !w.paused:
		// A silence before the pause is a gap of its own.
		if !w.lastArrival.IsZero() && e.at.Sub(w.lastArrival) > GapThreshold {
			w.pauses = append(w.pauses, Pause{From: w.lastArrival, To: e.at, Reason: ReasonGap})
		}
		w.paused, w.pausedAt = true, e.at
	case e.resume && w.paused:
		w.pauses = append(w.pauses, Pause{From: w.pausedAt, To: e.at, Reason: ReasonCaller})
		w.paused = false
		if !w.lastArrival.IsZero() {
			w.lastArrival = e.at
		}
		// What came before the pause is written; what was sent during
		// it was ignored, so the sequence starts anew and video waits
		// for a keyframe.
		w.order.Restart()
	}
}

// onLoss: n packets never came (0: the sequence started anew).
func (w *writer) onLoss(n int) {
	w.summary.Lost += n
	w.asm.loss()
	if w.codec.video {
		w.needKey = true
	}
}

// onPacket takes the packets in sequence order.
func (w *writer) onPacket(p *pkt) {
	w.asm.packet(p)
}

// onFrame takes each complete frame (broken ones never come here).
func (w *writer) onFrame(f *frame) {
	key := true
	if w.codec.video {
		var ok bool
		key, ok = w.inspect(f)
		if !ok {
			w.summary.Skipped++
			w.needKey = true
			w.requestKeyframe(f.at)
			return
		}
	}
	if w.needKey && !key {
		w.summary.Skipped++
		w.requestKeyframe(f.at)
		return
	}
	w.needKey = false
	w.write(f, key)
}

// inspect reads a video frame's type and parameters; ok is false for a
// frame that cannot be decoded.
func (w *writer) inspect(f *frame) (key, ok bool) {
	switch w.codec.name {
	case CodecVP8:
		key, width, height, ok := vp8Frame(f.data)
		if ok && key && w.width == 0 {
			w.width, w.height = width, height
		}
		return key, ok
	case CodecH264:
		nal, ok := h264Frame(f.data)
		if !ok {
			return false, false
		}
		if nal.sps != nil {
			if width, height, ok := h264Size(nal.sps); ok {
				w.sps = append(w.sps[:0], nal.sps...)
				if w.width == 0 {
					w.width, w.height = width, height
				}
			}
		}
		if nal.pps != nil {
			w.pps = append(w.pps[:0], nal.pps...)
		}
		// A keyframe the decoder can start on needs the parameter sets.
		return nal.idr && w.sps != nil && w.pps != nil, true
	}
	return true, true
}

// requestKeyframe asks the publisher for a keyframe, at most once per
// keyframeInterval.
func (w *writer) requestKeyframe(now time.Time) {
	if w.reqKF == nil || (!w.lastReq.IsZero() && now.Sub(w.lastReq) < keyframeInterval) {
		return
	}
	w.lastReq = now
	w.summary.KeyframeRequests++
	w.reqKF()
}

// write places a frame on the timeline and into the container.
func (w *writer) write(f *frame, key bool) {
	if w.err != nil {
		return
	}
	pts := w.tl.place(f.ts, f.ssrc, f.at, w.frameDur())
	if w.mux == nil {
		var err error
		switch w.codec.name {
		case CodecVP8:
			w.mux, err = newWebM(w.out, w.codec, w.clock, w.width, w.height, f.at)
		case CodecOpus:
			w.mux, err = newWebM(w.out, w.codec, w.clock, 0, 0, f.at)
		case CodecH264:
			w.mux, err = newMP4(w.out, w.clock, w.sps, w.pps)
		}
		if err != nil {
			w.fail(err)
			return
		}
		w.started = f.at
	}
	if err := w.mux.write(pts, key, f.data); err != nil {
		w.fail(err)
		return
	}
	// The last frame's duration: Opus packets say theirs; for video, the
	// time since the frame before (a pause excepted).
	if w.codec.name == CodecOpus {
		w.lastDur = opus.PacketDuration2(f.data) * w.clock / 48000
	} else if d := pts - w.lastPTS; w.gotFrame && d > 0 && d < w.clock {
		w.lastDur = d
	}
	w.frames++
	w.gotFrame = true
	w.lastAt, w.lastPTS = f.at, pts
}

func (w *writer) fail(err error) {
	w.err = fmt.Errorf("record: writing %s: %w", w.path+".part", err)
	w.log.Error("recording stopped writing", "path", w.path, "err", err)
}

// finish writes out what is held, finishes the container and renames the
// file; the summary is then ready.
func (w *writer) finish() {
	w.order.Flush()
	w.asm.flush()
	s := &w.summary
	s.Codec = w.codec.name
	s.Frames = w.frames
	s.Skipped += w.asm.skipped
	s.Width, s.Height = w.width, w.height
	s.Pauses = w.pauses // Close's own Resume has ended an open pause
	if w.mux == nil {
		_ = w.f.Close()
		_ = os.Remove(w.path + ".part")
		if w.err == nil {
			w.err = ErrNoMedia
		}
		return
	}
	lastDur := w.frameDur()
	end := w.lastPTS + lastDur
	s.Started = w.started
	s.Duration = ticksToDuration(end, w.clock)
	s.Ended = w.lastAt.Add(ticksToDuration(lastDur, w.clock))
	if w.err == nil {
		if err := w.mux.finish(end); err != nil {
			w.fail(err)
		}
	}
	if w.err == nil {
		if err := w.out.bw.Flush(); err != nil {
			w.fail(err)
		}
	}
	if w.err != nil {
		// The .part is kept: what reached the disk may still play.
		_ = w.f.Close()
		return
	}
	if err := w.seal(); err != nil {
		w.fail(err)
		return
	}
	s.Path = w.path
}

// seal syncs and hashes the finished .part and renames it.
func (w *writer) seal() error {
	if err := w.f.Sync(); err != nil {
		_ = w.f.Close()
		return err
	}
	h := sha256.New()
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		_ = w.f.Close()
		return err
	}
	n, err := io.Copy(h, w.f)
	if err != nil {
		_ = w.f.Close()
		return err
	}
	if err := w.f.Close(); err != nil {
		return err
	}
	if err := os.Rename(w.path+".part", w.path); err != nil {
		return err
	}
	// The rename is durable only once the directory is synced.
	if d, err := os.Open(filepath.Dir(w.path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	w.summary.Bytes = n
	w.summary.SHA256 = hex.EncodeToString(h.Sum(nil))
	return nil
}

// frameDur is the last frame's duration in ticks; before one is known, a
// frame at 30 per second for video and an Opus packet of 20 ms.
func (w *writer) frameDur() int64 {
	switch {
	case w.lastDur > 0:
		return w.lastDur
	case w.codec.video:
		return w.clock / 30
	default:
		return w.clock / 50
	}
}

func ticksToDuration(ticks, clock int64) time.Duration {
	return time.Duration(ticks/clock)*time.Second + time.Duration(ticks%clock)*time.Second/time.Duration(clock)
}

// timeline places frames in the file: each frame as much after the one
// before as the RTP timestamps say (their 32-bit wraparound handled), so
// that a pause in the sending is a gap in the file. Where the timestamps
// cannot be right (another SSRC, a jump back, or a step that disagrees
// with the wall clock by more than discontinuity) it follows the arrival
// times instead, and gives the frame before at least its own duration: a
// simulcast layer's keyframe can come in the same instant as the old
// layer's last frame, and two frames at one time are refused by players
// (WebM counts in milliseconds; ffmpeg wants strictly rising times).
type timeline struct {
	clock   int64
	started bool
	ts      uint32
	ssrc    uint32
	at      time.Time
	pos     int64 // ticks of the last frame from the first
}

func (tl *timeline) place(ts, ssrc uint32, at time.Time, lastDur int64) int64 {
	if !tl.started {
		tl.started, tl.ts, tl.ssrc, tl.at = true, ts, ssrc, at
		return 0
	}
	d := int64(int32(ts - tl.ts))
	wall := int64(at.Sub(tl.at)) * tl.clock / int64(time.Second)
	if ssrc != tl.ssrc || d < 0 || absDiff(d, wall) > int64(discontinuity)*tl.clock/int64(time.Second) {
		d = max(wall, lastDur, 1)
	}
	tl.pos += d
	tl.ts, tl.ssrc, tl.at = ts, ssrc, at
	return tl.pos
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

// output is the file being written: buffered, with the count of bytes
// written so far (the offset of the next byte).
type output struct {
	f   *os.File
	bw  *bufio.Writer
	off int64
}

func (o *output) Write(b []byte) (int, error) {
	n, err := o.bw.Write(b)
	o.off += int64(n)
	return n, err
}

// patch overwrites bytes already written, at off.
func (o *output) patch(off int64, b []byte) error {
	if err := o.bw.Flush(); err != nil {
		return err
	}
	_, err := o.f.WriteAt(b, off)
	return err
}

// muxer writes frames into a container.
type muxer interface {
	// write adds a frame at pts (ticks of the track's clock); frames come
	// in order, the first a keyframe.
	write(pts int64, key bool, data []byte) error
	// finish ends the container with the media ending at end.
	finish(end int64) error
}
