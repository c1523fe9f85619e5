// Package rtc builds the pion WebRTC API that every Lookout peer connection
// is made with: the codecs command rooms and phones speak (Opus, H.264,
// VP8), the interceptors that keep media usable on weak links (NACK
// retransmission, RTCP reports, transport-wide congestion control feedback,
// simulcast header extensions), and ICE on one UDP port shared by every
// session, with ICE-TCP as the fallback for networks that block UDP.
//
// One port for all sessions is what a county's firewall team can open; it is
// also what MediaMTX and LiveKit do.
package rtc

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookout-cc/lookout/internal/pionlog"
)

// Params configure the engine.
type Params struct {
	// UDPAddr is the single UDP port for every session's ICE, e.g.
	// "0.0.0.0:7882".
	UDPAddr string
	// TCPAddr is the ICE-TCP fallback port; "" turns ICE-TCP off.
	TCPAddr string
	// PublicIPs are advertised as host candidates in place of the local
	// addresses, for a server behind 1:1 NAT.
	PublicIPs []string
	Log       *slog.Logger
	// DirectSend gives meeting subscriber connections a direct sender
	// (direct.go); off, NewDirectSubscriberPeerConnection gives none and
	// their media goes through pion's SRTP path.
	DirectSend bool
	// DirectReceive gives meeting publisher connections a direct receiver
	// (directrecv.go); off, NewDirectPublisherPeerConnection gives none
	// and their media goes through pion's whole receive path.
	DirectReceive bool
	// Metrics, if set, gets the UDP port's counters
	// (lookout_webrtc_udp_datagrams_total,
	// lookout_webrtc_udp_refused_total), the direct senders'
	// (lookout_webrtc_direct_packets_total, _rtcp_total,
	// _rtcp_refused_total) and the direct receivers'
	// (lookout_webrtc_direct_received_total, _received_refused_total).
	Metrics prometheus.Registerer
}

func registerSendQueue(reg prometheus.Registerer, q *sendQueue, direct, directRTCP, directRTCPRefused, received, receivedRefused *atomic.Uint64) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lookout_webrtc_udp_datagrams_total",
			Help: "Datagrams sent from the shared ICE UDP port."},
			func() float64 { return float64(q.sent.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lookout_webrtc_udp_refused_total",
			Help: "Datagrams the kernel would not send from the shared ICE UDP port, dropped."},
			func() float64 { return float64(q.Refused()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lookout_webrtc_direct_packets_total",
			Help: "Meeting RTP packets the SFU's direct senders encrypted and queued themselves (webrtc.direct_send)."},
			func() float64 { return float64(direct.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lookout_webrtc_direct_rtcp_total",
			Help: "Meeting subscribers' RTCP packets (datagrams) the SFU's direct senders took off the UDP port themselves."},
			func() float64 { return float64(directRTCP.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lookout_webrtc_direct_rtcp_refused_total",
			Help: "SRTCP datagrams the direct senders dropped: replayed, or too short."},
			func() float64 { return float64(directRTCPRefused.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lookout_webrtc_direct_received_total",
			Help: "Meeting publishers' RTP packets the SFU's direct receivers took off the UDP port and decrypted themselves (webrtc.direct_receive)."},
			func() float64 { return float64(received.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lookout_webrtc_direct_received_refused_total",
			Help: "Publishers' SRTP datagrams the direct receivers dropped (replayed, too short, or not authentic once their stream was) or gave back to pion with their stream (not authentic at the stream's first)."},
			func() float64 { return float64(receivedRefused.Load()) }),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("webrtc udp metrics: %w", err)
		}
	}
	return nil
}

// udpReadBuffer is the receive buffer asked for the shared UDP socket:
// about 4,000 full-size datagrams, 0.3 s of 60 publishers' media.
const udpReadBuffer = 4 << 20

// firstSTUNTimeout bounds the wait for an ICE-TCP connection's first STUN
// message.
const firstSTUNTimeout = 5 * time.Second

// Engine owns the ICE sockets and the configured API.
//
// Lifecycle: New opens the sockets; Close closes them, after which the
// peer connections made by the engine no longer carry media.
type Engine struct {
	api *webrtc.API
	// subAPI makes the connections that send meeting media to a
	// participant: they negotiate transport-wide sequence numbers and
	// feedback, which the meeting SFU writes and reads itself (sfu/bwe).
	subAPI *webrtc.API
	// subSE and subME are subAPI's, for the direct senders' connections,
	// each with its own DTLS hooks (direct.go).
	subSE webrtc.SettingEngine
	subME *webrtc.MediaEngine
	sendQ *sendQueue
	// directSend is Params.DirectSend; directPackets counts what the
	// direct senders sent.
	directSend    bool
	directPackets atomic.Uint64
	// directRTCP counts the RTCP datagrams the direct senders took,
	// directRTCPRefused those they dropped.
	directRTCP, directRTCPRefused atomic.Uint64
	// directReceive is Params.DirectReceive; directReceived counts the
	// packets the direct receivers took, directReceiveRefused those they
	// dropped or gave back.
	directReceive                        bool
	directReceived, directReceiveRefused atomic.Uint64
	// se, me and ir are api's, for the direct receivers' connections,
	// each with its own DTLS hooks and buffers (directrecv.go).
	se webrtc.SettingEngine
	me *webrtc.MediaEngine
	ir *interceptor.Registry

	udp    net.PacketConn
	tcp    net.Listener
	udpMux ice.UDPMux
	tcpMux ice.TCPMux
	// tcpConns is the ICE-TCP listener as the mux sees it: Close ends its
	// connections (tcplisten.go).
	tcpConns *connTracker
}

// New opens the ICE sockets and builds the API.
func New(p Params) (*Engine, error) {
	e := &Engine{directSend: p.DirectSend, directReceive: p.DirectReceive}
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	logs := pionlog.Factory{Log: p.Log, ErrorLevel: slog.LevelError}
	var err error
	if e.udp, err = net.ListenPacket("udp", p.UDPAddr); err != nil {
		return nil, fmt.Errorf("webrtc udp port: %w", err)
	}
	// Every publisher's media and every subscriber's RTCP come in on this
	// one socket, read by one goroutine: the kernel's default buffer
	// (208 KiB) overflowed in bursts with 60 publishers on two busy
	// cores. The kernel caps the size at net.core.rmem_max.
	if err := e.udp.(*net.UDPConn).SetReadBuffer(udpReadBuffer); err != nil {
		p.Log.Warn("webrtc udp port: receive buffer not enlarged", "err", err)
	}
	if e.sendQ, err = newSendQueue(e.udp.(*net.UDPConn), p.Log); err != nil {
		e.udp.Close()
		return nil, fmt.Errorf("webrtc udp port: %w", err)
	}
	e.udpMux = webrtc.NewICEUDPMux(logs.NewLogger("ice-udp"), e.sendQ)
	if p.Metrics != nil {
		if err := registerSendQueue(p.Metrics, e.sendQ, &e.directPackets, &e.directRTCP, &e.directRTCPRefused, &e.directReceived, &e.directReceiveRefused); err != nil {
			e.Close()
			return nil, err
		}
	}

	var se webrtc.SettingEngine
	se.LoggerFactory = logs
	se.SetICEUDPMux(e.udpMux)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// A viewer that vanishes (a wall screen switched off, a phone out of
	// coverage) is disconnected after 5 s without ICE traffic and given
	// up after 15 s, so its session and queue are freed.
	se.SetICETimeouts(5*time.Second, 15*time.Second, 2*time.Second)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if p.TCPAddr != "" {
		if e.tcp, err = net.Listen("tcp", p.TCPAddr); err != nil {
			e.Close()
			return nil, fmt.Errorf("webrtc tcp port: %w", err)
		}
		// Writes to a peer over TCP are queued (1 MiB per connection)
		// and dropped when the queue is full, so one stalled TCP peer
		// never holds up the goroutine forwarding a publisher's packets
		// to everyone.
		e.tcpConns = newConnTracker(e.tcp)
		// A connection must send its first STUN message within 5 s (pion's
		// default is 30 s): one that sends nothing holds a goroutine and a
		// socket until then.
		e.tcpMux = ice.NewTCPMuxDefault(ice.TCPMuxParams{Listener: e.tcpConns, Logger: logs.NewLogger("ice-tcp"),
			ReadBufferSize: 8, WriteBufferSize: 1 << 20, FirstStunBindTimeout: firstSTUNTimeout})
		se.SetICETCPMux(e.tcpMux)
		// The server only answers ICE-TCP; it never dials a candidate a
		// client names (which would let a client make it connect to any
		// address).
		se.DisableActiveTCP(true)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)
	if host, _, _ := net.SplitHostPort(p.UDPAddr); net.ParseIP(host).IsLoopback() {
		// Bound to loopback on purpose (tests, a same-host proxy): offer it.
		se.SetIncludeLoopbackCandidate(true)
	}
	if len(p.PublicIPs) > 0 {
		rule := webrtc.ICEAddressRewriteRule{External: p.PublicIPs, AsCandidateType: webrtc.ICECandidateTypeHost, Mode: webrtc.ICEAddressRewriteReplace}
		if err := se.SetICEAddressRewriteRules(rule); err != nil {
			e.Close()
			return nil, fmt.Errorf("webrtc public ips: %w", err)
		}
	}

	var me webrtc.MediaEngine
	if err := registerCodecs(&me); err != nil {
		e.Close()
		return nil, err
	}
	var ir interceptor.Registry
	if err := registerInterceptors(&me, &ir); err != nil {
		e.Close()
		return nil, err
	}
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: audioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		e.Close()
		return nil, err
	}
	e.api = webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(&me), webrtc.WithInterceptorRegistry(&ir))
	e.se, e.me, e.ir = se, &me, &ir
	if e.subAPI, err = e.subscriberAPI(se); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// subscriberAPI builds the API of the connections that send meeting
// media. It has no interceptors: the meeting SFU numbers each packet for
// transport-wide congestion control and reads the feedback into its own
// estimator (sfu/bwe), answers NACKs from one history per published layer
// (sfu/meeting/history.go) rather than pion's responder's copy of every
// packet for every subscriber, and makes its sender reports and reads the
// receiver reports itself (sfu/meeting/reports.go) rather than by pion's
// report and statistics interceptors, which take a lock and the time for
// every packet sent. Packets are not paced: the SFU forwards what
// publishers sent as it arrives (a layer is chosen to fit the estimate
// instead). Of pion's defaults only the SDP is kept: transport-cc
// feedback and its header extension, the simulcast extensions; NACK, PLI
// and RTX come with the codecs.
func (e *Engine) subscriberAPI(se webrtc.SettingEngine) (*webrtc.API, error) {
	var me webrtc.MediaEngine
	if err := registerCodecs(&me); err != nil {
		return nil, err
	}
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		me.RegisterFeedback(webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC}, kind)
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.TransportCCURI}, kind); err != nil {
			return nil, err
		}
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(&me); err != nil {
		return nil, err
	}
	e.subSE, e.subME = se, &me
	return e.subscriberAPIWith(se), nil
}

// subscriberAPIWith is the subscriber API with se in place of its setting
// engine (a direct sender's connection has DTLS hooks of its own). An
// empty interceptor registry, given explicitly: without one, pion
// registers its default interceptors.
func (e *Engine) subscriberAPIWith(se webrtc.SettingEngine) *webrtc.API {
	var none interceptor.Registry
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(e.subME), webrtc.WithInterceptorRegistry(&none))
}

// NewSubscriberPeerConnection makes a connection that sends meeting media.
func (e *Engine) NewSubscriberPeerConnection() (*webrtc.PeerConnection, error) {
	return e.subAPI.NewPeerConnection(webrtc.Configuration{})
}

// nackHistory is how many packets of each video stream a connection of the
// main API keeps to answer NACKs with (a camera's WHEP viewers; meetings
// answer from one history per published layer): at the 120 packets/s of a
// 720p stream, 2 s, far longer than a county link's round trip. pion's
// default, 1024 full-size packets, holds 1.5 MB for every stream sent.
const nackHistory = 256

// registerInterceptors registers pion's default interceptors (NACK
// responder, RTCP reports, simulcast header extensions, statistics, TWCC
// feedback) with a shorter NACK history, and its NACK generator bound to
// no stream.
func registerInterceptors(me *webrtc.MediaEngine, ir *interceptor.Registry) error {
	return webrtc.RegisterDefaultInterceptorsWithOptions(me, ir, webrtc.WithNackResponderOptions(nack.ResponderSize(nackHistory)),
		// The NACKs for what publishers lose on the way are the
		// meeting's own (sfu/meeting/nack.go): pion's generator does
		// not see packets repaired over RTX and asks for them again
		// until they leave its log. Bound to no stream (the SDP's nack
		// feedback comes with the codecs).
		webrtc.WithNackGeneratorOptions(nack.GeneratorStreamsFilter(func(*interceptor.StreamInfo) bool { return false })))
}

// audioLevelURI is the client-to-mixer audio level extension (RFC 6464),
// which active-speaker detection reads.
const audioLevelURI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

// registerCodecs offers Opus, H.264 (constrained baseline and baseline,
// packetization mode 1, as IP cameras and phones send), VP8 and H.265
// (for H.265 cameras, to browsers that decode it), with NACK, PLI, FIR and
// REMB feedback and RTX on video.
func registerCodecs(me *webrtc.MediaEngine) error {
	videoFeedback := []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	codecs := []struct {
		params webrtc.RTPCodecParameters
		kind   webrtc.RTPCodecType
	}{
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111}, webrtc.RTPCodecTypeAudio},
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: videoFeedback}, PayloadType: 102}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f", RTCPFeedback: videoFeedback}, PayloadType: 106}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFeedback}, PayloadType: 96}, webrtc.RTPCodecTypeVideo},
		// H.265 cameras play without transcoding to browsers that offer it.
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH265, ClockRate: 90000, RTCPFeedback: videoFeedback}, PayloadType: 49}, webrtc.RTPCodecTypeVideo},
	}
	for _, c := range codecs {
		if err := me.RegisterCodec(c.params, c.kind); err != nil {
			return fmt.Errorf("register %s: %w", c.params.MimeType, err)
		}
		// RTX (RFC 4588) for each video codec, at the next payload type:
		// retransmissions go on a stream of their own, so a receiver's
		// loss statistics and the sender's bandwidth probes stay apart
		// from the media (pion unwraps what it receives).
		if c.kind == webrtc.RTPCodecTypeVideo {
			rtx := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX, ClockRate: 90000,
				SDPFmtpLine: fmt.Sprintf("apt=%d", c.params.PayloadType)}, PayloadType: c.params.PayloadType + 1}
			if err := me.RegisterCodec(rtx, webrtc.RTPCodecTypeVideo); err != nil {
				return fmt.Errorf("register rtx for %s: %w", c.params.MimeType, err)
			}
		}
	}
	return nil
}

// NewPeerConnection makes a peer connection on the engine's sockets.
func (e *Engine) NewPeerConnection() (*webrtc.PeerConnection, error) {
	return e.api.NewPeerConnection(webrtc.Configuration{})
}

// UDPAddr is the shared ICE UDP address.
func (e *Engine) UDPAddr() net.Addr { return e.udp.LocalAddr() }

// TCPAddr is the ICE-TCP address, nil when ICE-TCP is off.
func (e *Engine) TCPAddr() net.Addr {
	if e.tcp == nil {
		return nil
	}
	return e.tcp.Addr()
}

// Close closes the ICE sockets.
func (e *Engine) Close() error {
	var errs []error
	if e.tcpConns != nil {
		e.tcpConns.closeConns()
	}
	if e.tcpMux != nil {
		errs = append(errs, e.tcpMux.Close())
	} else if e.tcp != nil {
		errs = append(errs, e.tcp.Close())
	}
	if e.udpMux != nil {
		errs = append(errs, e.udpMux.Close())
	} else if e.udp != nil {
		errs = append(errs, e.udp.Close())
	}
	return errors.Join(errs...)
}
