package rtc

import (
	"net/netip"
	"sync"

	"github.com/pion/webrtc/v4"
)

// A DirectReceiver takes a publisher connection's SRTP off the shared UDP
// socket on the socket's reading goroutine, decrypts it with the
// connection's keys, and writes the plain packet into the buffer pion's
// track reads (the SRTP read stream's, which pion makes with the setting
// engine's BufferFactory: here, the receiver's). pion's interceptors
// (receiver reports, transport-wide feedback) and its RTX and
// simulcast handling run on the track's read as before.
//
// Why: on pion's own path a datagram is handed from the UDP mux's reader
// to the ICE candidate's, to the DTLS mux's, to the SRTP session's and
// then to the track's reader, four goroutine hand-overs and copies. Past
// the first three, the meeting bench's 10 rooms of 6, all publishing,
// take a tenth less of the server's CPU (docs/BENCHMARKS.md, "Meetings").
// It is the first step of docs/direct-receive.md.
//
// Its SRTPIntake does the taking: which streams, from which packet on,
// and what is left to pion. Once a stream's packet authenticated with the
// intake's context, pion cannot follow the stream again once it has gone
// 32,768 to 65,536 packets past the last pion saw (its guess of the
// rollover counter fails). For that reason, if the connection leaves the
// shared UDP port (to ICE-TCP) after the receiver took more packets than
// pion's guess can bridge, it calls its lost function and the meeting has
// the client reconnect, as for the direct sender; before that, the
// streams go back to pion until a UDP pair is selected again. A stream
// whose buffer pion closed (the client stopped sending it) goes back to
// pion if it comes again with the same SSRC; that far past, pion cannot
// decrypt it. Lookout's own clients send a new track on a new
// transceiver, with a new SSRC. A packet delivered twice while the
// receiver started reaches the track twice; the meeting forwards a video
// packet once (its layer's history knows the copy), and each
// subscriber's SRTP replay check drops a copy of an audio one.
//
// The connection answers as the DTLS server (SettingEngine's answering
// role), so that its handshake hooks give the keys (direct.go).
type DirectReceiver struct {
	q       *sendQueue
	secrets DTLSSecrets
	intake  *SRTPIntake

	mu      sync.Mutex
	started bool
	stopped bool
	lostFn  func()
	gone    bool           // lost was called: the connection is pion's for good
	claimed netip.AddrPort // the remote address whose RTP is taken, if valid
}

// NewDirectPublisherPeerConnection makes a meeting publisher connection on
// the main API, answering as the DTLS server, with the DirectReceiver for
// it (none unless Params.DirectReceive is set). The receiver takes nothing
// until Start, once the connection is connected.
func (e *Engine) NewDirectPublisherPeerConnection() (*webrtc.PeerConnection, *DirectReceiver, error) {
	if !e.directReceive {
		pc, err := e.NewPeerConnection()
		return pc, nil, err
	}
	r := &DirectReceiver{q: e.sendQ, intake: NewSRTPIntake(&e.directReceived, &e.directReceiveRefused)}
	se := e.se
	se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer)
	se.SetDTLSServerHelloMessageHook(r.secrets.ServerHello)
	se.SetDTLSKeyLogWriter(&r.secrets)
	se.BufferFactory = r.intake.Buffer
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(e.me), webrtc.WithInterceptorRegistry(e.ir)).
		NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, nil, err
	}
	return pc, r, nil
}

// Start claims pc's RTP on the shared UDP port, pc connected. It says
// whether the receiver took the claim: false leaves the connection to
// pion. lost is called once if the connection later leaves the port.
// Starting again returns what the first start said.
func (r *DirectReceiver) Start(pc *webrtc.PeerConnection, lost func()) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return r.claimed.IsValid()
	}
	r.started = true
	if r.stopped {
		return false
	}
	ice, remote, cfg, ok := overUDP(pc, &r.secrets)
	if !ok {
		return false
	}
	if r.intake.Start(cfg) != nil {
		return false
	}
	r.lostFn = lost
	r.claimed = remote
	// An earlier claim of the address (a connection gone, whose port the
	// client reuses) is replaced.
	r.q.claimRTP(r, netip.AddrPort{}, remote)
	ice.OnSelectedCandidatePairChange(r.follow)
	return true
}

// Stop ends the claim; call it when the connection closes.
func (r *DirectReceiver) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	r.release()
}

// release gives the claimed address's RTP back to pion, r.mu held.
func (r *DirectReceiver) release() {
	if !r.claimed.IsValid() {
		return
	}
	r.q.claimRTP(r, r.claimed, netip.AddrPort{})
	r.claimed = netip.AddrPort{}
}

// follow takes ICE's new selected pair: another address on the UDP port
// is followed (claimed again after a pair off it); a pair off the port
// gives the streams back to pion.
//
// A pair off the port while pion's contexts can still follow the streams
// (fewer packets taken than pionGuessWindow) only gives the streams back
// to pion: a browser may nominate an ICE-TCP pair for a moment during an
// ICE restart, then a UDP one, which the receiver claims again.
func (r *DirectReceiver) follow(pair *webrtc.ICECandidatePair) {
	if pair != nil && pair.Local != nil && pair.Local.Protocol == webrtc.ICEProtocolUDP {
		if remote, ok := pairRemote(pair); ok {
			r.mu.Lock()
			if old := r.claimed; old != remote && r.started && !r.stopped && !r.gone {
				r.q.claimRTP(r, old, remote)
				r.claimed = remote
			}
			r.mu.Unlock()
			return
		}
	}
	r.mu.Lock()
	r.release()
	if r.intake.Taken() < pionGuessWindow || r.gone {
		r.mu.Unlock()
		return
	}
	r.gone = true
	lost := r.lostFn
	r.mu.Unlock()
	if lost != nil {
		lost()
	}
}

// pionGuessWindow: pion guesses a stream's rollover counter right while
// the stream is less than 32,768 packets past the last it decrypted; the
// receiver's count of all the connection's packets bounds each stream's.
const pionGuessWindow = 30_000

// takeRTP takes one SRTP datagram from the connection's remote address;
// false leaves it to pion (a stream the receiver does not take, or a
// packet that did not authenticate with the receiver's context while its
// stream was not yet proven).
func (r *DirectReceiver) takeRTP(b []byte) bool { return r.intake.Take(b) }

// Taken is how many packets the receiver decrypted and handed to pion's
// tracks.
func (r *DirectReceiver) Taken() uint64 { return r.intake.Taken() }

// Decrypting is how many of the connection's streams the receiver
// decrypts: those with a buffer, of which it decrypted a packet.
func (r *DirectReceiver) Decrypting() int { return r.intake.Decrypting() }
