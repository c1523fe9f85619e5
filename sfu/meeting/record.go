package meeting

import (
	"errors"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Recording: a room being recorded hands each participant's sources
// (camera, microphone, screen) to a Recorder, one TrackSink per source for
// the whole recording. A source's packets reach its sink as one continuous
// stream whatever happens in the meeting: when the participant reconnects
// (a new track) or the recorded simulcast layer changes, the sink's
// stream goes on with the same SSRC, its sequence numbers following on
// and its timestamps advanced by the time that passed, so that a gap in
// the meeting is a gap in the file's timeline (which the recorder keeps
// as a pause) and never a jump back. Video changes stream only at a
// keyframe.
//
// The recording lasts from Record to StopRecording, across the room's
// end and return (the officer's browser reloads), so it belongs to the SFU
// and not to a Room.

// TrackSink takes one recorded source's packets.
type TrackSink interface {
	// WriteRTP is called on the track's read loop: it must copy what it
	// keeps and never block.
	WriteRTP(pkt *rtp.Packet)
	// Close ends the source's recording (StopRecording).
	Close()
}

// RecordedSource is what a Recorder is told of a source it records.
type RecordedSource struct {
	Room     string
	Identity string
	Name     string
	Role     string
	Source   string // camera, microphone, screen, screen_audio
	Kind     string // audio or video
	// MimeType is the codec, e.g. video/VP8; ClockRate its RTP clock.
	MimeType  string
	ClockRate uint32
	// RequestKeyframe asks the publisher for a keyframe of the recorded
	// layer (throttled); a no-op for audio.
	RequestKeyframe func()
}

// Recorder makes the sinks of a recorded room.
type Recorder interface {
	// Open is called the first time a source publishes during the
	// recording; an error leaves that source unrecorded (and is logged).
	Open(src RecordedSource) (TrackSink, error)
}

// ErrRecording: the room is being recorded already.
var ErrRecording = errors.New("the room is being recorded already")

// roomRecording is a room's recording: its sources by identity, source
// and codec (a codec change is a new sink: a container holds one).
type roomRecording struct {
	rec Recorder

	mu      sync.Mutex
	sources map[recKey]*recSource
	stopped bool
}

type recKey struct{ identity, source, mime string }

// recSource is one source's recording across its tracks.
type recSource struct {
	sink      TrackSink
	clockRate uint32
	video     bool

	mu      sync.Mutex
	cur     *upTrack
	layer   int
	since   int64 // nanotime the current track was taken
	started bool
	// The move back up (follow): since when each better layer has been
	// sent well (0: not now), the layer whose keyframe the recording
	// waits for (-1: none), and how many ticks it has asked for it.
	upSince [numLayers]int64
	upTo    int
	upAsked int
	// down: the recorded layer has been found not sent well at this many
	// ticks in a row (a layer's first tick, part of a second, may read
	// low once); downTo: the layer the recording moves down to at its
	// keyframe, or -1.
	down   int
	downTo int
	// The offsets from the current stream to the sink's, and the last
	// packet the sink had.
	seqOff   uint16
	tsOff    uint32
	ssrc     uint32
	lastSeq  uint16
	lastTS   uint32
	lastWall int64
	scratch  rtp.Packet
}

// Record starts recording room: every source published in it from now on,
// and those published now. The room need not be in progress.
func (s *SFU) Record(room string, rec Recorder) error {
	s.mu.Lock()
	if s.recordings == nil {
		s.recordings = map[string]*roomRecording{}
	}
	if s.recordings[room] != nil {
		s.mu.Unlock()
		return ErrRecording
	}
	rr := &roomRecording{rec: rec, sources: map[recKey]*recSource{}}
	s.recordings[room] = rr
	r := s.live[room]
	s.mu.Unlock()
	if r != nil {
		for _, p := range r.snapshot() {
			p.mu.Lock()
			tracks := make([]*upTrack, 0, len(p.published))
			for u := range p.published {
				tracks = append(tracks, u)
			}
			p.mu.Unlock()
			for _, u := range tracks {
				s.recordTrack(r, u)
			}
		}
	}
	return nil
}

// Recording says whether room is being recorded.
func (s *SFU) Recording(room string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recordings[room] != nil
}

// StopRecording ends room's recording: every sink is closed (after its
// tracks stop handing it packets).
func (s *SFU) StopRecording(room string) {
	s.mu.Lock()
	rr := s.recordings[room]
	delete(s.recordings, room)
	r := s.live[room]
	s.mu.Unlock()
	if rr == nil {
		return
	}
	rr.mu.Lock()
	rr.stopped = true
	sources := rr.sources
	rr.sources = nil
	rr.mu.Unlock()
	if r != nil {
		for _, p := range r.snapshot() {
			p.mu.Lock()
			for u := range p.published {
				u.rec.Store(nil)
			}
			p.mu.Unlock()
		}
	}
	// The files are closed at once rather than one after another: each
	// close syncs its file, which on a busy disk takes a while, and the
	// hearing's end (its signed record) waits for all of them.
	var closing sync.WaitGroup
	for _, rs := range sources {
		// A read loop may be inside write: closing under rs.mu waits
		// for it, and marks the source so that no later packet goes in.
		rs.mu.Lock()
		rs.cur = nil
		sink := rs.sink
		rs.sink = nil
		rs.mu.Unlock()
		if sink != nil {
			closing.Go(sink.Close)
		}
	}
	closing.Wait()
}

// recordTrack hands u's packets to its source's recording, when its room
// is being recorded.
func (s *SFU) recordTrack(r *Room, u *upTrack) {
	s.mu.Lock()
	rr := s.recordings[r.id]
	s.mu.Unlock()
	if rr == nil {
		return
	}
	key := recKey{u.pub.identity, u.source, u.codec.MimeType}
	rr.mu.Lock()
	if rr.stopped {
		rr.mu.Unlock()
		return
	}
	rs := rr.sources[key]
	if rs == nil {
		var holder *recSource
		sink, err := rr.rec.Open(RecordedSource{Room: r.id, Identity: u.pub.identity, Name: u.pub.name, Role: u.pub.role,
			Source: u.source, Kind: u.kind.String(), MimeType: u.codec.MimeType, ClockRate: u.codec.ClockRate,
			RequestKeyframe: func() {
				holder.mu.Lock()
				cur, layer := holder.cur, holder.layer
				holder.mu.Unlock()
				if cur != nil {
					cur.requestKeyframe(layer)
				}
			}})
		if err != nil {
			rr.mu.Unlock()
			s.log.Error("meeting source not recorded", "room", r.id, "identity", u.pub.identity, "source", u.source, "err", err)
			return
		}
		rs = &recSource{sink: sink, clockRate: max(u.codec.ClockRate, 1), video: u.kind == webrtc.RTPCodecTypeVideo, layer: -1, upTo: -1, downTo: -1}
		holder = rs
		rr.sources[key] = rs
	}
	rr.mu.Unlock()
	u.rec.Store(rs)
	u.firstKeyframe(u.tapLayer(true))
}

// recordSwitchGrace is how long after a track starts the recording may
// move up to a better layer at its first keyframe (a simulcast track's
// layers come one by one); after it, the recording moves down when the
// recorded layer stops or trickles, and back up only once a better layer
// has been sent well for the SFU's recordUpAfter (follow).
const recordSwitchGrace = 3 * time.Second

// recordUpAfterDefault: a hearing's record is evidence, and a better
// picture for the rest of it is worth a change of resolution in the file
// (at a keyframe: fMP4 keeps the parameter sets in the samples, and VP8
// keyframes carry their size; ffmpeg decodes both, TestRecordResolutionChange);
// but not every few seconds, as a layer a phone's browser turns off and
// on would have it.
const recordUpAfterDefault = 10 * time.Second

// recordMinStep is the least a switch of stream moves the recording's
// timeline on: about a frame.
const recordMinStep = 20 * time.Millisecond

// write hands one packet of u's layer to the sink, rewritten into the
// sink's stream. It is called on the read loop, before the fan-out, and
// makes no allocation.
func (rs *recSource) write(u *upTrack, layer int, p *rtp.Packet, key bool, now int64) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.sink == nil {
		return
	}
	if u != rs.cur || layer != rs.layer {
		if !rs.takes(u, layer, key, now) {
			return
		}
		if u != rs.cur {
			rs.since = now
			rs.upSince = [numLayers]int64{}
		}
		// The waits of the layers above the new one go on.
		for l := range layer + 1 {
			rs.upSince[l] = 0
		}
		rs.cur, rs.layer, rs.upTo, rs.upAsked, rs.down, rs.downTo = u, layer, -1, 0, 0, -1
		if rs.started {
			// Go on from the sink's last packet, as much later as
			// time has passed, and a frame's time at least: a layer's
			// keyframe comes right after the other layer's frame, and
			// two frames in the same millisecond are out of order in a
			// container that counts in milliseconds (WebM).
			elapsed := uint64(max(now-rs.lastWall, int64(recordMinStep)))
			ts := rs.lastTS + uint32(elapsed*uint64(rs.clockRate)/uint64(time.Second))
			rs.tsOff = ts - p.Timestamp
			rs.seqOff = rs.lastSeq + 1 - p.SequenceNumber
		} else {
			rs.started, rs.ssrc, rs.tsOff, rs.seqOff = true, p.SSRC, 0, 0
		}
	}
	rs.scratch.Header = p.Header
	rs.scratch.SSRC = rs.ssrc
	rs.scratch.SequenceNumber = p.SequenceNumber + rs.seqOff
	rs.scratch.Timestamp = p.Timestamp + rs.tsOff
	rs.scratch.Payload = p.Payload
	// Only forward progress counts as the last: a retransmitted or late
	// packet must not move the base of a switch back.
	if int16(rs.scratch.SequenceNumber-rs.lastSeq) > 0 || rs.lastWall == 0 {
		rs.lastSeq, rs.lastTS, rs.lastWall = rs.scratch.SequenceNumber, rs.scratch.Timestamp, now
	}
	rs.sink.WriteRTP(&rs.scratch)
	rs.scratch.Payload = nil
}

// takes decides whether a packet of another track or layer than the
// recorded one becomes the recorded stream.
func (rs *recSource) takes(u *upTrack, layer int, key bool, now int64) bool {
	if rs.video && !key {
		return false // video changes stream only at a keyframe
	}
	switch {
	case rs.cur == nil:
		return true
	case u != rs.cur:
		// A newer track of the source (a reconnect), or the recorded one
		// has ended.
		return u.createdAt.After(rs.cur.createdAt) || rs.cur.isEnded()
	case layer > rs.layer:
		// In the track's first seconds, to a layer that has just come
		// (its frame rate not measured yet) or is sent well; later, to
		// the layer follow chose, if still sent well.
		if layer == rs.upTo {
			return u.usableLayer(layer)
		}
		return now-rs.since < int64(recordSwitchGrace) && (u.layerFPS[layer].Load() == 0 || u.usableLayer(layer))
	default:
		// Down when the recorded layer stops, or has trickled beside a
		// smooth lower one at two ticks running (a record of the meeting
		// at two frames a second is no record): to the layer follow
		// chose, if still sent well, while the recorded one still is
		// not. A layer stopped with none chosen yet takes any.
		if layer == rs.downTo {
			return !u.sentWell(rs.layer) && u.usableLayer(layer)
		}
		return rs.downTo < 0 && !u.hasLayer(rs.layer)
	}
}

// sentWell says whether the recorded layer is still sent well enough to
// keep: sent, and not latched as trickling (judgeTrickling leaves that
// on a tick's own rate; usableLayer's smoothed half rule would still
// read low a layer whose first tick counted part of a second).
func (u *upTrack) sentWell(layer int) bool {
	return u.hasLayer(layer) && !u.trickling[layer].Load()
}

// recordDownTicks is how many ticks in a row the recorded layer must be
// found not sent well before the recording moves down from it.
const recordDownTicks = 2

// follow, each stats tick, asks the publisher for the keyframe the
// recording's next move needs: down, to the best layer sent well, once
// the recorded one has not been for recordDownTicks (takes moves at the
// first keyframe of a layer sent well below it); up, to the best layer
// above it that has been sent well for after, or at once if the recorded
// layer is gone and nothing below is sent well. A keyframe asked for a
// move up that does not come in recordUpAsks ticks restarts that layer's
// wait; a move down is asked for until it is made (throttled, as every
// request is). Nothing is asked while the source is muted (its packets
// are not recorded then).
func (rs *recSource) follow(u *upTrack, now int64, after time.Duration) {
	if ask := rs.nextMove(u, now, after); ask >= 0 {
		u.requestKeyframe(ask) // throttled, as every request is
	}
}

// nextMove is follow's choice: the layer whose keyframe to ask for, or -1.
func (rs *recSource) nextMove(u *upTrack, now int64, after time.Duration) int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if !rs.video || rs.cur != u || rs.layer < 0 {
		return -1 // another track's, or not started
	}
	if u.muted.Load() {
		rs.upSince, rs.upTo, rs.upAsked, rs.down, rs.downTo = [numLayers]int64{}, -1, 0, 0, -1
		return -1
	}
	// How long each better layer has been sent well, every tick.
	best, usableAbove := -1, -1
	for l := rs.layer + 1; l < numLayers; l++ {
		switch {
		case !u.usableLayer(l):
			rs.upSince[l] = 0
			continue
		case rs.upSince[l] == 0:
			rs.upSince[l] = now
		}
		usableAbove = l
		if now-rs.upSince[l] >= int64(after) {
			best = l
		}
	}
	ask := -1
	if !u.sentWell(rs.layer) {
		rs.down++
		rs.upTo, rs.upAsked, rs.downTo = -1, 0, -1
		below := -1
		for l := rs.layer - 1; l >= 0; l-- {
			if u.usableLayer(l) {
				below = l
				break
			}
		}
		switch {
		case below >= 0 && (rs.down >= recordDownTicks || !u.hasLayer(rs.layer)):
			rs.downTo = below
			ask = below
		case below < 0 && !u.hasLayer(rs.layer) && usableAbove >= 0:
			// The recorded layer gone and nothing below: up at once.
			rs.upTo = usableAbove
			ask = usableAbove
		}
	} else {
		rs.down, rs.downTo = 0, -1
		if best != rs.upTo {
			rs.upTo, rs.upAsked = best, 0
		}
		if rs.upTo >= 0 {
			if rs.upAsked++; rs.upAsked > recordUpAsks {
				rs.upSince[rs.upTo], rs.upTo, rs.upAsked = now, -1, 0
			}
		}
		ask = rs.upTo
	}
	return ask
}

// recordUpAsks is how many ticks a recording asks for the keyframe of the
// layer it would move up to before it waits for that layer again.
const recordUpAsks = 5
