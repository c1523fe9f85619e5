package meeting

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/lookout-cc/lookout/sfu/reorder"
	"github.com/lookout-cc/lookout/sfu/source"
)

// A tap takes one layer of a participant's camera video out of the meeting
// into a source.Source, the same kind a camera feeds: a command room's
// wall then plays the participant over WHEP like any camera (its cached
// group of pictures at once, a session switched without a new offer), and
// the participant's meeting sees nothing of it.

// Errors of Tap.
var (
	// ErrParticipantNotFound: no such participant in the room in
	// progress (or the room is not in progress).
	ErrParticipantNotFound = errors.New("no such participant in the meeting")
	// ErrNoVideo: the participant publishes no camera video.
	ErrNoVideo = errors.New("the participant publishes no camera video")
)

// tap is one viewer outside the meeting of one layer of an upTrack: the
// top layer the publisher sends well, or the lowest.
//
// The tap follows that layer as the publisher's sending changes: a
// browser short of uplink or CPU stops its top layer, or sends it at a
// trickle of frames, and a tile fed from it would freeze. Each second
// the tap looks again (upTrack.tapLayer, the allocator's test of a
// layer), and moves at the new layer's next keyframe, which it asks for.
// The source numbers its packets itself and carries its timestamps on
// from the last (Source.Start), so the wall's viewers see one stream.
//
// The source numbers them in the order they are written, and its viewers
// too: a packet the publisher sent again (a NACK's answer, tens of
// milliseconds late) would land inside a later frame, and the browser,
// seeing no gap, decode garbage or nothing and ask for keyframe after
// keyframe. So the tap puts its layer's packets back into order first
// (order), waiting up to tapReorderWait for a missing one; one that never
// comes breaks its frame and those after, and the tap feeds nothing more
// until the layer's next keyframe, which it asks for.
type tap struct {
	top   bool // the top layer ("main"), else the lowest ("sub")
	codec string
	log   *slog.Logger // with the room, identity and stream
	src   *source.Source
	// askKeyframe asks the publisher for a keyframe of a layer
	// (upTrack.requestKeyframe).
	askKeyframe func(layer int)
	done        chan struct{}
	once        sync.Once

	// mu orders the writes of the layers' readers (a goroutine each) and
	// the moves. layer is the layer fed to the source; target the layer
	// to move to at its next keyframe (layer when staying). They change
	// with mu held, and are read without it to pass over the packets of
	// the other layers.
	mu            sync.Mutex
	layer, target atomic.Int32

	// Guarded by mu: the layer's packets in order, the packet pushed and
	// the one written (kept, so none is allocated per packet), and a
	// loss's wait for a keyframe.
	order   *reorder.Buffer[tapPacket]
	in      tapPacket
	out     rtp.Packet
	needKey bool // a packet never came: nothing until the next keyframe
	askKey  bool // and that keyframe is to be asked for
	lost    uint64
}

// tapPacket is a packet a tap holds until those before it have come: the
// header fields a source's viewers are sent (not the publisher's
// extensions, whose ids are the publisher's connection's) and its payload.
type tapPacket struct {
	seq         uint16
	ts, ssrc    uint32
	pt          uint8
	marker, key bool
	payload     []byte
}

func copyTapPacket(dst, src *tapPacket) {
	payload := append(dst.payload[:0], src.payload...)
	*dst = *src
	dst.payload = payload
}

// Reordering of a tap: the packets held (a keyframe of a 720p layer is
// some 70), and the wait for a missing one: a retransmission comes a
// round trip and the publisher's sending after the NACK, which goes out
// a few milliseconds after the gap is seen.
const (
	tapReorderWindow = 256
	tapReorderWait   = 200 * time.Millisecond
)

// tapKeyframeEvery is how often a tap asks the publisher for a keyframe: a
// browser's encoder makes one mostly when asked, and the source keeps the
// group of pictures since the last, which a new or recovering viewer
// starts from. Every 2 s keeps that short, as a camera's would be.
const tapKeyframeEvery = 2 * time.Second

// tapFollowEvery is how often a tap looks at which layer to take: the
// room's stats tick, which measures the layers' frame rates.
const tapFollowEvery = time.Second

// write feeds p, read from layer, to the source if it is the tap's layer;
// at the target layer's keyframe (key) the tap moves to it.
func (t *tap) write(layer int, p *rtp.Packet, key bool) {
	l := int32(layer)
	if l != t.layer.Load() && (!key || l != t.target.Load()) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case l == t.layer.Load():
	case l == t.target.Load() && key:
		t.log.Info("meeting wall tap moved to another layer", "from", layerNames[t.layer.Load()], "to", layerNames[l])
		t.order.Restart() // what the old layer had held goes first
		t.layer.Store(l)
		t.needKey, t.askKey = false, false
		// Another layer's timestamps: the source carries on from its
		// last, as for a camera that came back.
		t.src.Start(t.codec, nil)
	default:
		return
	}
	t.in = tapPacket{seq: p.SequenceNumber, ts: p.Timestamp, ssrc: p.SSRC, pt: p.PayloadType, marker: p.Marker, key: key, payload: p.Payload}
	t.order.Push(time.Now(), p.SequenceNumber, p.SSRC, &t.in)
	t.in.payload = nil
	if t.askKey {
		t.askKey = false
		t.askKeyframe(layer)
	}
}

// emit writes a packet, in order, to the source; mu held.
func (t *tap) emit(p *tapPacket) {
	if t.needKey {
		if !p.key {
			return
		}
		t.needKey = false
	}
	t.out.Header = rtp.Header{Version: 2, PayloadType: p.pt, SequenceNumber: p.seq, Timestamp: p.ts, SSRC: p.ssrc, Marker: p.marker}
	t.out.Payload = p.payload
	t.src.WriteRTP(&t.out)
	t.out.Payload = nil
}

// lose: n packets of the layer never came (0: its sequence began anew, as
// at a move, which starts at a keyframe); mu held.
func (t *tap) lose(n int) {
	if n > 0 {
		t.lost += uint64(n)
		t.needKey, t.askKey = true, true
	}
}

// layers is the tap's layer and target.
func (t *tap) layers() (layer, target int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return int(t.layer.Load()), int(t.target.Load())
}

// follow sets the tap's target to the layer it should take now, and asks
// for that layer's keyframe while the tap has not moved to it.
func (t *tap) follow(u *upTrack) {
	want := u.tapLayer(t.top)
	t.mu.Lock()
	if want >= 0 {
		t.target.Store(int32(want))
	}
	layer, target := t.layer.Load(), t.target.Load()
	t.mu.Unlock()
	if target != layer {
		u.firstKeyframe(int(target))
	}
}

// end stops the tap's keyframe requests and its source, once.
func (t *tap) end() {
	t.once.Do(func() {
		close(t.done)
		t.src.Close()
		t.mu.Lock()
		lost := t.lost
		t.mu.Unlock()
		if lost > 0 {
			t.log.Info("meeting wall tap ended", "packets_lost", lost)
		}
	})
}

// Tap returns a source fed with identity's camera video in room: the top
// layer the participant sends well for "main", the lowest for "sub",
// followed as the participant's sending changes (see tap). The publisher
// is asked for a keyframe so that the source's viewers start at once. release ends the tap (and the source); the source ends by itself
// when the participant stops publishing or leaves.
func (s *SFU) Tap(room, identity, stream string) (src *source.Source, release func(), err error) {
	s.mu.Lock()
	r := s.live[room]
	s.mu.Unlock()
	if r == nil {
		return nil, nil, ErrParticipantNotFound
	}
	r.mu.Lock()
	p := r.participants[identity]
	r.mu.Unlock()
	if p == nil {
		return nil, nil, ErrParticipantNotFound
	}
	var u *upTrack
	p.mu.Lock()
	for t := range p.published {
		if t.kind == webrtc.RTPCodecTypeVideo && t.source == "camera" {
			u = t
		}
	}
	p.mu.Unlock()
	if u == nil {
		return nil, nil, ErrNoVideo
	}
	codec := ""
	switch mime := strings.ToUpper(u.codec.MimeType); {
	case strings.HasSuffix(mime, "/VP8"):
		codec = source.VP8
	case strings.HasSuffix(mime, "/H264"):
		codec = source.H264
	default:
		return nil, nil, ErrNoVideo // VP9, AV1: not forwarded outside a meeting
	}
	layer := u.tapLayer(stream == "main")
	if layer < 0 {
		return nil, nil, ErrNoVideo
	}
	t := &tap{top: stream == "main", codec: codec, askKeyframe: u.requestKeyframe, src: source.New(), done: make(chan struct{}),
		log:   s.log.With("room", room, "identity", identity, "stream", stream),
		order: reorder.New(tapReorderWindow, tapReorderWait, copyTapPacket)}
	t.order.Emit, t.order.Lose = t.emit, t.lose
	t.layer.Store(int32(layer))
	t.target.Store(int32(layer))
	// A viewer's keyframe request (a loss retransmission could not
	// repair) goes to the publisher, throttled by requestKeyframe.
	t.src.RequestKeyframe = func() {
		l, _ := t.layers()
		u.requestKeyframe(l)
	}
	t.src.Start(codec, nil)
	if !u.addTap(t) {
		t.end()
		return nil, nil, ErrNoVideo
	}
	u.requestKeyframe(layer)
	go func() {
		tick := time.NewTicker(tapFollowEvery)
		defer tick.Stop()
		lastAsked := time.Now()
		for {
			select {
			case <-t.done:
				return
			case now := <-tick.C:
				t.follow(u)
				// Not of a layer being left (stopped, or short of
				// CPU or uplink already): follow asks for the next.
				if l, target := t.layers(); l == target && now.Sub(lastAsked) >= tapKeyframeEvery-tapFollowEvery/2 {
					u.requestKeyframe(l)
					lastAsked = now
				}
			}
		}
	}()
	return t.src, func() { u.removeTap(t) }, nil
}

// tapLayer is the layer a tap takes: the highest (top) or lowest the
// publisher is sending, -1 when it sends none.
func (u *upTrack) tapLayer(top bool) int {
	best := -1
	for l := range numLayers {
		// usableLayer: present, sending lately (a browser short of
		// uplink stops its top layers, which stay announced) and not
		// at a fraction of a lower layer's frame rate.
		if !u.usableLayer(l) {
			continue
		}
		u.mu.Lock()
		present := u.layers[l] != nil
		u.mu.Unlock()
		if present && (best < 0 || top) {
			best = l
		}
	}
	return best
}

// addTap and removeTap change the taps; addTap is false on an ended track.
func (u *upTrack) addTap(t *tap) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.ended {
		return false
	}
	old := u.taps.Load()
	var list []*tap
	if old != nil {
		list = slices.Clip(*old)
	}
	u.taps.Store(ptr(append(list, t)))
	return true
}

func (u *upTrack) removeTap(t *tap) {
	u.mu.Lock()
	old := u.taps.Load()
	if old != nil {
		if i := slices.Index(*old, t); i >= 0 {
			u.taps.Store(ptr(slices.Delete(slices.Clone(*old), i, i+1)))
		}
	}
	u.mu.Unlock()
	t.end()
}

// closeTaps ends every tap: the track ended.
func (u *upTrack) closeTaps() {
	u.mu.Lock()
	old := u.taps.Swap(nil)
	u.mu.Unlock()
	if old != nil {
		for _, t := range *old {
			t.end()
		}
	}
}

// ParticipantInfo is who is in a room in progress, as the console lists
// them for its wall.
type ParticipantInfo struct {
	Identity string `json:"identity"`
	Name     string `json:"name"`
	Role     string `json:"role"`
	// Video says whether they publish camera video (a wall tile can show
	// them).
	Video bool `json:"video"`
}

// RoomParticipants lists who is in room now, by identity; none when the
// room is not in progress.
func (s *SFU) RoomParticipants(room string) []ParticipantInfo {
	s.mu.Lock()
	r := s.live[room]
	s.mu.Unlock()
	if r == nil {
		return []ParticipantInfo{}
	}
	out := []ParticipantInfo{}
	for _, p := range r.snapshot() {
		info := ParticipantInfo{Identity: p.identity, Name: p.name, Role: p.role}
		p.mu.Lock()
		for u := range p.published {
			if u.kind == webrtc.RTPCodecTypeVideo && u.source == "camera" {
				info.Video = true
			}
		}
		p.mu.Unlock()
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b ParticipantInfo) int { return strings.Compare(a.Identity, b.Identity) })
	return out
}
