package rtc

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"hash"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/prf"
	"github.com/pion/dtls/v3/pkg/protocol"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/dtls/v3/pkg/protocol/recordlayer"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// A DirectSender sends a subscriber connection's RTP itself: encrypted
// with the connection's own SRTP keys, one SRTP context per stream, and
// queued straight onto the shared UDP socket for the address ICE chose.
//
// Why: a meeting writes every packet to every subscriber, and pion's path
// for a write (the track writer, the SRTP session's lock and stream
// lookup, the DTLS mux endpoint, the ICE connection's checks, the UDP
// mux's connection) cost as much as the encryption itself, a sixth of the
// server's CPU at 200 subscribers. pion does not expose a connection's
// SRTP keys, so they are derived here as pion derives them (RFC 5764: the
// DTLS exporter, RFC 5705), from what the connection's own DTLS handshake
// hooks give: the ServerHello (the server random, the cipher suite, the
// SRTP profile) and the key log's line (the client random and the master
// secret). The master secret stays in this process's memory, as pion's
// own copy does; it is never written anywhere.
//
// It sends only while the selected candidate pair is on the shared UDP
// port (any remote address: a host, a NAT's, a TURN relay's), following
// the pair as ICE changes it. A connection that moves to ICE-TCP cannot
// be followed, and its streams cannot go back to pion either: their SRTP
// rollover counters live here, not in pion's contexts, so the receiver
// would drop pion's packets once a stream has sent 65,536. The sender
// then stops and calls its lost function, and the meeting has the client
// reconnect. A connection that never was on UDP, or whose DTLS role was
// the client (the ServerHello is the peer's then), stays on pion's path.
//
// It also takes the connection's incoming RTCP, when Start is given a
// function for it: the SRTCP that comes from the selected pair's remote
// address is taken off the shared socket's read before pion's ICE mux
// sees it (sendQueue.ReadFromAddrPort), decrypted with the remote's keys
// and handed over. A datagram that does not authenticate with those keys
// is left to pion: it is some other connection's from the same address.
// ICE's own traffic (STUN) still goes to pion, and keeps the connection
// alive there.
type DirectSender struct {
	// What every packet of every stream reads or counts, together at the
	// start, so that a copy touches as few lines of the sender's memory
	// as the allocator's placement allows.
	q       *sendQueue
	lost    atomic.Bool
	remote  atomic.Pointer[netip.AddrPort]
	packets atomic.Uint64
	counted *atomic.Uint64 // the engine's count of all direct packets

	countedRTCP *atomic.Uint64 // and of the RTCP the senders took
	refusedRTCP *atomic.Uint64 // and dropped (replays, runts)
	secrets     DTLSSecrets

	mu      sync.Mutex
	started bool
	stopped bool
	lostFn  func()
	// claimed is the remote address whose SRTCP the sender takes, if
	// valid.
	claimed netip.AddrPort

	// The incoming RTCP: the remote's SRTCP context, a buffer for the
	// plain packets, the taker. Used on the socket's reading goroutine.
	rtcpMu    sync.Mutex
	rtcpCtx   *srtp.Context
	rtcpHdr   rtcp.Header
	rtcpPlain []byte
	onRTCP    func([]byte)

	ready   atomic.Bool // keys and remote are set; streams may be made
	key     []byte      // set before ready
	salt    []byte
	profile srtp.ProtectionProfile
	rtcpIn  atomic.Uint64
}

// Packets is how many packets the sender's streams have sent.
func (d *DirectSender) Packets() uint64 { return d.packets.Load() }

// RTCPTaken is how many RTCP datagrams the sender took for its taker.
func (d *DirectSender) RTCPTaken() uint64 { return d.rtcpIn.Load() }

// ErrDirectLost: the connection moved where the direct sender cannot
// follow (ICE-TCP); the packet was not sent.
var ErrDirectLost = errors.New("rtc: the connection left the shared UDP port")

// NewDirectSubscriberPeerConnection makes a subscriber connection, as
// NewSubscriberPeerConnection, with the DirectSender for it (none unless
// Params.DirectSend is set). The sender is not ready until Start, once
// the connection is connected.
func (e *Engine) NewDirectSubscriberPeerConnection() (*webrtc.PeerConnection, *DirectSender, error) {
	if !e.directSend {
		pc, err := e.NewSubscriberPeerConnection()
		return pc, nil, err
	}
	d := &DirectSender{q: e.sendQ, counted: &e.directPackets, countedRTCP: &e.directRTCP, refusedRTCP: &e.directRTCPRefused}
	se := e.subSE
	se.SetDTLSServerHelloMessageHook(d.secrets.ServerHello)
	se.SetDTLSKeyLogWriter(&d.secrets)
	pc, err := e.subscriberAPIWith(se).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, nil, err
	}
	return pc, d, nil
}

// Start readies the sender for pc, connected: the keys from the
// handshake, the remote address from the selected pair. It says whether
// the sender is ready: false leaves pc's RTP and RTCP to pion. lost is
// called once if the connection later moves off the shared UDP port.
// Starting again (after an ICE restart) returns what the first start
// said.
//
// If takeRTCP is set, the connection's incoming RTCP goes to it instead
// of pion's RTPSender.ReadRTCP, decrypted: a compound packet, which it
// must parse. It is called on the shared socket's reading goroutine, one
// packet at a time; it must not block, nor keep the buffer.
func (d *DirectSender) Start(pc *webrtc.PeerConnection, lost func(), takeRTCP func([]byte)) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started {
		return d.ready.Load()
	}
	d.started = true
	if d.stopped {
		return false
	}
	ice, remote, cfg, ok := overUDP(pc, &d.secrets)
	if !ok {
		return false
	}
	profile := cfg.Profile
	d.key, d.salt, d.profile, d.lostFn = cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt, profile, lost
	d.remote.Store(&remote)
	if takeRTCP != nil {
		// Replays are refused, as pion's session refuses them.
		ctx, err := srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, profile, srtp.SRTCPReplayProtection(rtcpReplayWindow))
		if err == nil {
			d.rtcpCtx, d.onRTCP, d.rtcpPlain = ctx, takeRTCP, make([]byte, 0, sendQueueMTU)
			d.claimed = remote
			// An earlier claim of the address (a connection gone,
			// whose port the client reuses) is replaced.
			d.q.claimRTCP(d, netip.AddrPort{}, remote)
		}
	}
	ice.OnSelectedCandidatePairChange(d.follow)
	d.ready.Store(true)
	return true
}

// rtcpReplayWindow is how many SRTCP indexes back a packet may come and
// still be taken once (pion's default for SRTP).
const rtcpReplayWindow = 64

// Stop ends the sender's claim of the connection's RTCP; call it when
// the connection closes.
func (d *DirectSender) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	d.release()
}

// release gives the claimed address's RTCP back to pion, d.mu held.
func (d *DirectSender) release() {
	if !d.claimed.IsValid() {
		return
	}
	d.q.claimRTCP(d, d.claimed, netip.AddrPort{})
	d.claimed = netip.AddrPort{}
}

// takeRTCP takes one SRTCP datagram from the connection's remote address;
// false leaves it to pion (it did not authenticate with this connection's
// keys).
func (d *DirectSender) takeRTCP(b []byte) bool {
	d.rtcpMu.Lock()
	defer d.rtcpMu.Unlock()
	plain, err := d.rtcpCtx.DecryptRTCP(d.rtcpPlain[:0], b, &d.rtcpHdr)
	if errors.Is(err, srtp.ErrFailedToVerifyAuthTag) {
		return false
	}
	if err != nil {
		// A replay or a runt: dropped, as pion's session drops them.
		d.refusedRTCP.Add(1)
		return true
	}
	d.rtcpPlain = plain[:0] // grown, if it had to, for the next
	d.rtcpIn.Add(1)
	d.countedRTCP.Add(1)
	d.onRTCP(plain)
	return true
}

// Ready says whether streams may be made.
func (d *DirectSender) Ready() bool { return d.ready.Load() && !d.lost.Load() }

// follow takes ICE's new selected pair: another address on the UDP port
// is followed; anything else loses the connection.
func (d *DirectSender) follow(pair *webrtc.ICECandidatePair) {
	if pair != nil && pair.Local != nil && pair.Local.Protocol == webrtc.ICEProtocolUDP {
		if remote, ok := pairRemote(pair); ok {
			d.remote.Store(&remote)
			d.mu.Lock()
			if old := d.claimed; old.IsValid() && old != remote && !d.stopped {
				d.q.claimRTCP(d, old, remote)
				d.claimed = remote
			}
			d.mu.Unlock()
			return
		}
	}
	if d.lost.Swap(true) {
		return
	}
	d.mu.Lock()
	lost := d.lostFn
	// The RTCP goes back to pion: over TCP it never reaches the socket.
	d.release()
	d.mu.Unlock()
	if lost != nil {
		lost()
	}
}

// overUDP is what a direct sender or receiver starts from: pc's ICE
// transport, the selected pair's remote address if the pair is on the
// shared UDP port, and the SRTP keys of pc's DTLS handshake (as the DTLS
// server). ok is false if any is missing.
func overUDP(pc *webrtc.PeerConnection, secrets *DTLSSecrets) (ice *webrtc.ICETransport, remote netip.AddrPort, cfg srtp.Config, ok bool) {
	sctp := pc.SCTP()
	if sctp == nil {
		return nil, remote, cfg, false
	}
	ice = sctp.Transport().ICETransport()
	pair, err := ice.GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local.Protocol != webrtc.ICEProtocolUDP {
		return nil, remote, cfg, false
	}
	if remote, ok = pairRemote(pair); !ok {
		return nil, remote, cfg, false
	}
	cfg, err = secrets.SRTPConfig(false)
	if err != nil {
		return nil, remote, cfg, false
	}
	return ice, remote, cfg, true
}

func pairRemote(pair *webrtc.ICECandidatePair) (netip.AddrPort, bool) {
	if pair.Remote == nil {
		return netip.AddrPort{}, false
	}
	addr, err := netip.ParseAddr(pair.Remote.Address)
	if err != nil || pair.Remote.Port == 0 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(addr.Unmap(), pair.Remote.Port), true
}

// NewStream makes the sender of one track: its SSRCs (the media's and
// its retransmissions') encrypted in one SRTP context. A stream is not
// safe for concurrent use; the sender's streams are, each its own.
func (d *DirectSender) NewStream() (*DirectStream, error) {
	if !d.ready.Load() {
		return nil, errors.New("rtc: the direct sender is not started")
	}
	ctx, err := srtp.CreateContext(d.key, d.salt, d.profile)
	if err != nil {
		return nil, err
	}
	return &DirectStream{d: d, ctx: ctx, plain: make([]byte, 0, sendQueueMTU), sealed: make([]byte, 0, sendQueueMTU)}, nil
}

// DirectStream is one track's sender (webrtc.TrackLocalWriter's WriteRTP).
type DirectStream struct {
	d      *DirectSender
	ctx    *srtp.Context
	plain  []byte
	sealed []byte
}

// WriteRTP encrypts the packet and queues it for the connection's remote
// address; it allocates nothing.
func (s *DirectStream) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	if s.d.lost.Load() {
		return 0, ErrDirectLost
	}
	n := h.MarshalSize()
	if n+len(payload) > cap(s.plain) {
		return 0, errors.New("rtc: RTP packet larger than a datagram")
	}
	plain := s.plain[:n+len(payload)]
	if _, err := h.MarshalTo(plain); err != nil {
		return 0, err
	}
	copy(plain[n:], payload)
	sealed, err := s.ctx.EncryptRTP(s.sealed[:0], plain, h)
	if err != nil {
		return 0, err
	}
	s.sealed = sealed[:0] // grown, if it had to, for the next
	if _, err := s.d.q.WriteToAddrPort(sealed, *s.d.remote.Load()); err != nil {
		return 0, err
	}
	s.d.packets.Add(1)
	s.d.counted.Add(1)
	return len(payload), nil
}

// DTLSSecrets catches what one connection's DTLS handshake settled: from
// its ServerHello the server random, the cipher suite and the SRTP
// profile; from pion's key log (SettingEngine.SetDTLSKeyLogWriter) the
// client random and the master secret. It is the exporter srtp.Config
// takes the keys from (SRTPConfig).
//
// As the DTLS server, the connection's ServerHello hook
// (SettingEngine.SetDTLSServerHelloMessageHook) gives it the ServerHello;
// as the client, pion has no hook for the peer's, and NoteDatagram takes
// it from the datagrams the connection reads.
type DTLSSecrets struct {
	mu           sync.Mutex
	serverRandom []byte
	suite        dtls.CipherSuiteID
	profile      srtp.ProtectionProfile
	clientRandom []byte
	master       []byte
}

// ServerHello is the DTLS server's ServerHello hook: it notes the message
// and sends it as it is.
func (s *DTLSSecrets) ServerHello(m handshake.MessageServerHello) handshake.Message {
	r := m.Random.MarshalFixed()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serverRandom = r[:]
	if m.CipherSuiteID != nil {
		s.suite = dtls.CipherSuiteID(*m.CipherSuiteID)
	}
	s.profile = 0
	for _, e := range m.Extensions {
		if u, ok := e.(*extension.UseSRTP); ok && len(u.ProtectionProfiles) == 1 {
			s.profile = srtp.ProtectionProfile(u.ProtectionProfiles[0])
		}
	}
	return &m
}

// Write takes pion's key log: lines "CLIENT_RANDOM <client random hex>
// <master secret hex>" (NSS's format). Nothing else is kept.
func (s *DTLSSecrets) Write(p []byte) (int, error) {
	sc := bufio.NewScanner(bytes.NewReader(p))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "CLIENT_RANDOM" {
			continue
		}
		cr, err1 := hex.DecodeString(f[1])
		ms, err2 := hex.DecodeString(f[2])
		if err1 != nil || err2 != nil {
			continue
		}
		s.mu.Lock()
		s.clientRandom, s.master = cr, ms
		s.mu.Unlock()
	}
	return len(p), nil
}

// NoteDatagram takes the ServerHello from a datagram the connection read,
// as its DTLS client; anything else is passed over. A later ServerHello
// replaces an earlier one (a retransmission is the same; one of an
// earlier handshake to the same port is not). It is called from the
// reading goroutine, before pion reads the datagram, until the
// connection is connected.
func (s *DTLSSecrets) NoteDatagram(b []byte) {
	// A DTLS record's first byte (RFC 9443): 20-63; a handshake's is 22.
	if len(b) < recordlayer.FixedHeaderSize+handshake.HeaderLength || b[0] != byte(protocol.ContentTypeHandshake) ||
		b[recordlayer.FixedHeaderSize] != byte(handshake.TypeServerHello) {
		return
	}
	records, err := recordlayer.UnpackDatagram(b)
	if err != nil {
		return
	}
	var rec recordlayer.RecordLayer
	if rec.Unmarshal(records[0]) != nil || rec.Header.Epoch != 0 {
		return
	}
	if h, ok := rec.Content.(*handshake.Handshake); ok {
		if m, ok := h.Message.(*handshake.MessageServerHello); ok {
			s.ServerHello(*m)
		}
	}
}

// SRTPConfig is the connection's SRTP profile and keys, as its DTLS
// client (isClient) or server: Local for what it sends, Remote for what
// it reads.
func (s *DTLSSecrets) SRTPConfig(isClient bool) (srtp.Config, error) {
	cfg := srtp.Config{Profile: s.srtpProfile()}
	if cfg.Profile == 0 {
		return cfg, errNoSecrets
	}
	err := cfg.ExtractSessionKeysFromDTLS(s, isClient)
	return cfg, err
}

func (s *DTLSSecrets) srtpProfile() srtp.ProtectionProfile {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.profile
}

var errNoSecrets = errors.New("rtc: the DTLS handshake's secrets were not caught")

// ExportKeyingMaterial is RFC 5705's exporter for DTLS 1.2, as
// dtls.State's: the TLS PRF (P_hash of the suite's hash, SHA-256 unless
// the suite names SHA-384) over the master secret, with the label and the
// client and server randoms as seed. No context is used by DTLS-SRTP.
func (s *DTLSSecrets) ExportKeyingMaterial(label string, context []byte, length int) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.master == nil || s.serverRandom == nil || s.clientRandom == nil || len(context) != 0 {
		return nil, errNoSecrets
	}
	seed := make([]byte, 0, len(label)+len(s.clientRandom)+len(s.serverRandom))
	seed = append(append(append(seed, label...), s.clientRandom...), s.serverRandom...)
	var h func() hash.Hash = sha256.New
	if strings.HasSuffix(dtls.CipherSuiteName(s.suite), "SHA384") {
		h = sha512.New384
	}
	return prf.PHash(s.master, seed, length, h)
}
