package meeting

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/sfu/rtc"
	"github.com/lookout-cc/lookout/sfu/signal"
)

// A host mutes a participant (their audio stops reaching the others),
// calls on one (spotlight: everyone is told, the participant is asked to
// open their microphone and the server does not open it), and removes
// one, who cannot come back; each step is audited.
func TestHostControls(t *testing.T) {
	e := newEnv(t)
	host := e.join("host", hostRights)
	bob := e.join("bob", memberRights)
	carol := e.join("carol", memberRights)
	pb := bob.publish(false)
	carol.waitPackets("bob-microphone", 25, 10*time.Second)

	host.send(map[string]any{"type": "host", "action": "mute", "identity": "bob", "kind": "audio"})
	for _, c := range []*client{host, bob, carol} {
		c.wait("bob muted", func(m signal.ServerMessage) bool {
			return m.Type == signal.TypeMuteChanged && m.Identity == "bob" && m.Kind == "audio" && *m.Muted && m.By == "host"
		})
	}
	time.Sleep(300 * time.Millisecond) // what was in flight
	before := carol.packets("bob-microphone")
	time.Sleep(500 * time.Millisecond)
	if n := carol.packets("bob-microphone"); n != before {
		t.Fatalf("bob's muted audio still reached carol: %d packets", n-before)
	}
	if carol.packets("bob-camera") == 0 {
		t.Fatal("bob's video stopped too")
	}
	// Bob unmutes himself: his audio flows again.
	bob.send(map[string]any{"type": "mute", "kind": "audio", "muted": false})
	carol.waitPackets("bob-microphone", before+25, 5*time.Second)

	// Roll call: carol is spotlighted and asked to speak.
	host.send(map[string]any{"type": "host", "action": "spotlight", "identity": "carol"})
	bob.wait("spotlight", func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeSpotlight && *m.Spotlight == "carol" && m.By == "host"
	})
	carol.wait("unmute request", func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeUnmuteRequest && m.Kind == "audio" && m.By == "host"
	})
	if bob.has(func(m signal.ServerMessage) bool { return m.Type == signal.TypeUnmuteRequest }) {
		t.Fatal("the unmute request went to someone else")
	}

	// Bob is removed: told, disconnected, and refused when he comes back.
	host.send(map[string]any{"type": "host", "action": "remove", "identity": "bob"})
	bob.wait("removed", func(m signal.ServerMessage) bool { return m.Type == signal.TypeRemoved && m.By == "host" })
	bob.wait("closed", isType("closed"))
	carol.wait("bob left", func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeParticipantLeft && m.Identity == "bob" && m.Reason == signal.LeftRemoved
	})
	pb.close()
	again := e.dial("bob")
	again.send(map[string]any{"type": "join", "token": e.token("bob", memberRights)})
	again.wait("removed", isError("removed"))

	// A host action on someone absent.
	host.send(map[string]any{"type": "host", "action": "mute", "identity": "bob", "kind": "video", "id": "h9"})
	host.wait("no_participant", func(m signal.ServerMessage) bool { return m.Code == "no_participant" && m.ID == "h9" })

	e.audit.mu.Lock()
	got := strings.Join(e.audit.actions, "\n")
	e.audit.mu.Unlock()
	for _, want := range []string{"participant:host meeting.mute room:r1 ok", "participant:host meeting.spotlight room:r1 ok", "participant:host meeting.remove room:r1 ok"} {
		if !strings.Contains(got, want) {
			t.Errorf("audit lacks %q:\n%s", want, got)
		}
	}
}

// A participant that reconnects with the same token takes the place of
// its earlier connection and receives media again; the others see it
// leave (replaced) and come back.
func TestReconnectReplacesTheEarlierConnection(t *testing.T) {
	e := newEnv(t)
	alice := e.join("alice", memberRights)
	alice.publish(false)
	bob := e.join("bob", memberRights)
	bob.waitPackets("alice-camera", 30, 10*time.Second)

	bob2 := e.join("bob", memberRights)
	bob.wait("replaced", func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeParticipantLeft && m.Identity == "bob" && m.Reason == signal.LeftReplaced
	})
	bob.wait("closed", isType("closed"))
	bob2.waitPackets("alice-camera", 30, 10*time.Second)
	if p := e.sfu.Participants()["r1"]; len(p) != 2 {
		t.Fatalf("participants %v", p)
	}
}

// A client may trickle its subscriber connection's candidates before its
// answer reaches the server: they are kept for the answer, not refused,
// and the connection comes up on them.
func TestSubscriberCandidatesBeforeTheAnswer(t *testing.T) {
	e := newEnv(t)
	alice := e.join("alice", memberRights)
	alice.publish(false)
	bob := e.dial("bob")
	bob.candidatesFirst = true
	bob.send(map[string]any{"type": "join", "token": e.token("bob", memberRights)})
	bob.wait("joined", isType(signal.TypeJoined))
	bob.waitPackets("alice-camera", 30, 10*time.Second)
	if bob.has(isType(signal.TypeError)) {
		t.Fatalf("bob was told an error: %+v", bob.wait("error", isType(signal.TypeError)))
	}
}

// pionReceive turns the engine's direct receivers off
// (webrtc.direct_receive: false): publishers' media comes in on pion's
// path.
func pionReceive(p *rtc.Params) { p.DirectReceive = false }

// pionPaths turns the direct senders and receivers off
// (webrtc.direct_send and webrtc.direct_receive false): all media goes
// through pion's paths.
func pionPaths(p *rtc.Params) { p.DirectSend, p.DirectReceive = false, false }

// A subscriber over the shared UDP port gets its media from the SFU's
// direct sender, and its RTCP goes back through it; one over ICE-TCP
// through pion's path, both ways. Both get it all.
func TestDirectSenderOverUDPPionOverTCP(t *testing.T) {
	e := newEnv(t)
	alice := e.join("alice", memberRights)
	alice.publish(false)
	bob := e.join("bob", memberRights)
	carol := e.dial("carol")
	carol.tcpOnly = true
	carol.send(map[string]any{"type": "join", "token": e.token("carol", memberRights)})
	carol.wait("joined", isType(signal.TypeJoined))
	bob.waitPackets("alice-camera", 100, 10*time.Second)
	bob.waitPackets("alice-microphone", 50, 10*time.Second)
	carol.waitPackets("alice-camera", 100, 10*time.Second)
	carol.waitPackets("alice-microphone", 50, 10*time.Second)
	direct := func(identity string) *rtc.DirectSender {
		p := e.participant(identity)
		if p == nil {
			t.Fatalf("no participant %s", identity)
		}
		return p.direct.Load()
	}
	// (The first few may have gone through pion, between the connection
	// coming up and the sender's start.)
	if d := direct("bob"); d == nil || !d.Ready() || d.Packets() < 100 {
		t.Errorf("bob over UDP: direct sender %v", d)
	}
	// bob's client sends feedback every 100 ms, and receiver reports.
	waitUntil(t, 5*time.Second, func() bool { return direct("bob").RTCPTaken() >= 5 },
		func() string {
			return fmt.Sprintf("bob's RTCP taken by the direct sender: %d", direct("bob").RTCPTaken())
		})
	if d := direct("carol"); d == nil || d.Ready() || d.Packets() != 0 || d.RTCPTaken() != 0 {
		t.Errorf("carol over ICE-TCP: direct sender ready %v, %d packets, %d RTCP", d != nil && d.Ready(), d.Packets(), d.RTCPTaken())
	}
	// Each one's feedback reached the estimator, which measured from it
	// what arrived.
	for _, who := range []string{"bob", "carol"} {
		waitUntil(t, 5*time.Second, func() bool { return e.participant(who).bwe.State().Received > 0 },
			func() string { return who + "'s feedback did not reach the estimator" })
	}
}

// A publisher over the shared UDP port has its media taken off the port
// by the SFU's direct receiver, simulcast layers and audio; one over
// ICE-TCP goes through pion's path. Everyone gets both.
func TestDirectReceiverOverUDPPionOverTCP(t *testing.T) {
	e := newEnv(t)
	alice := e.join("alice", memberRights)
	alice.publish(true)
	carol := e.dial("carol")
	carol.tcpOnly = true
	carol.send(map[string]any{"type": "join", "token": e.token("carol", memberRights)})
	carol.wait("joined", isType(signal.TypeJoined))
	carol.publish(false)
	bob := e.join("bob", memberRights)
	for _, track := range []string{"alice-camera", "carol-camera"} {
		bob.waitPackets(track, 100, 10*time.Second)
	}
	for _, track := range []string{"alice-microphone", "carol-microphone"} {
		bob.waitPackets(track, 50, 10*time.Second)
	}
	in := func(identity string) *rtc.DirectReceiver {
		p := e.participant(identity)
		if p == nil {
			t.Fatalf("no participant %s", identity)
		}
		return p.directIn.Load()
	}
	// (The first few may have gone through pion, between the connection
	// coming up and the receiver's start.)
	// Each of her streams: three layers and the audio.
	if r := in("alice"); r == nil || r.Taken() < 150 || r.Decrypting() != 4 {
		t.Errorf("alice over UDP: direct receiver %v", r)
	} else {
		t.Logf("alice over UDP: %d packets taken, %d streams decrypted", r.Taken(), r.Decrypting())
	}
	if r := in("carol"); r == nil || r.Taken() != 0 {
		t.Errorf("carol over ICE-TCP: direct receiver %v", r)
	}
}

// A subscriber connection that moves off the UDP port after its direct
// sender started (to ICE-TCP: rtc's test makes the move) cannot go on: the
// participant is asked to reconnect (1012), and the others are told it
// left.
func TestDirectSenderLostAsksToReconnect(t *testing.T) {
	e := newEnv(t)
	alice := e.join("alice", memberRights)
	alice.publish(false)
	bob := e.join("bob", memberRights)
	bob.waitPackets("alice-camera", 30, 10*time.Second)
	e.participant("bob").directLost()
	if m := bob.wait("closed", isType("closed")); m.Code != "1012" {
		t.Fatalf("bob's signaling closed with %q %q, want 1012", m.Code, m.Message)
	}
	alice.wait("bob left", func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeParticipantLeft && m.Identity == "bob"
	})
	bob2 := e.join("bob", memberRights)
	bob2.waitPackets("alice-camera", 30, 10*time.Second)
}

// A participant whose browser dies: when its signaling connection drops,
// it is removed at once; when only its media goes (the network vanished,
// the WebSocket not yet timed out), it is removed when ICE times out. The
// others are told both times.
func TestParticipantDiesWithoutGoodbye(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the ICE timeout")
	}
	t.Parallel()
	e := newEnv(t)
	alice := e.join("alice", memberRights)

	// The signaling connection drops.
	bob := e.join("bob", memberRights)
	bob.publish(false)
	alice.waitPackets("bob-camera", 30, 10*time.Second)
	bob.close()
	alice.wait("bob left", func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeParticipantLeft && m.Identity == "bob" && m.Reason == signal.LeftDisconnected
	})

	// The media goes silent, the signaling stays up.
	carol := e.dial("carol")
	var cut cutConn
	carol.subFilter = cut.wrap
	carol.send(map[string]any{"type": "join", "token": e.token("carol", memberRights)})
	carol.wait("joined", isType(signal.TypeJoined))
	alice.publish(false)
	carol.waitPackets("alice-camera", 30, 10*time.Second)
	cut.cut()
	began := time.Now()
	alice.waitFor("carol timed out", 30*time.Second, func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeParticipantLeft && m.Identity == "carol" && m.Reason == signal.LeftTimeout
	})
	if took := time.Since(began); took > 25*time.Second {
		t.Fatalf("carol removed after %s", took)
	}
}

// cutConn is a socket that can be cut: from then on it neither sends nor
// receives, like a network that vanished.
type cutConn struct {
	net.PacketConn
	dead chan struct{}
}

func (c *cutConn) wrap(pc net.PacketConn) net.PacketConn {
	c.PacketConn, c.dead = pc, make(chan struct{})
	return c
}

func (c *cutConn) cut() { close(c.dead) }

func (c *cutConn) isDead() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

func (c *cutConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || !c.isDead() {
			return n, addr, err
		}
	}
}

func (c *cutConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.isDead() {
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, addr)
}

// A screen share is a second video track: announced with its source,
// forwarded, and unpublished when the sharer stops it. ICE restarts of both
// connections (a network change) keep the media flowing without a new
// join.
func TestScreenShareAndICERestart(t *testing.T) {
	e := newEnv(t)
	alice := e.join("alice", memberRights)
	pa := alice.publish(false)
	bob := e.join("bob", memberRights)
	bob.waitPackets("alice-camera", 30, 10*time.Second)

	stop := make(chan struct{})
	sender := pa.shareScreen(stop)
	m := bob.wait("screen published", func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeTrackPublished && m.Identity == "alice" && m.Track.Source == signal.SourceScreen
	})
	if m.Track.Kind != "video" {
		t.Fatalf("screen track %+v", m.Track)
	}
	bob.waitPackets("alice-screen", 10, 10*time.Second)
	close(stop)
	alice.mu.Lock()
	pc := alice.pub
	alice.mu.Unlock()
	if err := pc.RemoveTrack(sender); err != nil {
		t.Fatal(err)
	}
	alice.renegotiate(false, nil)
	bob.wait("screen unpublished", func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeTrackUnpublished && m.Identity == "alice" && m.Track.Source == signal.SourceScreen
	})

	// Bob's subscriber connection restarts ICE: a new offer with new
	// credentials, answered, and alice's video goes on.
	first := bob.wait("first offer", isType(signal.TypeOffer))
	mark := bob.mark()
	bob.send(map[string]any{"type": "restart"})
	again := bob.waitSince(mark, "restart offer", 10*time.Second, isType(signal.TypeOffer))
	if ufrag(first.SDP) == "" || ufrag(first.SDP) == ufrag(again.SDP) {
		t.Fatalf("the restart offer kept the ICE credentials %q", ufrag(again.SDP))
	}
	n := bob.packets("alice-camera")
	bob.waitPackets("alice-camera", n+30, 10*time.Second)

	// Alice's publisher connection restarts ICE by her own offer.
	alice.renegotiate(true, nil)
	n = bob.packets("alice-camera")
	bob.waitPackets("alice-camera", n+30, 10*time.Second)
}

func ufrag(sdp string) string {
	for _, line := range strings.Split(sdp, "\r\n") {
		if strings.HasPrefix(line, "a=ice-ufrag:") {
			return strings.TrimPrefix(line, "a=ice-ufrag:")
		}
	}
	return ""
}
