package meeting

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/lookout-cc/lookout/sfu/signal"
)

// memRecorder keeps what each recorded source receives.
type memRecorder struct {
	mu      sync.Mutex
	sources map[string]*memSink
}

type memSink struct {
	src RecordedSource

	mu     sync.Mutex
	pkts   []rtp.Header
	closed bool
}

func (m *memRecorder) Open(src RecordedSource) (TrackSink, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := &memSink{src: src}
	m.sources[src.Identity+"-"+src.Source] = s
	return s, nil
}

func (m *memRecorder) sink(key string) *memSink {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sources[key]
}

func (s *memSink) WriteRTP(p *rtp.Packet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		panic("a packet after Close")
	}
	s.pkts = append(s.pkts, p.Header)
}

func (s *memSink) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

func (s *memSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pkts)
}

func (m *memRecorder) waitPackets(t *testing.T, key string, n int) *memSink {
	t.Helper()
	waitUntil(t, 10*time.Second, func() bool { s := m.sink(key); return s != nil && s.count() >= n }, func() string {
		return fmt.Sprintf("%s: fewer than %d packets recorded", key, n)
	})
	return m.sink(key)
}

// A recorded room hands each participant's sources to the recorder, one
// sink per source for the whole recording: when the participant
// reconnects, the sink's stream goes on (same SSRC, sequence numbers
// following on, timestamps advanced by the time that passed), so the gap
// is a gap in its timeline. StopRecording closes the sinks.
func TestRecordingFollowsASourceAcrossReconnects(t *testing.T) {
	e := newEnv(t)
	rec := &memRecorder{sources: map[string]*memSink{}}
	officer := e.join("officer", hostRights)
	officer.publish(false)
	if err := e.sfu.Record("r1", rec); err != nil {
		t.Fatal(err)
	}
	if err := e.sfu.Record("r1", rec); err != ErrRecording {
		t.Fatalf("recording twice: %v", err)
	}
	// Already published when the recording started: recorded too.
	rec.waitPackets(t, "officer-camera", 30)

	res := e.join("resident", memberRights)
	pub := res.publish(false)
	audio := rec.waitPackets(t, "resident-microphone", 50)
	video := rec.waitPackets(t, "resident-camera", 30)
	if audio.src.Kind != "audio" || video.src.Kind != "video" || video.src.ClockRate != 90000 || video.src.Name != "name of resident" {
		t.Fatalf("sources: %+v %+v", audio.src, video.src)
	}

	// The resident's phone drops for a while and comes back.
	pub.close()
	res.close()
	officer.wait("resident left", func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeParticipantLeft && m.Identity == "resident"
	})
	audio.mu.Lock()
	before := len(audio.pkts)
	last := audio.pkts[before-1]
	audio.mu.Unlock()
	// The phone stays away this long: the fault's length, which the
	// timestamps must show, not a wait for something.
	gap := 700 * time.Millisecond
	time.Sleep(gap)
	back := e.join("resident", memberRights)
	back.publish(false)
	rec.waitPackets(t, "resident-microphone", before+50)
	if rec.sink("resident-microphone") != audio {
		t.Fatal("the reconnect opened another sink")
	}
	audio.mu.Lock()
	next := audio.pkts[before]
	ssrcs := map[uint32]bool{}
	for _, h := range audio.pkts {
		ssrcs[h.SSRC] = true
	}
	audio.mu.Unlock()
	if len(ssrcs) != 1 {
		t.Fatalf("the sink saw %d SSRCs", len(ssrcs))
	}
	if next.SequenceNumber != last.SequenceNumber+1 {
		t.Fatalf("sequence %d after %d", next.SequenceNumber, last.SequenceNumber)
	}
	if advanced := time.Duration(next.Timestamp-last.Timestamp) * time.Second / 48000; advanced < gap || advanced > 10*time.Second {
		t.Fatalf("the timestamps advanced %v over a gap of at least %v", advanced, gap)
	}

	e.sfu.StopRecording("r1")
	if e.sfu.Recording("r1") {
		t.Fatal("still recording")
	}
	for _, s := range []*memSink{audio, video, rec.sink("officer-camera")} {
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if !closed {
			t.Fatalf("%s not closed", s.src.Identity+"-"+s.src.Source)
		}
	}
}

// A recording leaves a layer that falls to a trickle of frames for the
// smooth layer below it, at that layer's keyframe, as it leaves one that
// stops, and goes back up once the layer has been sent well again for
// recordUpAfter. The publisher sends keyframes only when asked, as a
// browser does: the recording asks for each it moves at. While the camera
// is muted it asks for none. The sink's stream goes on without a step
// back in time.
func TestRecordingFollowsATricklingLayer(t *testing.T) {
	e := newEnv(t)
	rec := &memRecorder{sources: map[string]*memSink{}}
	a := e.join("alice", hostRights)
	a.ownTimestamps = true
	pa := a.publish(true)
	pa.onlyAskedKeys.Store(true)
	e.sfu.recordUpAfter = 3 * time.Second // before the recording reads it
	if err := e.sfu.Record("r1", rec); err != nil {
		t.Fatal(err)
	}
	video := rec.waitPackets(t, "alice-camera", 30)
	recorded := func() int {
		p := e.participant("alice")
		if p == nil {
			return -1
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		for u := range p.published {
			if rs := u.rec.Load(); u.source == "camera" && rs != nil {
				rs.mu.Lock()
				defer rs.mu.Unlock()
				return rs.layer
			}
		}
		return -1
	}
	waitUntil(t, 10*time.Second, func() bool { return recorded() == layerHigh }, func() string {
		return fmt.Sprintf("the recording on layer %d, not high", recorded())
	})
	trickle := func() {
		t.Helper()
		pa.skip[layerHigh].Store(14) // two frames a second
		waitUntil(t, 10*time.Second, func() bool { return recorded() == layerMedium }, func() string {
			var st string
			if p := e.participant("alice"); p != nil {
				p.mu.Lock()
				for u := range p.published {
					if u.source == "camera" {
						st = fmt.Sprintf("fps %d %d %d, trickling %v %v, high usable %v, %d PLIs", u.layerFPS[0].Load(), u.layerFPS[1].Load(), u.layerFPS[2].Load(),
							u.trickling[1].Load(), u.trickling[2].Load(), u.usableLayer(2), pa.plis.Load())
					}
				}
				p.mu.Unlock()
			}
			return fmt.Sprintf("the recording on layer %d after high fell to a trickle, not medium (%s)", recorded(), st)
		})
	}
	trickle()
	// And stays there while high trickles: nothing asks for high's
	// keyframe, and one would not take it back up.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if l := recorded(); l != layerMedium {
			t.Fatalf("the recording went back to layer %d", l)
		}
	}
	// High sent well again: back up, once it has been for recordUpAfter,
	// at the keyframe the recording asks for.
	pa.skip[layerHigh].Store(0)
	recovered := time.Now()
	waitUntil(t, 15*time.Second, func() bool { return recorded() == layerHigh }, func() string {
		return fmt.Sprintf("the recording on layer %d after high recovered, not high", recorded())
	})
	if waited := time.Since(recovered); waited < e.sfu.recordUpAfter {
		t.Errorf("the recording went back up %v after high recovered, before the %v it must be sent well", waited, e.sfu.recordUpAfter)
	}

	// Down again, then high recovers while the camera is muted: no
	// keyframe is asked for, and the recording stays where it is.
	trickle()
	a.send(map[string]any{"type": "mute", "kind": "video", "muted": true})
	waitUntil(t, 5*time.Second, func() bool {
		p := e.participant("alice")
		if p == nil {
			return false
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		for u := range p.published {
			if u.source == "camera" {
				return u.muted.Load()
			}
		}
		return false
	}, func() string { return "the camera not muted" })
	pa.skip[layerHigh].Store(0)
	// A request deferred by the throttle before the mute may still go
	// out (keyframeInterval); count from after it.
	time.Sleep(keyframeInterval + statsTick)
	plis := pa.plis.Load()
	// Longer than high's wait: no ask for its keyframe, no move.
	for end := time.Now().Add(e.sfu.recordUpAfter + 3*time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if l := recorded(); l != layerMedium {
			t.Fatalf("the muted camera's recording moved to layer %d", l)
		}
	}
	if asked := pa.plis.Load() - plis; asked != 0 {
		t.Errorf("%d keyframes asked of a muted camera", asked)
	}

	from := video.count()
	a.send(map[string]any{"type": "mute", "kind": "video", "muted": false})
	rec.waitPackets(t, "alice-camera", from+60)
	video.mu.Lock()
	defer video.mu.Unlock()
	for i := 1; i < len(video.pkts); i++ {
		if d := int32(video.pkts[i].Timestamp - video.pkts[i-1].Timestamp); d < 0 {
			t.Fatalf("packet %d of the recording went back %d in time", i, -d)
		}
	}
}

// The recording's moves, tick by tick (nextMove: the keyframe it asks
// for): not down on one tick of its layer read low (a new layer's first,
// part of a second), down on the second; up at once when its layer is
// gone and nothing below is sent; up to a recovered layer only after the
// wait, asking recordUpAsks times, then waiting again; nothing muted.
func TestRecordingMoves(t *testing.T) {
	u := &upTrack{kind: webrtc.RTPCodecTypeVideo, simulcast: true, createdAt: time.Now().Add(-time.Minute)}
	send := func(layers ...int) {
		for l := range numLayers {
			u.lastPacket[l].Store(0)
		}
		for _, l := range layers {
			u.layers[l] = &webrtc.TrackRemote{}
			u.lastPacket[l].Store(nanotime())
			u.layerFPS[l].Store(3000)
			u.tickFPS[l] = 3000
		}
	}
	tick := func(fps ...int64) { // the layers' rates over the tick
		for l, f := range fps {
			u.layerFPS[l].Store(f)
			u.tickFPS[l] = f
		}
		u.judgeTrickling()
	}
	const after = 10 * time.Second
	at := func(s int) int64 { return int64(time.Duration(s) * time.Second) }
	// Past the first seconds' grace, in which takes moves up freely.
	since := -at(60)
	recording := func(layer int) *recSource {
		return &recSource{video: true, cur: u, layer: layer, since: since, upTo: -1, downTo: -1}
	}
	rs := recording(layerHigh)

	send(layerLow, layerMedium, layerHigh)
	tick(3000, 3000, 1200) // high's first tick, 0.4 s of frames
	if ask := rs.nextMove(u, at(1), after); ask != -1 {
		t.Errorf("after one low tick of its layer the recording asks for layer %d", ask)
	}
	if rs.takes(u, layerMedium, true, at(1)) {
		t.Error("after one low tick of its layer the recording takes medium")
	}
	tick(3000, 3000, 1200) // a second: a trickle
	if ask := rs.nextMove(u, at(2), after); ask != layerMedium {
		t.Errorf("after two low ticks the recording asks for layer %d, not medium", ask)
	}
	if !rs.takes(u, layerMedium, true, at(2)) {
		t.Error("after two low ticks the recording does not take medium's keyframe")
	}
	if rs.takes(u, layerLow, true, at(2)) {
		t.Error("moving down to medium, the recording takes low's keyframe")
	}
	tick(3000, 3000, 3000) // high back before medium's keyframe came
	if ask := rs.nextMove(u, at(3), after); ask != -1 || rs.takes(u, layerMedium, true, at(3)) {
		t.Errorf("with high sent well again the recording still moves down (asks for layer %d)", ask)
	}

	// On medium; medium and low gone, high sent: up at once.
	rs = recording(layerMedium)
	send(layerHigh)
	tick(0, 0, 3000)
	if ask := rs.nextMove(u, at(3), after); ask != layerHigh {
		t.Errorf("with its layer gone and only high sent the recording asks for layer %d", ask)
	}
	if !rs.takes(u, layerHigh, true, at(3)) {
		t.Error("with its layer gone the recording does not take high's keyframe")
	}

	// On medium, high recovered: the wait, five asks, the wait again.
	rs = recording(layerMedium)
	send(layerLow, layerMedium, layerHigh)
	tick(3000, 3000, 3000)
	want := map[int]int{1: -1, 10: -1, 11: layerHigh, 12: layerHigh, 15: layerHigh, 16: -1, 25: -1, 26: layerHigh}
	for s := 1; s <= 26; s++ {
		ask := rs.nextMove(u, at(s), after)
		if w, ok := want[s]; ok && ask != w {
			t.Errorf("%d s after high recovered the recording asks for layer %d, want %d", s-1, ask, w)
		}
		if s == 11 && !rs.takes(u, layerHigh, true, at(s)) {
			t.Error("the recording does not take the keyframe of high it asked for")
		}
		// The keyframe does not come (nothing is written here).
	}

	u.muted.Store(true)
	if ask := rs.nextMove(u, at(27), after); ask != -1 || rs.upTo != -1 {
		t.Errorf("muted, the recording asks for layer %d (up to %d)", ask, rs.upTo)
	}
	u.muted.Store(false)

	// A layer taken in the first seconds, its first tick a fifth of a
	// second of frames (6), its second full (30), through the real
	// measure: the smoothed rate still reads under half at the second
	// tick, the tick's own does not; the recording stays.
	n := &upTrack{kind: webrtc.RTPCodecTypeVideo, simulcast: true, createdAt: time.Now()}
	for _, l := range []int{layerLow, layerMedium} {
		n.layers[l] = &webrtc.TrackRemote{}
	}
	measure := func(frames ...uint64) {
		for l, f := range frames {
			if f > 0 {
				n.layers[l] = &webrtc.TrackRemote{}
				n.lastPacket[l].Store(nanotime())
			}
			n.layerFrames[l].Add(f)
		}
		n.measure(time.Second)
	}
	measure(30, 30, 0)
	rs = &recSource{video: true, cur: n, layer: layerHigh, upTo: -1, downTo: -1}
	for i, frames := range [][]uint64{{30, 30, 6}, {30, 30, 30}, {30, 30, 30}} {
		measure(frames...)
		if ask := rs.nextMove(n, at(i+1), after); ask != -1 {
			t.Errorf("tick %d of a new layer (%d frames): the recording asks for layer %d", i+1, frames[2], ask)
		}
	}
}
