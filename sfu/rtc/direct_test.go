package rtc

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
	"github.com/pion/dtls/v3/pkg/protocol"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/dtls/v3/pkg/protocol/recordlayer"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// The SRTP keying material derived from the hooks' catch is the DTLS
// connection's own (dtls.State's exporter), for suites of both PRF hashes
// and with the extended master secret: the server's from its hooks, the
// client's from its key log and the datagrams it read (NoteDatagram).
func TestDTLSSecretsExportAsDTLS(t *testing.T) {
	for _, suite := range []dtls.CipherSuiteID{
		dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	} {
		t.Run(dtls.CipherSuiteName(suite), func(t *testing.T) {
			cert, err := selfsign.GenerateSelfSigned()
			if err != nil {
				t.Fatal(err)
			}
			var caught, clientCaught DTLSSecrets
			shared := []dtls.Option{
				dtls.WithCertificates(cert), dtls.WithCipherSuites(suite),
				dtls.WithSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM),
				dtls.WithExtendedMasterSecret(dtls.RequireExtendedMasterSecret),
			}
			server := []dtls.ServerOption{dtls.WithServerHelloMessageHook(caught.ServerHello), dtls.WithKeyLogWriter(&caught)}
			client := []dtls.ClientOption{dtls.WithInsecureSkipVerify(true), dtls.WithKeyLogWriter(&clientCaught)}
			for _, o := range shared {
				server, client = append(server, o), append(client, o)
			}
			sc, cc := udpPair(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			done := make(chan *dtls.Conn, 1)
			go func() {
				c, err := dtls.ClientWithOptions(notingConn{cc, &clientCaught}, sc.LocalAddr(), client...)
				if err == nil {
					err = c.HandshakeContext(ctx)
				}
				if err != nil {
					t.Error(err)
				}
				done <- c
			}()
			s, err := dtls.ServerWithOptions(sc, cc.LocalAddr(), server...)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.HandshakeContext(ctx); err != nil {
				t.Fatal(err)
			}
			if c := <-done; c != nil {
				defer c.Close()
			}
			state, ok := s.ConnectionState()
			if !ok {
				t.Fatal("no connection state")
			}
			want, err := state.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", nil, 60)
			if err != nil {
				t.Fatal(err)
			}
			got, err := caught.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", nil, 60)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("exported %x, DTLS exports %x", got, want)
			}
			if p := caught.srtpProfile(); p != 0x0007 { // SRTP_AEAD_AES_128_GCM
				t.Errorf("SRTP profile %#x", p)
			}
			if got, err := clientCaught.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", nil, 60); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("the client's catch exported %x (%v), DTLS exports %x", got, err, want)
			}
			serverKeys, err := caught.SRTPConfig(false)
			if err != nil {
				t.Fatal(err)
			}
			clientKeys, err := clientCaught.SRTPConfig(true)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(clientKeys.Keys.RemoteMasterKey, serverKeys.Keys.LocalMasterKey) || !bytes.Equal(clientKeys.Keys.LocalMasterKey, serverKeys.Keys.RemoteMasterKey) ||
				!bytes.Equal(clientKeys.Keys.RemoteMasterSalt, serverKeys.Keys.LocalMasterSalt) || clientKeys.Profile != serverKeys.Profile {
				t.Fatal("the client's keys are not the server's, the other way round")
			}
		})
	}
}

// notingConn shows its DTLSSecrets every datagram it reads, as a client
// connection's socket reader does.
type notingConn struct {
	net.PacketConn
	secrets *DTLSSecrets
}

func (c notingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(b)
	if err == nil {
		c.secrets.NoteDatagram(b[:n])
	}
	return n, addr, err
}

// NoteDatagram passes over what is not a ServerHello in its first record:
// other records, runts, RTP, and lengths that do not hold together.
func TestDTLSSecretsNoteDatagramPassesOver(t *testing.T) {
	for name, b := range notServerHellos {
		var s DTLSSecrets
		s.NoteDatagram(b)
		if s.serverRandom != nil {
			t.Errorf("%s: caught a ServerHello", name)
		}
		if _, err := s.SRTPConfig(true); !errors.Is(err, errNoSecrets) {
			t.Errorf("%s: SRTPConfig gave %v", name, err)
		}
	}
}

// notServerHellos are datagrams NoteDatagram must pass over.
var notServerHellos = map[string][]byte{
	"empty":           nil,
	"rtp":             append([]byte{0x80, 96}, make([]byte, 30)...),
	"short handshake": {22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 2},
	"length past end": append([]byte{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 2}, make([]byte, 40)...),
	"client hello":    append([]byte{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 1}, make([]byte, 11)...),
	"garbled hello":   append([]byte{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 2, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 8}, make([]byte, 8)...),
}

// NoteDatagram reads what any peer sends; whatever it catches is a whole
// ServerHello's random.
func FuzzDTLSSecretsNoteDatagram(f *testing.F) {
	for _, b := range notServerHellos {
		f.Add(b)
	}
	// A ServerHello as pion's DTLS server sends it, alone in its record.
	suite := uint16(dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
	hello := handshake.MessageServerHello{Version: protocol.Version1_2, CipherSuiteID: &suite, CompressionMethod: &protocol.CompressionMethod{},
		Extensions: []extension.Extension{&extension.UseSRTP{ProtectionProfiles: []extension.SRTPProtectionProfile{extension.SRTP_AEAD_AES_128_GCM}}}}
	rec := recordlayer.RecordLayer{Header: recordlayer.Header{Version: protocol.Version1_2}, Content: &handshake.Handshake{Message: &hello}}
	b, err := rec.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	var caught DTLSSecrets
	if caught.NoteDatagram(b); caught.serverRandom == nil || caught.srtpProfile() != srtp.ProtectionProfileAeadAes128Gcm {
		f.Fatal("the seed ServerHello was not caught")
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var s DTLSSecrets
		s.NoteDatagram(b)
		if s.serverRandom != nil && len(s.serverRandom) != 32 {
			t.Fatalf("server random %x", s.serverRandom)
		}
	})
}

// Before a handshake there is nothing to export.
func TestDTLSSecretsEmpty(t *testing.T) {
	var s DTLSSecrets
	if _, err := s.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", nil, 60); !errors.Is(err, errNoSecrets) {
		t.Fatalf("got %v", err)
	}
	line := []byte("CLIENT_RANDOM zz 00\nnonsense\n")
	if n, err := s.Write(line); err != nil || n != len(line) {
		t.Fatalf("Write: %d, %v", n, err)
	}
	if _, err := s.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", nil, 60); !errors.Is(err, errNoSecrets) {
		t.Fatalf("after a malformed key log line: %v", err)
	}
}

// readTracks sends the packets of pc's remote tracks to the channel it
// returns (dropped when it is full).
func readTracks(pc *webrtc.PeerConnection) chan *rtp.Packet {
	got := make(chan *rtp.Packet, 1000)
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			select {
			case got <- p:
			default:
			}
		}
	})
	return got
}

// whenConnected returns a channel closed when pc is first connected.
func whenConnected(pc *webrtc.PeerConnection) <-chan struct{} {
	connected := make(chan struct{})
	var once atomic.Bool
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected && !once.Swap(true) {
			close(connected)
		}
	})
	return connected
}

// waitConnected waits 10 s at most for connected (whenConnected's).
func waitConnected(t *testing.T, pc *webrtc.PeerConnection, connected <-chan struct{}) {
	t.Helper()
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatalf("not connected within 10 s (ICE %s)", pc.ICEConnectionState())
	}
}

func udpPair(t *testing.T) (*net.UDPConn, *net.UDPConn) {
	t.Helper()
	return listenUDP(t, "udp4", "127.0.0.1:0"), listenUDP(t, "udp4", "127.0.0.1:0")
}

// directConn is a direct subscriber connection of the engine that offers
// one VP8 track, and the pion client connected to it.
type directConn struct {
	spc, cpc *webrtc.PeerConnection
	direct   *DirectSender
	sender   *webrtc.RTPSender // the server's, of the track
	ssrc     webrtc.SSRC
	pt       webrtc.PayloadType
	got      chan *rtp.Packet // what the client received
}

// directSession connects a pion client (over networks) to a direct
// subscriber connection of the engine.
func directSession(t *testing.T, e *Engine, networks ...webrtc.NetworkType) directConn {
	t.Helper()
	spc, direct, err := e.NewDirectSubscriberPeerConnection()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { spc.Close() })
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "sfu")
	if err != nil {
		t.Fatal(err)
	}
	sender, err := spc.AddTrack(track)
	if err != nil {
		t.Fatal(err)
	}
	cpc, err := clientAPI(networks...).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cpc.Close() })
	got := readTracks(cpc)
	connected := whenConnected(spc)
	negotiate(t, spc, cpc)
	waitConnected(t, spc, connected)
	params := sender.GetParameters()
	return directConn{spc: spc, cpc: cpc, direct: direct, sender: sender, ssrc: params.Encodings[0].SSRC, pt: params.Codecs[0].PayloadType, got: got}
}

// Over the shared UDP port, the direct sender's packets reach the client
// decrypted by its SRTP as they were written, every one, with no
// allocation per packet.
func TestDirectSenderDelivers(t *testing.T) {
	e := newEngine(t, false)
	s := directSession(t, e, webrtc.NetworkTypeUDP4)
	spc, direct, ssrc, pt, got := s.spc, s.direct, s.ssrc, s.pt, s.got
	lost := atomic.Int32{}
	if !direct.Start(spc, func() { lost.Add(1) }, nil) || !direct.Ready() {
		t.Fatal("the direct sender did not start on a UDP connection")
	}
	if !direct.Start(spc, nil, nil) {
		t.Fatal("a second start (an ICE restart's) said otherwise")
	}
	stream, err := direct.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 1000)
	// Sent in batches of 20, each received before the next is sent, so
	// that no socket buffer overflows on a busy machine: every packet
	// must arrive.
	const n, batch = 300, 20
	deadline := time.After(20 * time.Second)
	for i := 0; i < n; i += batch {
		for k := i; k < i+batch; k++ {
			payload[0], payload[1] = byte(k>>8), byte(k)
			h := rtp.Header{Version: 2, SequenceNumber: uint16(65400 + k), Timestamp: uint32(k) * 3000, SSRC: uint32(ssrc),
				PayloadType: uint8(pt), Marker: true}
			if _, err := stream.WriteRTP(&h, payload); err != nil {
				t.Fatal(err)
			}
		}
		for k := i; k < i+batch; k++ {
			select {
			case p := <-got:
				// Across the sequence numbers' wrap: the rollover
				// counter went up on both sides.
				if p.SequenceNumber != uint16(65400+k) || p.Payload[0] != byte(k>>8) || p.Payload[1] != byte(k) || len(p.Payload) != 1000 {
					t.Fatalf("packet %d: seq %d, payload %x…, %d bytes", k, p.SequenceNumber, p.Payload[:2], len(p.Payload))
				}
			case <-deadline:
				t.Fatalf("%d of %d packets within 20 s", k, n)
			}
		}
	}
	h := rtp.Header{Version: 2, SequenceNumber: 1, SSRC: uint32(ssrc), PayloadType: uint8(pt)}
	if a := testing.AllocsPerRun(100, func() { h.SequenceNumber++; _, _ = stream.WriteRTP(&h, payload) }); a != 0 {
		t.Errorf("%.1f allocations a packet", a)
	}
	if lost.Load() != 0 {
		t.Error("lost called")
	}
}

// A connection over ICE-TCP is left to pion: the direct sender does not
// start.
func TestDirectSenderNotOverTCP(t *testing.T) {
	e := newEngine(t, true)
	s := directSession(t, e, webrtc.NetworkTypeTCP4)
	spc, direct := s.spc, s.direct
	if direct.Start(spc, nil, func([]byte) { t.Error("RTCP taken over ICE-TCP") }) || direct.Ready() {
		t.Fatal("the direct sender started on an ICE-TCP connection")
	}
	if _, err := direct.NewStream(); err == nil {
		t.Fatal("a stream of a sender not started")
	}
}

// The sender follows ICE's selected pair to another address on the UDP
// port; a pair off it loses the connection: lost is called once and the
// streams send no more.
func TestDirectSenderFollowsThePair(t *testing.T) {
	e := newEngine(t, false)
	s := directSession(t, e, webrtc.NetworkTypeUDP4)
	spc, direct, ssrc, pt, got := s.spc, s.direct, s.ssrc, s.pt, s.got
	var lost atomic.Int32
	if !direct.Start(spc, func() { lost.Add(1) }, func([]byte) {}) {
		t.Fatal("not started")
	}
	stream, err := direct.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	first := *direct.remote.Load()
	elsewhere := listenUDP(t, "udp4", "127.0.0.1:0")
	to := elsewhere.LocalAddr().(*net.UDPAddr).AddrPort()
	direct.follow(&webrtc.ICECandidatePair{
		Local:  &webrtc.ICECandidate{Protocol: webrtc.ICEProtocolUDP, Address: "127.0.0.1", Port: 1},
		Remote: &webrtc.ICECandidate{Protocol: webrtc.ICEProtocolUDP, Address: to.Addr().String(), Port: to.Port()},
	})
	if r := *direct.remote.Load(); r != to || r == first {
		t.Fatalf("remote %v after the pair moved to %v", r, to)
	}
	// The RTCP claim moved with it.
	if claims := *e.sendQ.intake.Load(); claims[to] != direct || claims[first] != nil {
		t.Fatalf("RTCP claims %v after the pair moved from %v to %v", claims, first, to)
	}
	h := rtp.Header{Version: 2, SequenceNumber: 7, SSRC: uint32(ssrc), PayloadType: uint8(pt)}
	if _, err := stream.WriteRTP(&h, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	_ = elsewhere.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err := elsewhere.ReadFromUDPAddrPort(buf); err != nil || n < 12+3+16 {
		t.Fatalf("at the new address: %d bytes, %v", n, err)
	}
	select {
	case p := <-got:
		t.Fatalf("the old address got packet %d", p.SequenceNumber)
	default:
	}

	tcp := &webrtc.ICECandidatePair{
		Local:  &webrtc.ICECandidate{Protocol: webrtc.ICEProtocolTCP, Address: "127.0.0.1", Port: 2},
		Remote: &webrtc.ICECandidate{Protocol: webrtc.ICEProtocolTCP, Address: "127.0.0.1", Port: 3},
	}
	direct.follow(tcp)
	direct.follow(tcp)
	if lost.Load() != 1 || direct.Ready() {
		t.Fatalf("lost called %d times, ready %v", lost.Load(), direct.Ready())
	}
	if claims := *e.sendQ.intake.Load(); len(claims) != 0 {
		t.Fatalf("RTCP still claimed after the move to TCP: %v", claims)
	}
	if _, err := stream.WriteRTP(&h, []byte{1}); !errors.Is(err, ErrDirectLost) {
		t.Fatalf("a write after the move: %v", err)
	}
}

// Without DirectSend the engine gives no direct sender.
func TestNoDirectSenderUnlessAsked(t *testing.T) {
	e, err := New(Params{UDPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	pc, d, err := e.NewDirectSubscriberPeerConnection()
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if d != nil {
		t.Fatal("a direct sender without DirectSend")
	}
}

// The connection's RTCP reaches the taker Start was given, decrypted,
// past pion; until Stop, after which it goes to pion's RTPSender again.
func TestDirectSenderTakesRTCP(t *testing.T) {
	e := newEngine(t, false)
	s := directSession(t, e, webrtc.NetworkTypeUDP4)
	taken := make(chan []rtcp.Packet, 16)
	if !s.direct.Start(s.spc, nil, func(b []byte) {
		pkts, err := rtcp.Unmarshal(b)
		if err != nil {
			t.Errorf("taken RTCP does not parse: %v", err)
		}
		taken <- pkts
	}) {
		t.Fatal("not started")
	}
	fromPion := make(chan rtcp.Packet, 16)
	go func() {
		for {
			pkts, _, err := s.sender.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if _, ok := p.(*rtcp.PictureLossIndication); ok {
					fromPion <- p
				}
			}
		}
	}()
	// The server is connected; the client may still finish its side.
	for end := time.Now().Add(5 * time.Second); s.cpc.ConnectionState() != webrtc.PeerConnectionStateConnected; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the client not connected within 5 s: %s", s.cpc.ConnectionState())
		}
	}
	pli := func(n uint32) {
		if err := s.cpc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{SenderSSRC: n, MediaSSRC: uint32(s.ssrc)}}); err != nil {
			t.Fatal(err)
		}
	}
	pli(1)
	select {
	case pkts := <-taken:
		if p, ok := pkts[0].(*rtcp.PictureLossIndication); !ok || p.MediaSSRC != uint32(s.ssrc) || p.SenderSSRC != 1 {
			t.Fatalf("taken %v", pkts)
		}
	case p := <-fromPion:
		t.Fatalf("pion read %v: the direct sender did not take it", p)
	case <-time.After(5 * time.Second):
		t.Fatal("no RTCP taken within 5 s")
	}
	if n := e.directRTCP.Load(); n < 1 {
		t.Fatalf("direct RTCP counted %d", n)
	}

	s.direct.Stop()
	pli(2)
	select {
	case p := <-fromPion:
		if p.(*rtcp.PictureLossIndication).SenderSSRC != 2 {
			t.Fatalf("pion read %v", p)
		}
	case pkts := <-taken:
		t.Fatalf("taken after Stop: %v", pkts)
	case <-time.After(5 * time.Second):
		t.Fatal("pion read no RTCP within 5 s of Stop")
	}
}

// A datagram from the claimed address that does not authenticate with
// the connection's keys is left to pion; a replay of one that did is
// dropped and counted; one taken costs no allocation of the intake's.
func TestDirectSenderRTCPIntakeRefuses(t *testing.T) {
	e := newEngine(t, false)
	s := directSession(t, e, webrtc.NetworkTypeUDP4)
	var taken atomic.Int32
	if !s.direct.Start(s.spc, nil, func([]byte) { taken.Add(1) }) {
		t.Fatal("not started")
	}
	// The client's keys, as the client derives them.
	cfg := srtp.Config{Profile: s.direct.profile}
	if err := cfg.ExtractSessionKeysFromDTLS(&s.direct.secrets, false); err != nil {
		t.Fatal(err)
	}
	client, err := srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, s.direct.profile)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := (&rtcp.PictureLossIndication{SenderSSRC: 9, MediaSSRC: uint32(s.ssrc)}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := client.EncryptRTCP(nil, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !s.direct.takeRTCP(sealed) || taken.Load() != 1 {
		t.Fatalf("a datagram sealed with the client's keys: taken %d", taken.Load())
	}
	if !s.direct.takeRTCP(sealed) || taken.Load() != 1 || e.directRTCPRefused.Load() != 1 {
		t.Fatalf("its replay: taken %d, refused %d", taken.Load(), e.directRTCPRefused.Load())
	}
	// A new index (an old one would be a replay, dropped before its tag
	// is checked), its tag broken.
	forged, err := client.EncryptRTCP(nil, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	forged[len(forged)-5] ^= 1 // the tag's last byte, before the index
	if s.direct.takeRTCP(forged) {
		t.Fatal("a datagram that does not authenticate was taken")
	}
	if !isRTCP(sealed) || isRTCP([]byte{0x80, 96, 0, 1, 0, 0, 0, 0}) || isRTCP([]byte{0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0}) {
		t.Fatal("isRTCP: SRTCP, RTP or DTLS misread")
	}
	// Each sealed beforehand: the client's encryption is not measured.
	const runs = 50
	next, batch := 0, make([][]byte, runs+1)
	for i := range batch {
		if batch[i], err = client.EncryptRTCP(nil, plain, nil); err != nil {
			t.Fatal(err)
		}
	}
	before := taken.Load()
	// One is pion/srtp's: its AES-GCM decryption's additional data
	// escapes through the cipher.AEAD interface.
	if a := testing.AllocsPerRun(runs, func() { s.direct.takeRTCP(batch[next]); next++ }); a > 1 {
		t.Errorf("%.1f allocations a datagram taken", a)
	}
	if n := taken.Load() - before; n != runs+1 {
		t.Fatalf("%d of %d taken", n, runs+1)
	}
}
