package testpeers

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Viewer is a WebRTC receiver as a WHEP player is: a pion peer connection
// on a loopback UDP socket of its own, receiving one video track.
type Viewer struct {
	PC  *webrtc.PeerConnection
	mux ice.UDPMux

	mu      sync.Mutex
	packets []rtp.Packet
	first   time.Time
}

// H264 is the video codec a browser offers first.
var H264 = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
	SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, PayloadType: 102}

// NewViewer makes a viewer offering the codecs (H264 when none); it is
// closed when the test ends.
func NewViewer(t testing.TB, codecs ...webrtc.RTPCodecParameters) *Viewer {
	t.Helper()
	sock, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	mux := webrtc.NewICEUDPMux(nil, sock)
	se.SetICEUDPMux(mux)
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	var me webrtc.MediaEngine
	if len(codecs) == 0 {
		codecs = []webrtc.RTPCodecParameters{H264}
	}
	for _, c := range codecs {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			t.Fatal(err)
		}
	}
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(&me)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	v := &Viewer{PC: pc, mux: mux}
	t.Cleanup(func() { pc.Close(); mux.Close() })
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			v.mu.Lock()
			if len(v.packets) == 0 {
				v.first = time.Now()
			}
			v.packets = append(v.packets, *p)
			v.mu.Unlock()
		}
	})
	return v
}

// Offer makes the viewer's offer, with every candidate.
func (v *Viewer) Offer(t testing.TB) string {
	t.Helper()
	o, err := v.PC.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	g := webrtc.GatheringCompletePromise(v.PC)
	if err := v.PC.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	<-g
	return v.PC.LocalDescription().SDP
}

// Answer takes the server's answer.
func (v *Viewer) Answer(t testing.TB, sdp string) {
	t.Helper()
	if err := v.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		t.Fatal(err)
	}
}

// Packets returns the RTP packets received so far.
func (v *Viewer) Packets() []rtp.Packet {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]rtp.Packet(nil), v.packets...)
}

// First is when the first packet arrived (zero before).
func (v *Viewer) First() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.first
}

// Vanish closes the viewer's socket without a word, as a browser tab that
// is killed.
func (v *Viewer) Vanish() { v.mux.Close() }
