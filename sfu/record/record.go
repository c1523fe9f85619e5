// Package record writes one WebRTC track's RTP packets into a standard
// container file on the server, without a browser: VP8 and Opus into WebM
// (Matroska), H.264 into fragmented MP4. Petition hearings are recorded
// this way, each participant's audio and video in its own file, with the
// times at which the recording started, paused and resumed.
//
// The SFU's read loop hands each packet to Track.WriteRTP, which copies it
// into the track's own bounded queue and returns: it never waits for the
// disk and makes no allocation. The track's goroutine puts the packets
// back in order, assembles frames (video from a keyframe on, and again
// from the next keyframe after a loss it cannot repair, asking the
// publisher for one), places them on a timeline taken from the RTP
// timestamps, so that a pause is a gap in the file, and writes them out.
//
// A recording is written to NAME.webm.part (or .mp4.part) and renamed to
// NAME.webm when Close has finished the container, so that a file with
// the final name is always complete; its SHA-256 is in the Summary. If
// the process dies first, the .part stays: it holds every cluster or
// fragment written so far and plays, but has no duration or index, and
// is not a finished recording.
package record

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Codec names, as ffprobe names them; Summary.Codec is one of them.
const (
	CodecVP8  = "vp8"
	CodecH264 = "h264"
	CodecOpus = "opus"
)

// Pause reasons.
const (
	// ReasonCaller: a pause the caller marked with Pause and Resume.
	ReasonCaller = "caller"
	// ReasonGap: no packet came for longer than GapThreshold.
	ReasonGap = "gap"
)

// GapThreshold is the silence after which the recorder counts a pause of
// its own: no packet for longer than this.
const GapThreshold = time.Second

// Defaults of Params.
const (
	DefaultVideoQueue = 1024 // about 4 s of a 720p stream at 2.5 Mbit/s
	DefaultAudioQueue = 256  // 5 s of 20 ms Opus packets
)

// keyframeInterval is how often at most RequestKeyframe is called.
const keyframeInterval = time.Second

// Params of one track's recording.
type Params struct {
	// Dir is the directory of the recording (made if missing; empty is
	// the working directory) and Name
	// the file's name without an extension: the recorder adds .webm or
	// .mp4 after the codec (see Ext), and Summary.Path is the result.
	// Name must be a plain file name.
	Dir, Name string
	// MimeType is the track's codec: webrtc.MimeTypeVP8, MimeTypeH264 or
	// MimeTypeOpus (case does not matter).
	MimeType string
	// ClockRate is the RTP clock; 0 is the codec's (90000 for video,
	// 48000 for Opus).
	ClockRate uint32
	// RequestKeyframe is called on the recorder's goroutine when it needs
	// a keyframe: when the track starts without one, and after a loss it
	// cannot repair, at most once a second. It must not block for long.
	// Nil for audio, or when the caller cannot ask.
	RequestKeyframe func()
	// QueueSize is how many packets may wait for the recorder's
	// goroutine; 0 is DefaultVideoQueue or DefaultAudioQueue. A packet
	// that finds the queue full is dropped and counted. Each slot is
	// allocated at Start with room for 1500 bytes (the default video
	// queue takes 1.5 MB).
	QueueSize int
	// Log gets the recording's start, end and errors; never a line per
	// packet. Nil logs nothing.
	Log *slog.Logger
	// Now is the clock (for tests); nil is time.Now.
	Now func() time.Time
}

// Pause is a stretch of the recording without media.
type Pause struct {
	From, To time.Time
	Reason   string // ReasonCaller or ReasonGap
}

// Summary of a finished recording.
type Summary struct {
	// Path is the finished file; empty when nothing was recorded, or
	// when writing failed (the error names the .part that is kept).
	Path  string
	Codec string // CodecVP8, CodecH264 or CodecOpus
	// Started is when the first frame in the file arrived, Ended when
	// the last one ended, by the wall clock.
	Started, Ended time.Time
	// Duration is the media's: the file's timeline, pauses included.
	Duration time.Duration
	Bytes    int64
	SHA256   string // hex, of the finished file
	// Frames written. Dropped: packets that found the queue full (or
	// were too large). Lost: packets that never came (sequence gaps).
	// Skipped: frames left out, being broken or waiting for a keyframe.
	Frames, Dropped, Lost, Skipped int
	// KeyframeRequests is how many times RequestKeyframe was called.
	KeyframeRequests int
	// Pauses in time order; one still open at Close ends at Close.
	Pauses []Pause
	// Width and Height of video, from the first keyframe (VP8 frame
	// header, H.264 SPS); 0 for audio.
	Width, Height int
}

// Ext is the file extension of a codec's recordings: ".webm" for VP8 and
// Opus, ".mp4" for H.264.
func Ext(mimeType string) (string, error) {
	c, err := codecOf(mimeType)
	if err != nil {
		return "", err
	}
	return c.ext, nil
}

// codecInfo is what the recorder needs to know of a codec.
type codecInfo struct {
	name  string
	ext   string
	video bool
	clock uint32
}

func codecOf(mimeType string) (codecInfo, error) {
	switch {
	case strings.EqualFold(mimeType, webrtc.MimeTypeVP8):
		return codecInfo{CodecVP8, ".webm", true, 90000}, nil
	case strings.EqualFold(mimeType, webrtc.MimeTypeH264):
		return codecInfo{CodecH264, ".mp4", true, 90000}, nil
	case strings.EqualFold(mimeType, webrtc.MimeTypeOpus):
		return codecInfo{CodecOpus, ".webm", false, 48000}, nil
	}
	return codecInfo{}, fmt.Errorf("%w: %q", ErrUnsupportedCodec, mimeType)
}

// Track records one track. Lifecycle: Start; WriteRTP for each packet
// (from the track's read loop), Pause and Resume at any time; Close once
// at the end (later calls return the same). WriteRTP, Pause and Resume
// after Close are ignored.
type Track struct {
	log *slog.Logger
	now func() time.Time

	// Producers' side.
	wmu     sync.Mutex // serialises producers; the consumer never takes it
	q       *queue
	wake    chan struct{}
	closed  atomic.Bool
	paused  atomic.Bool
	dropped atomic.Int64

	// Pause and Resume, in the order called, for the goroutine.
	cmu    sync.Mutex
	events []event

	done     chan struct{} // closed by Close: drain and finish
	finished chan struct{} // closed by the goroutine when it has
	once     sync.Once
	sum      Summary
	err      error

	w *writer // the goroutine's
}

// event is a Pause or Resume.
type event struct {
	at     time.Time
	resume bool
}

// Start opens the recording's file (NAME.EXT.part) and starts the track's
// goroutine. It fails if the codec is not supported or the file or its
// finished name exists already.
func Start(p Params) (*Track, error) {
	c, err := codecOf(p.MimeType)
	if err != nil {
		return nil, err
	}
	if p.Name == "" || p.Name != filepath.Base(p.Name) || p.Name == "." || p.Name == ".." {
		return nil, fmt.Errorf("record: name %q is not a plain file name", p.Name)
	}
	if p.ClockRate == 0 {
		p.ClockRate = c.clock
	}
	if p.QueueSize <= 0 {
		p.QueueSize = DefaultAudioQueue
		if c.video {
			p.QueueSize = DefaultVideoQueue
		}
	}
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	path := filepath.Join(p.Dir, p.Name+c.ext)
	if p.Dir != "" {
		if err := os.MkdirAll(p.Dir, 0o750); err != nil {
			return nil, fmt.Errorf("record: %w", err)
		}
	}
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrExists, path)
	}
	f, err := os.OpenFile(path+".part", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%w: %s.part", ErrExists, path)
		}
		return nil, fmt.Errorf("record: %w", err)
	}
	t := newTrack(p, c)
	t.w = newWriter(p, c, f, path, t.log)
	go t.run()
	t.log.Info("recording started", "path", path)
	return t, nil
}

// newTrack makes a track without its goroutine or file.
func newTrack(p Params, c codecInfo) *Track {
	return &Track{
		log:      p.Log.With("codec", c.name),
		now:      p.Now,
		q:        newQueue(p.QueueSize),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		finished: make(chan struct{}),
	}
}

// WriteRTP copies pkt into the track's queue and returns at once; it
// never blocks and makes no allocation. A packet that finds the queue
// full is dropped and counted (Summary.Dropped). pkt is not kept. Calls
// while paused or after Close are ignored.
func (t *Track) WriteRTP(pkt *rtp.Packet) {
	if t.closed.Load() || t.paused.Load() {
		return
	}
	at := t.now()
	t.wmu.Lock()
	ok := t.q.push(pkt, at)
	t.wmu.Unlock()
	if !ok {
		t.dropped.Add(1)
		return
	}
	select {
	case t.wake <- struct{}{}:
	default: // the goroutine has a wake-up pending already
	}
}

// Pause marks a pause the caller knows of (the publisher muted, its
// connection dropped): packets are ignored until Resume. After Resume,
// video goes on from a keyframe.
func (t *Track) Pause() { t.event(false) }

// Resume ends a pause begun by Pause.
func (t *Track) Resume() { t.event(true) }

func (t *Track) event(resume bool) {
	if t.closed.Load() {
		return
	}
	t.cmu.Lock()
	defer t.cmu.Unlock()
	if t.paused.Load() == !resume {
		return // already paused, or not paused
	}
	// Appended before the flag changes, so that the goroutine sees the
	// event before any packet that was let in after it.
	t.events = append(t.events, event{at: t.now(), resume: resume})
	t.paused.Store(!resume)
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// Close stops taking packets, writes what is queued, finishes the
// container (duration, index) and renames the file to its final name;
// then it returns the summary. It waits for the track's goroutine, and for
// the file to be synced and hashed: on a long recording that takes a
// while. With nothing recorded it removes the .part and returns
// ErrNoMedia.
func (t *Track) Close() (Summary, error) {
	t.once.Do(func() {
		t.closed.Store(true)
		t.cmu.Lock()
		t.events = append(t.events, event{at: t.now(), resume: true}) // ends an open pause
		t.cmu.Unlock()
		close(t.done)
		<-t.finished
		t.sum, t.err = t.w.summary, t.w.err
		t.sum.Dropped = int(t.dropped.Load())
		if t.err != nil {
			t.log.Error("recording failed", "path", t.sum.Path, "err", t.err)
		} else {
			t.log.Info("recording finished", "path", t.sum.Path, "duration", t.sum.Duration,
				"bytes", t.sum.Bytes, "frames", t.sum.Frames, "dropped", t.sum.Dropped,
				"lost", t.sum.Lost, "pauses", len(t.sum.Pauses))
		}
	})
	return t.sum, t.err
}

// run is the track's goroutine: it drains the queue as packets come, and
// finishes the file when Close asks.
func (t *Track) run() {
	defer close(t.finished)
	for {
		select {
		case <-t.wake:
			t.drain()
		case <-t.done:
			t.drain()
			t.w.finish()
			return
		}
	}
}

// drain hands the queued packets and the pending events to the writer,
// each event before the first packet that arrived after it.
func (t *Track) drain() {
	for {
		h := t.q.head.Load()
		tail := t.q.tail.Load()
		// Taken after head: every event that came before a packet up
		// to head is in this batch.
		t.cmu.Lock()
		events := t.events
		t.events = nil
		t.cmu.Unlock()
		if h == tail && len(events) == 0 {
			return
		}
		for ; tail < h; tail++ {
			s := &t.q.slots[tail%uint64(len(t.q.slots))]
			for len(events) > 0 && !events[0].at.After(s.at) {
				t.w.event(events[0])
				events = events[1:]
			}
			t.w.packet(s)
			t.q.tail.Store(tail + 1) // the slot may be filled again
		}
		for _, e := range events {
			t.w.event(e)
		}
	}
}
