package meeting

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/lookout-cc/lookout/sfu/reorder"
	"github.com/lookout-cc/lookout/sfu/source"
)

// A participant's camera video taken out of the meeting for a wall tile:
// the top layer for main, the lowest for sub, as VP8 sources that start
// from a keyframe; unknown rooms, participants and participants without
// video are refused; a tap ends when released, and when the participant
// leaves.
func TestTapTakesAParticipantsVideoOut(t *testing.T) {
	e := newEnv(t)
	a := e.join("alice", hostRights)
	for _, tc := range []struct {
		room, identity string
		want           error
	}{
		{"nope", "alice", ErrParticipantNotFound},
		{"r1", "bob", ErrParticipantNotFound},
		{"r1", "alice", ErrNoVideo}, // not publishing yet
	} {
		if _, _, err := e.sfu.Tap(tc.room, tc.identity, "main"); !errors.Is(err, tc.want) {
			t.Errorf("Tap(%s, %s): %v, want %v", tc.room, tc.identity, err, tc.want)
		}
	}

	a.publish(true)
	var main, sub *source.Source
	var releaseMain, releaseSub func()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		main, releaseMain, err = e.sfu.Tap("r1", "alice", "main")
		if err == nil {
			// Every layer seen, so that main and sub differ.
			if e.layersOf("alice") == numLayers {
				break
			}
			releaseMain()
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tap of alice's video: %v (layers %d)", err, e.layersOf("alice"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	sub, releaseSub, err := e.sfu.Tap("r1", "alice", "sub")
	if err != nil {
		t.Fatal(err)
	}
	defer releaseSub()
	if main.Codec() != source.VP8 || sub.Codec() != source.VP8 {
		t.Fatalf("codecs %q %q", main.Codec(), sub.Codec())
	}

	type count struct {
		packets, keyframes atomic.Int64
		bytes              atomic.Int64
	}
	watch := func(src *source.Source) (*count, *source.Viewer) {
		c := &count{}
		v, err := src.AddViewer(func(p *rtp.Packet) error {
			c.packets.Add(1)
			c.bytes.Add(int64(len(p.Payload)))
			if source.IsVP8Keyframe(p.Payload) {
				c.keyframes.Add(1)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return c, v
	}
	cm, vm := watch(main)
	cs, vs := watch(sub)
	waitUntil := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		for end := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("%s within %s", what, d)
			}
		}
	}
	waitUntil("a keyframe and a second of video on both taps", 10*time.Second, func() bool {
		return cm.keyframes.Load() >= 1 && cs.keyframes.Load() >= 1 && cm.packets.Load() > 60 && cs.packets.Load() > 30
	})
	// The test publisher sends 1.2 Mbit/s on the top layer and 150 kbit/s
	// on the lowest.
	if m, s := cm.bytes.Load(), cs.bytes.Load(); m < 3*s {
		t.Errorf("main took %d bytes, sub %d: not the top and lowest layers", m, s)
	}

	// While tapped, the publisher is asked for a keyframe every
	// tapKeyframeEvery, so the sources' cached group of pictures stays
	// short.
	plis := e.plisOf("alice")
	waitUntil("keyframe requests while tapped", 3*tapKeyframeEvery, func() bool { return e.plisOf("alice") >= plis+2 })

	releaseMain()
	waitUntil("the released tap's viewer ends", 5*time.Second, func() bool {
		select {
		case <-vm.Done():
			return true
		default:
			return false
		}
	})
	a.close()
	waitUntil("the other tap ends when alice leaves", 10*time.Second, func() bool {
		select {
		case <-vs.Done():
			return true
		default:
			return false
		}
	})
}

// participant finds identity in room r1 now, nil when not there.
func (e *env) participant(identity string) *participant {
	e.sfu.mu.Lock()
	r := e.sfu.live["r1"]
	e.sfu.mu.Unlock()
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.participants[identity]
}

// layersOf counts the layers of identity's camera video the SFU reads.
func (e *env) layersOf(identity string) int {
	p := e.participant(identity)
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for u := range p.published {
		if u.source != "camera" {
			continue
		}
		u.mu.Lock()
		for _, l := range u.layers {
			if l != nil {
				n++
			}
		}
		u.mu.Unlock()
	}
	return n
}

// plisOf is how many keyframe requests the SFU sent identity.
func (e *env) plisOf(identity string) uint64 {
	if p := e.participant(identity); p != nil {
		return p.plisSent.Load()
	}
	return 0
}

// A tap follows its layer: when the top layer stops, or falls to a
// trickle of frames, the main tap moves down to the next at its
// keyframe, and goes back up when the top layer recovers. The wall's
// viewer sees one stream throughout: frames going on after each move,
// and timestamps that never go back although each layer has its own.
func TestTapFollowsItsLayer(t *testing.T) {
	e := newEnv(t)
	a := e.join("alice", hostRights)
	a.ownTimestamps = true
	pa := a.publish(true)
	waitUntil(t, 10*time.Second, func() bool { return e.layersOf("alice") == numLayers }, func() string {
		return fmt.Sprintf("%d of alice's layers seen", e.layersOf("alice"))
	})
	main, release, err := e.sfu.Tap("r1", "alice", "main")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	tp := e.tapOf("alice")
	if l, _ := tp.layers(); l != layerHigh {
		t.Fatalf("main tap on layer %d, want high", l)
	}

	var packets atomic.Int64
	var backwards atomic.Int64
	var lastTS uint32
	var seen bool
	if _, err := main.AddViewer(func(p *rtp.Packet) error {
		if seen && int32(p.Timestamp-lastTS) < 0 {
			backwards.Add(1)
		}
		lastTS, seen = p.Timestamp, true
		packets.Add(1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitFor := func(what string, want int) {
		t.Helper()
		waitUntil(t, 10*time.Second, func() bool { l, _ := tp.layers(); return l == want }, func() string {
			l, target := tp.layers()
			return fmt.Sprintf("%s: the tap on layer %d (target %d) after 10s, want %d", what, l, target, want)
		})
		// Frames go on from the new layer: the medium layer sends 500
		// kbit/s, two packets a frame.
		from := packets.Load()
		waitUntil(t, 5*time.Second, func() bool { return packets.Load() >= from+30 }, func() string {
			return fmt.Sprintf("%s: %d packets on the wall in 5s after the move", what, packets.Load()-from)
		})
	}

	high := pa.rates[layerHigh].Load()
	pa.rates[layerHigh].Store(0) // the browser stops its top layer
	waitFor("high stopped", layerMedium)
	pa.rates[layerHigh].Store(high)
	waitFor("high back", layerHigh)
	pa.skip[layerHigh].Store(14) // two frames a second
	waitFor("high at a trickle", layerMedium)
	if n := backwards.Load(); n > 0 {
		t.Errorf("%d packets on the wall went back in time", n)
	}
}

// tapOf is the one tap of identity's camera video.
func (e *env) tapOf(identity string) *tap {
	e.t.Helper()
	p := e.participant(identity)
	if p == nil {
		e.t.Fatalf("%s not in the room", identity)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for u := range p.published {
		if taps := u.taps.Load(); u.source == "camera" && taps != nil && len(*taps) == 1 {
			return (*taps)[0]
		}
	}
	e.t.Fatalf("no single tap of %s's camera", identity)
	return nil
}

// A tap puts its layer's packets back into order before the source, which
// numbers them as they come: a retransmission that arrives late takes its
// place in its frame, a duplicate is dropped; a packet that never comes
// breaks its frame and those after it, so the tap feeds nothing until
// the layer's next keyframe, and asks for it.
func TestTapPutsItsLayersPacketsInOrder(t *testing.T) {
	var asked []int
	tp := &tap{codec: source.VP8, src: source.New(), done: make(chan struct{}), log: slog.New(slog.DiscardHandler),
		askKeyframe: func(layer int) { asked = append(asked, layer) },
		order:       reorder.New(tapReorderWindow, tapReorderWait, copyTapPacket)}
	tp.order.Emit, tp.order.Lose = tp.emit, tp.lose
	tp.src.Start(source.VP8, nil)
	defer tp.end()
	var mu sync.Mutex
	var got []byte // the packets' ids, in the order the wall's viewer got them
	if _, err := tp.src.AddViewer(func(p *rtp.Packet) error {
		mu.Lock()
		got = append(got, p.Payload[2])
		mu.Unlock()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	send := func(seq uint16, key bool) {
		payload := []byte{0x10, 0x01, byte(seq)} // the start of a frame: each packet one here
		if key {
			payload[1] = 0x00
		}
		tp.write(layerLow, &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, SSRC: 5, Marker: true}, Payload: payload}, key)
	}
	send(1, true)
	send(2, false)
	send(4, false) // 3 is late: a retransmission
	send(3, false)
	send(5, false)
	send(5, false) // and again
	// 6 never comes: 7 and 8 wait for it until a packet a window ahead
	// gives it up; they belong to broken frames, and the keyframe 9 starts
	// the picture again.
	send(7, false)
	send(8, false)
	send(6+tapReorderWindow, false)
	send(9, true)
	want := []byte{1, 2, 3, 4, 5, 9}
	waitUntil(t, 5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= len(want) }, func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("the viewer got %v, want %v", got, want)
	})
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("the viewer got %v, want %v", got, want)
	}
	if !slices.Equal(asked, []int{layerLow}) {
		t.Fatalf("keyframes asked of layers %v, want the low layer once", asked)
	}
	if tp.lost != 1 {
		t.Fatalf("%d packets counted lost, want 1", tp.lost)
	}
}
