package rtc

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// publisherConn is a direct publisher connection of the engine and the
// pion client that publishes one VP8 track to it.
type publisherConn struct {
	spc, cpc *webrtc.PeerConnection
	in       *DirectReceiver
	track    *webrtc.TrackLocalStaticRTP
	got      chan *rtp.Packet // what the server's track read
	pt       uint8            // the track's payload type
	ssrc     uint32           // and SSRC
}

// publisherSession connects a pion client (over networks) that publishes
// to a direct publisher connection of the engine.
func publisherSession(t *testing.T, e *Engine, networks ...webrtc.NetworkType) publisherConn {
	t.Helper()
	spc, in, err := e.NewDirectPublisherPeerConnection()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { spc.Close() })
	cpc, err := clientAPI(networks...).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cpc.Close() })
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "client")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cpc.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	got := readTracks(spc)
	connected := whenConnected(spc)
	negotiate(t, cpc, spc)
	waitConnected(t, spc, connected)
	// The server, the DTLS server, is connected before the client: the
	// client's track drops what it is given until its sender is bound.
	// Packets from 65000 on are sent until one arrives.
	deadline := time.Now().Add(10 * time.Second)
	var pt uint8
	var ssrc uint32
	for seq := uint16(65000); ; seq++ {
		if time.Now().After(deadline) {
			t.Fatal("no packet reached the server's track within 10 s")
		}
		if err := track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq)}, Payload: []byte{0x10, 0, 0}}); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-got:
			pt, ssrc = p.PayloadType, p.SSRC
		case <-time.After(20 * time.Millisecond):
			continue
		}
		break
	}
	// Any still on their way, until none came for 200 ms.
	for quiet := time.After(200 * time.Millisecond); ; {
		select {
		case <-got:
			quiet = time.After(200 * time.Millisecond)
			continue
		case <-quiet:
		}
		break
	}
	return publisherConn{spc: spc, cpc: cpc, in: in, track: track, got: got, pt: pt, ssrc: ssrc}
}

// sendAndReceive has the client send packets first..first+n-1 (in
// batches, each received before the next is sent, so that no socket
// buffer overflows on a busy machine) and checks that the server's track
// read every one, in order, as sent.
func (s publisherConn) sendAndReceive(t *testing.T, first uint16, n int) {
	t.Helper()
	payload := make([]byte, 900)
	const batch = 20
	deadline := time.After(20 * time.Second)
	for i := 0; i < n; i += batch {
		for k := i; k < min(i+batch, n); k++ {
			payload[0], payload[1] = byte(k>>8), byte(k)
			p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: first + uint16(k), Timestamp: uint32(k) * 3000, Marker: true}, Payload: payload}
			if err := s.track.WriteRTP(p); err != nil {
				t.Fatal(err)
			}
		}
		for k := i; k < min(i+batch, n); k++ {
			select {
			case p := <-s.got:
				if p.SequenceNumber != first+uint16(k) || p.Payload[0] != byte(k>>8) || p.Payload[1] != byte(k) || len(p.Payload) != len(payload) {
					t.Fatalf("packet %d: seq %d, payload %x…, %d bytes", k, p.SequenceNumber, p.Payload[:2], len(p.Payload))
				}
			case <-deadline:
				t.Fatalf("%d of %d packets within 20 s", k, n)
			}
		}
	}
}

// Over the shared UDP port, the direct receiver decrypts the publisher's
// packets and the server's track reads them as pion's path would give
// them: every one, in order, across the sequence numbers' wrap. The
// connection answered as the DTLS server (the receiver has its keys).
func TestDirectReceiverTakesPublisherMedia(t *testing.T) {
	e := newEngine(t, false)
	s := publisherSession(t, e, webrtc.NetworkTypeUDP4)
	var lost atomic.Int32
	if !s.in.Start(s.spc, func() { lost.Add(1) }) {
		t.Fatal("the direct receiver did not start on a UDP connection")
	}
	if !s.in.Start(s.spc, nil) {
		t.Fatal("a second start said otherwise")
	}
	const n = 300
	s.sendAndReceive(t, 65400, n)
	if got := s.in.Taken(); got != n || e.directReceived.Load() != got || s.in.Decrypting() != 1 {
		t.Fatalf("the receiver took %d of %d (the engine counted %d), decrypts %d streams", got, n, e.directReceived.Load(), s.in.Decrypting())
	}
	if lost.Load() != 0 {
		t.Fatal("lost called")
	}
}

// What the receiver refuses: a replay, and a packet that does not
// authenticate with its keys, are dropped (counted); the media goes on.
// After Stop the address is pion's.
func TestDirectReceiverRefuses(t *testing.T) {
	e := newEngine(t, false)
	s := publisherSession(t, e, webrtc.NetworkTypeUDP4)
	if !s.in.Start(s.spc, nil) {
		t.Fatal("not started")
	}
	s.sendAndReceive(t, 65100, 40)
	s.in.mu.Lock()
	remote := s.in.claimed
	s.in.mu.Unlock()
	ssrc := s.ssrc
	if _, ok := (*s.in.intake.streams.Load())[ssrc]; !ok {
		t.Fatal("the track's stream is not taken")
	}
	// The client's keys, as the client derives them.
	cfg := srtp.Config{Profile: s.in.secrets.srtpProfile()}
	if err := cfg.ExtractSessionKeysFromDTLS(&s.in.secrets, false); err != nil {
		t.Fatal(err)
	}
	client, err := srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, cfg.Profile)
	if err != nil {
		t.Fatal(err)
	}
	seal := func(seq uint16) []byte {
		t.Helper()
		plain, err := (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, SSRC: ssrc, PayloadType: s.pt}, Payload: []byte{0x10, 1, 2, 3}}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := client.EncryptRTP(nil, plain, nil)
		if err != nil {
			t.Fatal(err)
		}
		return sealed
	}
	// Sealed with the client's keys, ahead of the stream: taken.
	sealed := seal(65200)
	taken := s.in.Taken()
	if !e.sendQ.take(sealed, remote) || s.in.Taken() != taken+1 {
		t.Fatal("a datagram sealed with the client's keys was not taken")
	}
	select {
	case p := <-s.got:
		if p.SequenceNumber != 65200 {
			t.Fatalf("the track read %d, not the packet taken", p.SequenceNumber)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the packet taken did not reach the track")
	}
	if !e.sendQ.take(sealed, remote) || s.in.Taken() != taken+1 || e.directReceiveRefused.Load() != 1 {
		t.Fatalf("its replay: taken %d, refused %d", s.in.Taken()-taken, e.directReceiveRefused.Load())
	}
	// From another address, or not RTP: not the receiver's.
	elsewhere := netip.AddrPortFrom(remote.Addr(), remote.Port()+1)
	if e.sendQ.take(seal(65201), elsewhere) || e.sendQ.take([]byte{0, 1, 0, 0}, remote) || e.sendQ.take(sealed[:11], remote) {
		t.Fatal("a datagram from another address, a STUN one or a runt was taken")
	}
	forged := seal(65202)
	forged[len(forged)-1] ^= 1
	if !e.sendQ.take(forged, remote) || e.directReceiveRefused.Load() != 2 {
		t.Fatalf("a datagram that does not authenticate was not dropped: refused %d", e.directReceiveRefused.Load())
	}
	select {
	case p := <-s.got:
		t.Fatalf("the track read %d after a forged datagram", p.SequenceNumber)
	case <-time.After(200 * time.Millisecond):
	}
	// The stream is still the receiver's, past the packets sealed here.
	s.sendAndReceive(t, 65300, 40)
	if n := s.in.Taken() - taken - 1; n != 40 {
		t.Fatalf("the receiver took %d of 40 after the forged datagram", n)
	}
	s.in.Stop()
	if claims := *e.sendQ.rtpIntake.Load(); len(claims) != 0 {
		t.Fatalf("still claimed after Stop: %v", claims)
	}
}

// A stream whose sequence numbers wrapped before the receiver took its
// first packet (pion's rollover counter is 1, the receiver guesses 0) does
// not authenticate with the receiver's guess: the stream is given back to
// pion at its first packet, and its media goes on.
func TestDirectReceiverGivesBackAStreamPastItsGuess(t *testing.T) {
	e := newEngine(t, false)
	s := publisherSession(t, e, webrtc.NetworkTypeUDP4) // sent from 65000 on
	if !s.in.Start(s.spc, nil) {
		t.Fatal("not started")
	}
	s.sendAndReceive(t, 1000, 60)
	if _, ok := (*s.in.intake.streams.Load())[s.ssrc]; ok || s.in.Taken() != 0 || e.directReceiveRefused.Load() != 1 {
		t.Fatalf("stream still taken %v, %d taken, %d refused", ok, s.in.Taken(), e.directReceiveRefused.Load())
	}
}

// A connection over ICE-TCP is left to pion: the receiver does not start,
// and the media arrives all the same.
func TestDirectReceiverNotOverTCP(t *testing.T) {
	e := newEngine(t, true)
	s := publisherSession(t, e, webrtc.NetworkTypeTCP4)
	if s.in.Start(s.spc, func() { t.Error("lost called") }) {
		t.Fatal("the direct receiver started on an ICE-TCP connection")
	}
	s.sendAndReceive(t, 65100, 40)
	if s.in.Taken() != 0 {
		t.Fatalf("%d packets taken over ICE-TCP", s.in.Taken())
	}
}

// The receiver follows ICE's selected pair to another address on the UDP
// port. A pair off it gives the streams back to pion, and a UDP pair
// after it takes them again, while pion's contexts can follow them;
// once the receiver has taken more than they can (pionGuessWindow), the
// connection is lost: lost is called once and the receiver takes no more.
func TestDirectReceiverFollowsThePair(t *testing.T) {
	tcp := &webrtc.ICECandidatePair{
		Local:  &webrtc.ICECandidate{Protocol: webrtc.ICEProtocolTCP, Address: "127.0.0.1", Port: 2},
		Remote: &webrtc.ICECandidate{Protocol: webrtc.ICEProtocolTCP, Address: "127.0.0.1", Port: 3},
	}
	udp := func(to netip.AddrPort) *webrtc.ICECandidatePair {
		return &webrtc.ICECandidatePair{
			Local:  &webrtc.ICECandidate{Protocol: webrtc.ICEProtocolUDP, Address: "127.0.0.1", Port: 1},
			Remote: &webrtc.ICECandidate{Protocol: webrtc.ICEProtocolUDP, Address: to.Addr().String(), Port: to.Port()},
		}
	}
	for _, tc := range []struct {
		name     string
		packets  int
		past     bool // the count set past pion's window
		wantLost int32
	}{{"nothing taken", 0, false, 0}, {"packets taken", 20, false, 0}, {"past pion's window", 20, true, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, false)
			s := publisherSession(t, e, webrtc.NetworkTypeUDP4)
			var lost atomic.Int32
			if !s.in.Start(s.spc, func() { lost.Add(1) }) {
				t.Fatal("not started")
			}
			if tc.packets > 0 {
				s.sendAndReceive(t, 65100, tc.packets)
			}
			if tc.past {
				s.in.intake.taken.Store(pionGuessWindow)
			}
			s.in.mu.Lock()
			first := s.in.claimed
			s.in.mu.Unlock()
			to := listenUDP(t, "udp4", "127.0.0.1:0").LocalAddr().(*net.UDPAddr).AddrPort()
			s.in.follow(udp(to))
			if claims := *e.sendQ.rtpIntake.Load(); claims[to] != s.in || claims[first] != nil {
				t.Fatalf("claims %v after the pair moved from %v to %v", claims, first, to)
			}
			s.in.follow(tcp)
			s.in.follow(tcp)
			if lost.Load() != tc.wantLost {
				t.Fatalf("lost called %d times, want %d", lost.Load(), tc.wantLost)
			}
			if claims := *e.sendQ.rtpIntake.Load(); len(claims) != 0 {
				t.Fatalf("still claimed after the move to TCP: %v", claims)
			}
			// Back on UDP: taken again, unless lost.
			s.in.follow(udp(first))
			claims := *e.sendQ.rtpIntake.Load()
			if back := claims[first] == s.in; back != (tc.wantLost == 0) {
				t.Fatalf("claimed again on UDP: %v (lost %d)", back, lost.Load())
			}
			if tc.wantLost == 0 && tc.packets > 0 {
				// pion decrypted nothing of the stream since the claim; the
				// receiver goes on where it stopped.
				taken := s.in.Taken()
				s.sendAndReceive(t, 65200, 20)
				if s.in.Taken()-taken != 20 {
					t.Fatalf("took %d of 20 after claiming again", s.in.Taken()-taken)
				}
			}
		})
	}
}

// Without DirectReceive the engine gives no direct receiver.
func TestNoDirectReceiverUnlessAsked(t *testing.T) {
	e, err := New(Params{UDPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	pc, r, err := e.NewDirectPublisherPeerConnection()
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if r != nil {
		t.Fatal("a direct receiver without DirectReceive")
	}
}

// isRTP tells SRTP from SRTCP, STUN and DTLS, as pion's mux does.
func TestIsRTP(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"RTP", []byte{0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, true},
		{"RTP with the marker", []byte{0x80, 0x80 | 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, true},
		{"RTCP sender report", []byte{0x80, 200, 0, 6, 0, 0, 0, 0, 0, 0, 0, 1}, false},
		{"STUN", []byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0}, false},
		{"DTLS", []byte{0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0}, false},
		{"a runt", []byte{0x80, 96, 0, 1}, false},
	} {
		if got := isRTP(tc.b); got != tc.want {
			t.Errorf("%s: isRTP %v", tc.name, got)
		}
	}
}
