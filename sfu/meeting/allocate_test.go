package meeting

import (
	"log/slog"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookout-cc/lookout/sfu/bwe"
)

// fakeBWE is an estimator that says what the test sets.
type fakeBWE struct {
	estimate int64
	loss     float64
}

func (f *fakeBWE) Sent(int, int64) uint16                 { return 0 }
func (f *fakeBWE) Feedback(*rtcp.TransportLayerCC, int64) {}
func (f *fakeBWE) FeedbackRaw([]byte, int64) error        { return nil }
func (f *fakeBWE) State() bwe.State                       { return bwe.State{Estimate: f.estimate, Loss: f.loss} }

// allocFixture is a room with a new simulcast camera track, all its layers
// arriving, and a subscriber whose link est describes, not yet
// subscribed.
func allocFixture(t *testing.T, est linkEstimator) (*Room, *upTrack, *participant) {
	t.Helper()
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	r := &Room{id: "r", sfu: &SFU{log: slog.New(slog.DiscardHandler), metrics: m}, participants: map[string]*participant{}}
	pub := &participant{identity: "pub"}
	u := &upTrack{pub: pub, id: "pub-camera", kind: webrtc.RTPCodecTypeVideo, simulcast: true, source: "camera",
		codec: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, createdAt: time.Now()}
	u.downs.Store(&[]*downTrack{})
	for l := range numLayers {
		u.layers[l] = &webrtc.TrackRemote{}
		u.lastPacket[l].Store(nanotime())
	}
	sub := &participant{room: r, identity: "sub", bwe: est, downs: map[*upTrack]*downTrack{},
		conn: &conn{out: make(chan []byte, 64), closing: make(chan struct{})}}
	return r, u, sub
}

// A subscriber's first feedback may count as lost what was sent before
// its browser could decrypt: a link is not judged congested (and its
// video not paused) in its first startGrace, and is after; nor in the
// startGrace after its path moved.
func TestNoCongestionInTheFirstSeconds(t *testing.T) {
	r, u, sub := allocFixture(t, &fakeBWE{estimate: 600_000, loss: 0.64})
	d := newDownTrack(u, sub)
	d.target = layerLow
	sub.downs[u] = d

	r.allocate(sub) // the first allocation: the grace starts
	if _, target := d.layers(); target == layerOff {
		t.Fatal("paused at once on the first feedback's loss")
	}
	// Past the grace, and the settle of any step the first took, the
	// same loss is congestion: one step down.
	sub.alloc.started = sub.alloc.started.Add(-startGrace)
	sub.alloc.lastChange = sub.alloc.lastChange.Add(-settle)
	before := d.wantLayer()
	r.allocate(sub)
	if after := d.wantLayer(); after >= before {
		t.Fatalf("not stepped down after the grace: %d -> %d", before, after)
	}

	// The link's path moves (an ICE restart): the packets lost meanwhile
	// are not congestion, for another grace.
	sub.alloc.lastChange = sub.alloc.lastChange.Add(-downSettle)
	sub.alloc.lastDown = sub.alloc.lastDown.Add(-downSettle)
	sub.linkMoved.Store(true)
	d.mu.Lock()
	d.target = layerMedium
	d.mu.Unlock()
	before = d.wantLayer()
	r.allocate(sub)
	if after := d.wantLayer(); after < before {
		t.Fatalf("stepped down on the loss of an ICE restart: %d -> %d", before, after)
	}
	sub.alloc.started = sub.alloc.started.Add(-startGrace)
	sub.alloc.lastChange = sub.alloc.lastChange.Add(-downSettle)
	sub.alloc.lastDown = sub.alloc.lastDown.Add(-downSettle)
	r.allocate(sub)
	if after := d.wantLayer(); after >= before {
		t.Fatalf("not stepped down after the restart's grace: %d -> %d", before, after)
	}
}

// A step up goes only to a layer a stats tick saw running: in a new
// track's first seconds every layer counts as sent, and a browser short
// of bandwidth sends one frame on its upper layers and stops. A paused
// video comes back on its low layer without waiting for a tick.
func TestStepUpOnlyToARunningLayer(t *testing.T) {
	r, u, sub := allocFixture(t, &fakeBWE{estimate: 5_000_000})
	d := newDownTrack(u, sub)
	d.target = layerOff
	sub.downs[u] = d
	// allocate runs the allocator as the room's tick would, the
	// subscriber's last change past its settle and up wait.
	allocate := func() int {
		sub.alloc.lastChange = sub.alloc.lastChange.Add(-upWaitMax)
		r.allocate(sub)
		return d.wantLayer()
	}
	for i, step := range []struct {
		fps  [numLayers]int64 // smoothed, hundredths of a frame a second
		want int
	}{
		{[numLayers]int64{0, 0, 0}, layerLow},            // paused: back on low, no tick yet
		{[numLayers]int64{0, 0, 0}, layerLow},            // no tick yet: no step up
		{[numLayers]int64{1800, 100, 100}, layerLow},     // one frame each above: not running
		{[numLayers]int64{1800, 1700, 100}, layerMedium}, // medium runs
		{[numLayers]int64{1800, 1700, 100}, layerMedium}, // high does not
		{[numLayers]int64{1800, 1700, 1600}, layerHigh},
	} {
		for l, fps := range step.fps {
			u.layerFPS[l].Store(fps)
		}
		if got := allocate(); got != step.want {
			t.Fatalf("step %d (layers at %v hundredths of a frame a second): layer %d, want %d", i, step.fps, got, step.want)
		}
	}
}

func TestClampLayer(t *testing.T) {
	all := [numLayers]bool{true, true, true}
	noLow := [numLayers]bool{false, true, true}
	highOnly := [numLayers]bool{false, false, true}
	for _, tc := range []struct {
		name    string
		has     [numLayers]bool
		want, l int
		out     int
	}{
		{"within", all, layerHigh, layerMedium, layerMedium},
		{"above what is wanted", all, layerMedium, layerHigh, layerMedium},
		{"a layer not sent: the next one down", [numLayers]bool{true, false, true}, layerHigh, layerMedium, layerLow},
		{"none sent at or under: the lowest sent above", noLow, layerHigh, layerLow, layerMedium},
		{"only high sent", highOnly, layerHigh, layerLow, layerHigh},
		{"only high sent, medium wanted", highOnly, layerMedium, layerLow, layerOff},
		{"paused stays paused", all, layerHigh, layerOff, layerOff},
		{"nothing wanted", all, layerOff, layerLow, layerOff},
	} {
		if got := clampLayer(allocItem{has: tc.has, want: tc.want}, tc.l); got != tc.out {
			t.Errorf("%s: clampLayer(%d) = %d, want %d", tc.name, tc.l, got, tc.out)
		}
	}
}

// A new simulcast track's layers count as sent until their packets say,
// so that a subscriber starts on the low one whichever layer came first.
func TestNewSimulcastTrackStartsLow(t *testing.T) {
	u := &upTrack{kind: webrtc.RTPCodecTypeVideo, simulcast: true, createdAt: time.Now()}
	u.layers[layerHigh] = &webrtc.TrackRemote{}
	u.lastPacket[layerHigh].Store(nanotime())
	if l := u.lowestLayer(); l != layerLow {
		t.Fatalf("a new track with only its high layer yet: starts on %d", l)
	}
	u.createdAt = time.Now().Add(-newTrackGrace)
	if l := u.lowestLayer(); l != layerHigh {
		t.Fatalf("an older track that sends only its high layer: starts on %d", l)
	}
}

// A layer sent at under half a smooth lower layer's frame rate is not
// given; it is given again only once a tick sees it at two thirds of that
// rate, so that one whose rate sits on the half line does not come and go
// tick after tick. One slow second takes nothing away. A layer back from
// a pause at full rate is given at its second tick, as without the gap,
// its smoothed rate decayed meanwhile; one new since the last tick waits
// for the tick's measure; a new track's layer not yet arrived is not
// judged before it comes.
func TestTricklingLayerHysteresis(t *testing.T) {
	u := &upTrack{kind: webrtc.RTPCodecTypeVideo, simulcast: true, createdAt: time.Now().Add(-time.Minute)}
	for l := range numLayers {
		u.layers[l] = &webrtc.TrackRemote{}
	}
	for _, l := range []int{layerLow, layerMedium} {
		u.layerFPS[l].Store(3000)
		u.tickFPS[l] = 3000
	}
	for i, step := range []struct {
		tick, smoothed int64 // the high layer's, hundredths of a frame a second
		stopped        bool  // the high layer not sent lately
		noTick         bool  // looked at between ticks
		usable         bool
	}{
		{tick: 3000, smoothed: 3000, usable: true},
		{tick: 1400, smoothed: 2466, usable: true},  // one slow second
		{tick: 1400, smoothed: 1444, usable: false}, // smoothed under half: trickling
		{tick: 1600, smoothed: 1496, usable: false},
		{tick: 1600, smoothed: 1530, usable: false}, // above half, the tick under two thirds: still
		{tick: 1900, smoothed: 1653, usable: false},
		{tick: 2000, smoothed: 1769, usable: true}, // a tick at two thirds: back
		{tick: 1400, smoothed: 1646, usable: true}, // smoothed above half: stays
		{tick: 1400, smoothed: 1400, usable: false},
		// Paused, then back at 30 frames a second: its first tick counts
		// 0.4 s of frames, its smoothed rate climbs from what decayed.
		{tick: 0, smoothed: 933, stopped: true, usable: false},
		{tick: 1200, smoothed: 1022, usable: false},
		{tick: 3000, smoothed: 1681, usable: true},
		// New since the last tick: 0, the smoothed rule's to refuse.
		{tick: 3000, smoothed: 0, noTick: true, usable: false},
	} {
		now := nanotime()
		u.lastPacket[layerLow].Store(now)
		u.lastPacket[layerMedium].Store(now)
		if step.stopped {
			u.lastPacket[layerHigh].Store(now - int64(2*layerSilence))
		} else {
			u.lastPacket[layerHigh].Store(now)
		}
		u.layerFPS[layerHigh].Store(step.smoothed)
		if !step.noTick {
			u.tickFPS[layerHigh] = step.tick
			u.judgeTrickling()
		}
		if got := u.usableLayer(layerHigh); got != step.usable {
			t.Errorf("step %d (high at %d hundredths of a frame a second over the tick, %d smoothed, stopped %v): usable %v, want %v",
				i, step.tick, step.smoothed, step.stopped, got, step.usable)
		}
		if !u.usableLayer(layerMedium) {
			t.Fatalf("step %d: the medium layer, smooth, not usable", i)
		}
	}

	// A new track: its high layer in hasLayer's grace, not arrived. The
	// tick does not judge it; its first tick after it came, part of a
	// second at full rate, is over half, and it is given.
	n := &upTrack{kind: webrtc.RTPCodecTypeVideo, simulcast: true, createdAt: time.Now()}
	n.layers[layerLow] = &webrtc.TrackRemote{}
	n.lastPacket[layerLow].Store(nanotime())
	n.layerFPS[layerLow].Store(3000)
	n.tickFPS[layerLow] = 3000
	n.judgeTrickling()
	if n.trickling[layerHigh].Load() {
		t.Fatal("a layer not arrived yet was judged trickling")
	}
	n.layers[layerHigh] = &webrtc.TrackRemote{}
	n.lastPacket[layerHigh].Store(nanotime())
	n.layerFPS[layerHigh].Store(1800)
	n.tickFPS[layerHigh] = 1800
	n.judgeTrickling()
	if !n.usableLayer(layerHigh) {
		t.Error("a new layer at 18 frames a second over its first, partial tick, beside 30, not given")
	}
}
