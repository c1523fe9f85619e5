package rtc

import (
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/transport/v4/packetio"
	"github.com/pion/webrtc/v4"
)

// A DirectReceiver takes a publisher connection's SRTP off the shared UDP
// socket on the socket's reading goroutine, decrypts it with the
// connection's keys, and writes the plain packet into the buffer pion's
// track reads (the SRTP read stream's, which pion makes with the setting
// engine's BufferFactory: here, the receiver's). pion's interceptors
// (NACKs, receiver reports, transport-wide feedback) and its RTX and
// simulcast handling run on the track's read as before.
//
// Why: on pion's own path a datagram is handed from the UDP mux's reader
// to the ICE candidate's, to the DTLS mux's, to the SRTP session's and
// then to the track's reader, four goroutine hand-overs and copies. Past
// the first three, the meeting bench's 10 rooms of 6, all publishing,
// take a tenth less of the server's CPU (docs/BENCHMARKS.md, "Meetings").
// It is the first step of docs/direct-receive.md.
//
// A stream is taken from its buffer's making on: pion decrypts the
// stream's first packet (which makes the buffer) and any that were on
// their way through its goroutines then; the receiver decrypts the rest,
// with an SRTP context of its own. If the receiver's first packet of a
// stream does not authenticate with that context (pion's rollover
// counter already past the receiver's guess), the packet and the stream
// are left to pion from then on. Once a packet of the stream has, one
// that does not (a datagram forged from the publisher's address) is
// dropped: pion's guess of the rollover counter fails once the stream has
// gone 32,768 to 65,536 packets past the last pion saw. For the same
// reason, if the connection leaves the shared UDP port (to ICE-TCP) after
// the receiver took more packets than pion's guess can bridge, it calls
// its lost function and the meeting has the client reconnect, as for the
// direct sender; before that, the streams go back to pion until a UDP
// pair is selected again. A stream whose buffer pion closed (the client
// stopped sending it) goes back to pion if it comes again with the same
// SSRC; that far past, pion cannot decrypt it. Lookout's own clients
// send a new track on a new transceiver, with a new SSRC.
//
// The receiver's replay window starts empty where pion's left off: a
// packet pion delivered while the receiver started may be delivered once
// more. The meeting forwards it again under the same sequence number,
// and each subscriber's SRTP replay check drops the copy.
//
// The connection answers as the DTLS server (SettingEngine's answering
// role), so that its handshake hooks give the keys (direct.go).
type DirectReceiver struct {
	q       *sendQueue
	counted *atomic.Uint64 // the engine's count of packets taken
	refused *atomic.Uint64 // and of those dropped or given back (lookout_webrtc_direct_received_refused_total)
	secrets dtlsSecrets

	mu      sync.Mutex
	started bool
	stopped bool
	lostFn  func()
	gone    bool           // lost was called: the connection is pion's for good
	claimed netip.AddrPort // the remote address whose RTP is taken, if valid

	// streams are the SRTP read streams' buffers by SSRC: copied on
	// change, read for every datagram.
	streamsMu sync.Mutex
	streams   atomic.Pointer[map[uint32]*recvBuffer]

	// Used on the socket's reading goroutine.
	readMu sync.Mutex
	ctx    *srtp.Context // set before the claim is made
	hdr    rtp.Header
	plain  []byte

	taken atomic.Uint64
}

// recvBuffer is a read stream's buffer; closing it (pion closes the
// stream) ends the receiver's taking of its SSRC.
type recvBuffer struct {
	*packetio.Buffer
	r    *DirectReceiver
	ssrc uint32
}

func (b *recvBuffer) Close() error {
	b.r.drop(b.ssrc, b)
	return b.Buffer.Close()
}

// The buffers' limits, pion's own (srtp: srtpBufferSize, srtcpBufferSize).
const (
	recvRTPBufferSize  = 1000 * 1000
	recvRTCPBufferSize = 100 * 1000
)

// recvReplayWindow is how many packets back a packet may come and still be
// taken once: pion's session's default.
const recvReplayWindow = 64

// NewDirectPublisherPeerConnection makes a meeting publisher connection on
// the main API, answering as the DTLS server, with the DirectReceiver for
// it (none unless Params.DirectReceive is set). The receiver takes nothing
// until Start, once the connection is connected.
func (e *Engine) NewDirectPublisherPeerConnection() (*webrtc.PeerConnection, *DirectReceiver, error) {
	if !e.directReceive {
		pc, err := e.NewPeerConnection()
		return pc, nil, err
	}
	r := &DirectReceiver{q: e.sendQ, counted: &e.directReceived, refused: &e.directReceiveRefused}
	se := e.se
	se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer)
	se.SetDTLSServerHelloMessageHook(r.secrets.serverHello)
	se.SetDTLSKeyLogWriter(&r.secrets)
	se.BufferFactory = r.buffer
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(e.me), webrtc.WithInterceptorRegistry(e.ir)).
		NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, nil, err
	}
	return pc, r, nil
}

// buffer is the connection's BufferFactory: pion's buffers, with an RTP
// stream's noted for the receiver.
func (r *DirectReceiver) buffer(kind packetio.BufferPacketType, ssrc uint32) io.ReadWriteCloser {
	b := packetio.NewBuffer()
	if kind != packetio.RTPBufferPacket {
		b.SetLimitSize(recvRTCPBufferSize)
		return b
	}
	b.SetLimitSize(recvRTPBufferSize)
	rb := &recvBuffer{Buffer: b, r: r, ssrc: ssrc}
	r.editStreams(func(m map[uint32]*recvBuffer) { m[ssrc] = rb })
	return rb
}

// drop ends the taking of ssrc, if b is still its buffer.
func (r *DirectReceiver) drop(ssrc uint32, b *recvBuffer) {
	r.editStreams(func(m map[uint32]*recvBuffer) {
		if m[ssrc] == b {
			delete(m, ssrc)
		}
	})
}

func (r *DirectReceiver) editStreams(edit func(map[uint32]*recvBuffer)) {
	editCopied(&r.streamsMu, &r.streams, edit)
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
	ctx, err := srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, cfg.Profile, srtp.SRTPReplayProtection(recvReplayWindow))
	if err != nil {
		return false
	}
	r.readMu.Lock()
	r.ctx, r.plain = ctx, make([]byte, 0, sendQueueMTU)
	r.readMu.Unlock()
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
			if old := r.claimed; old != remote && r.started && r.ctx != nil && !r.stopped && !r.gone {
				r.q.claimRTP(r, old, remote)
				r.claimed = remote
			}
			r.mu.Unlock()
			return
		}
	}
	r.mu.Lock()
	r.release()
	if r.taken.Load() < pionGuessWindow || r.gone {
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
// packet that did not authenticate with the receiver's context).
func (r *DirectReceiver) takeRTP(b []byte) bool {
	streams := r.streams.Load()
	if streams == nil || len(b) < 12 {
		return false
	}
	ssrc := binary.BigEndian.Uint32(b[8:12])
	buf := (*streams)[ssrc]
	if buf == nil {
		return false
	}
	r.readMu.Lock()
	defer r.readMu.Unlock()
	// Once a packet of the stream authenticated with the receiver's
	// context, the context's rollover counter is the stream's.
	_, proven := r.ctx.ROC(ssrc)
	plain, err := r.ctx.DecryptRTP(r.plain[:0], b, &r.hdr)
	if errors.Is(err, srtp.ErrFailedToVerifyAuthTag) && !proven {
		// The stream stays with pion from now on (see the type's
		// comment).
		r.drop(ssrc, buf)
		r.refused.Add(1)
		return false
	}
	if err != nil {
		// A replay, a runt or a forgery: dropped, as pion's session
		// drops them.
		r.refused.Add(1)
		return true
	}
	r.plain = plain[:0] // grown, if it had to, for the next
	if _, err := buf.Write(plain); err != nil {
		// The buffer full (a track nobody reads) or closed: dropped,
		// as pion drops it, and not counted (pion does not either).
		return true
	}
	r.taken.Add(1)
	r.counted.Add(1)
	return true
}

// Taken is how many packets the receiver decrypted and handed to pion's
// tracks.
func (r *DirectReceiver) Taken() uint64 { return r.taken.Load() }

// Decrypting is how many of the connection's streams the receiver
// decrypts: those with a buffer, of which it decrypted a packet.
func (r *DirectReceiver) Decrypting() int {
	streams := r.streams.Load()
	if streams == nil {
		return 0
	}
	r.readMu.Lock()
	defer r.readMu.Unlock()
	if r.ctx == nil {
		return 0
	}
	n := 0
	for ssrc := range *streams {
		if _, ok := r.ctx.ROC(ssrc); ok {
			n++
		}
	}
	return n
}
