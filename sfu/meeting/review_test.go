package meeting

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/lookout-cc/lookout/console/auth"
	"github.com/lookout-cc/lookout/sfu/signal"
)

// A participant without the publish right gets nothing through by an
// offer whose media sections the offer check skips (port 0, bundle-only):
// the track is refused where it arrives.
func TestNoPublishingWithoutTheRight(t *testing.T) {
	e := newEnv(t)
	member := e.join("member", memberRights)
	viewer := e.join("viewer", auth.RoomRights{Subscribe: true})

	pc, err := viewer.newPC(nil)
	if err != nil {
		t.Fatal(err)
	}
	viewer.mu.Lock()
	viewer.pub = pc
	viewer.mu.Unlock()
	pc.OnICECandidate(func(ic *webrtc.ICECandidate) { viewer.sendCandidate("publisher", ic) })
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "sneak", "sneak")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err == nil {
		err = pc.SetLocalDescription(offer)
	}
	if err != nil {
		t.Fatal(err)
	}
	sdp := strings.Replace(offer.SDP, "m=audio 9 ", "m=audio 0 ", 1)
	sdp = strings.Replace(sdp, "a=sendrecv", "a=sendrecv\r\na=bundle-only", 1)
	viewer.send(map[string]any{"type": "offer", "sdp": sdp})
	if ans := viewer.wait("answer or refusal", func(m signal.ServerMessage) bool {
		return m.Type == "answer" || m.Type == signal.TypeError
	}); ans.Type == "answer" {
		_ = pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: ans.SDP})
		stop := time.After(3 * time.Second)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
	send:
		for {
			select {
			case <-stop:
				break send
			case <-tick.C:
				_ = track.WriteSample(mediaSample(20 * time.Millisecond))
			}
		}
	}
	if member.has(func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeTrackPublished && m.Identity == "viewer"
	}) {
		t.Fatal("a viewer published a track")
	}
}

// Tracks that come and go do not make the subscriber connection's SDP grow:
// a removed track's transceiver is taken again.
func TestSubscriberTransceiversAreReused(t *testing.T) {
	e := newEnv(t)
	watcher := e.join("watcher", memberRights)
	for i := range 4 {
		c := e.join("guest", memberRights)
		pub := c.publish(false)
		watcher.waitPackets("guest-camera", int64(30*(i+1)), 10*time.Second)
		mark := watcher.mark()
		pub.close()
		c.send(map[string]any{"type": "leave"})
		watcher.wait("guest left", func(m signal.ServerMessage) bool {
			return m.Type == signal.TypeParticipantLeft && m.Identity == "guest" && m.Reason == signal.LeftLeft
		})
		c.close()
		// Each guest's departure is a renegotiation: its offer (kept
		// once answered) before the next guest's tracks come.
		watcher.waitSince(mark, "the renegotiation after the guest left", 10*time.Second, isType(signal.TypeOffer))
	}
	var last string
	watcher.mu.Lock()
	for _, m := range watcher.msgs {
		if m.Type == signal.TypeOffer {
			last = m.SDP
		}
	}
	watcher.mu.Unlock()
	if n := strings.Count(last, "\nm="); n > 4 {
		t.Fatalf("after four guests the subscriber offer has %d media sections:\n%s", n, last)
	}
	e.sfu.mu.Lock()
	room := e.sfu.live["r1"]
	e.sfu.mu.Unlock()
	room.mu.Lock()
	w := room.participants["watcher"]
	room.mu.Unlock()
	// The guest's tracks end apart (camera, microphone), each its own
	// renegotiation: the last may come after the offer waited for.
	waitUntil(t, 5*time.Second, func() bool { return len(w.downTracks()) == 0 }, func() string {
		return fmt.Sprintf("%d subscriptions left after everyone else left", len(w.downTracks()))
	})
}

// A camera started after the first seconds of a meeting is not paused for
// a lack of measurements, and a layer the publisher stops sending is left
// for the one below.
func TestLateCameraAndDroppedLayer(t *testing.T) {
	watcher, pa := lateCamera(t)
	watcher.waitFor("medium layer", 20*time.Second, aliceAt("medium"))
	if watcher.has(func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeLayerChanged && m.Paused != nil && *m.Paused
	}) {
		t.Fatal("the late camera was paused")
	}
	watcher.waitFor("high layer", 20*time.Second, aliceAt("high"))
	// Alice's browser stops sending its high layer.
	mark := watcher.mark()
	pa.rates[layerHigh].Store(0)
	watcher.waitSince(mark, "down from high", 10*time.Second, aliceAt("medium"))
	n := watcher.packets("alice-camera")
	watcher.waitPackets("alice-camera", n+30, 5*time.Second)
}

// TestChoppyLayerLeftForASmoothOne: a publisher whose high layer falls to
// two frames a second (its encoder short of CPU) while the medium one
// goes on at thirty: the watcher is moved down to medium, whose picture
// moves, though the choppy layer's small bitrate fits its budget.
func TestChoppyLayerLeftForASmoothOne(t *testing.T) {
	watcher, pa := lateCamera(t)
	watcher.waitFor("high layer", 30*time.Second, aliceAt("high"))
	mark := watcher.mark()
	pa.skip[layerHigh].Store(14)
	watcher.waitSince(mark, "down from the choppy high layer", 15*time.Second, aliceAt("medium"))
	// And it stays there while high is choppy: no step back up.
	mark = watcher.mark()
	time.Sleep(6 * time.Second)
	if watcher.hasSince(mark, aliceAt("high")) {
		t.Fatal("the watcher went back up to the choppy high layer")
	}
	// The encoder recovers: the watcher goes up again.
	pa.skip[layerHigh].Store(0)
	watcher.waitSince(mark, "back up to high", 30*time.Second, aliceAt("high"))
}

// lateCamera: a watcher and alice join, and alice starts her simulcast
// camera once past any grace of a new participant.
func lateCamera(t *testing.T) (watcher *client, alice *publisher) {
	e := newEnv(t)
	watcher = e.join("watcher", memberRights)
	a := e.join("alice", memberRights)
	time.Sleep(4 * time.Second)
	return watcher, a.publish(true)
}

// aliceAt matches the message that moves the watcher to one of alice's
// layers.
func aliceAt(layer string) func(signal.ServerMessage) bool {
	return func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeLayerChanged && m.Identity == "alice" && m.Layer == layer
	}
}
