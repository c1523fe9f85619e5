package rtc

import (
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newEngine(t *testing.T, tcp bool) *Engine {
	t.Helper()
	p := Params{UDPAddr: "127.0.0.1:0", DirectSend: true, DirectReceive: true, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if tcp {
		p.TCPAddr = "127.0.0.1:0"
	}
	e, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// clientAPI is a plain pion client, as a browser would be, limited to
// loopback and to the given networks.
func clientAPI(networks ...webrtc.NetworkType) *webrtc.API {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes(networks)
	var me webrtc.MediaEngine
	_ = me.RegisterDefaultCodecs()
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(&me))
}

// session connects a client that sends H.264 RTP and a data channel
// message to a server peer connection of the engine, and returns the
// server's answer SDP once media and data have arrived.
func session(t *testing.T, e *Engine, client *webrtc.API) string {
	t.Helper()
	cpc, err := client.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer cpc.Close()
	spc, err := e.NewPeerConnection()
	if err != nil {
		t.Fatal(err)
	}
	defer spc.Close()

	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video", "cam")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cpc.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	dc, err := cpc.CreateDataChannel("chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	dc.OnOpen(func() { _ = dc.SendText("你好") })

	gotRTP := make(chan string, 1)
	spc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if _, _, err := tr.ReadRTP(); err == nil {
			gotRTP <- tr.Codec().MimeType
		}
	})
	gotMsg := make(chan string, 1)
	spc.OnDataChannel(func(d *webrtc.DataChannel) {
		d.OnMessage(func(m webrtc.DataChannelMessage) { gotMsg <- string(m.Data) })
	})

	negotiate(t, cpc, spc)

	// Send RTP until the server has it (the first ones may precede DTLS).
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		seq := uint16(0)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				seq++
				_ = track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 3600, Marker: true},
					Payload: []byte{0x65, 0x88, 0x84, 0x00}})
			}
		}
	}()
	timeout := time.After(10 * time.Second)
	for got := 0; got < 2; got++ {
		select {
		case mime := <-gotRTP:
			if mime != webrtc.MimeTypeH264 {
				t.Fatalf("server got %s", mime)
			}
		case msg := <-gotMsg:
			if msg != "你好" {
				t.Fatalf("server got message %q", msg)
			}
		case <-timeout:
			t.Fatalf("no media and data within 10 s (ICE %s)", spc.ICEConnectionState())
		}
	}
	return spc.LocalDescription().SDP
}

// negotiate has offerer offer and answerer answer, each description with
// all its candidates (no trickle).
func negotiate(t *testing.T, offerer, answerer *webrtc.PeerConnection) {
	t.Helper()
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gather := webrtc.GatheringCompletePromise(offerer)
	if err := offerer.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gather
	if err := answerer.SetRemoteDescription(*offerer.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gather = webrtc.GatheringCompletePromise(answerer)
	if err := answerer.SetLocalDescription(answer); err != nil {
		t.Fatal(err)
	}
	<-gather
	if err := offerer.SetRemoteDescription(*answerer.LocalDescription()); err != nil {
		t.Fatal(err)
	}
}

func candidatePorts(sdp, proto string) []string {
	var ports []string
	for _, line := range strings.Split(sdp, "\r\n") {
		f := strings.Fields(strings.TrimPrefix(line, "a=candidate:"))
		if strings.HasPrefix(line, "a=candidate:") && len(f) > 5 && strings.EqualFold(f[2], proto) {
			ports = append(ports, f[5])
		}
	}
	return ports
}

// Every session's media flows through the one UDP port, counted in its
// metrics.
func TestSessionsShareOneUDPPort(t *testing.T) {
	reg := prometheus.NewRegistry()
	e, err := New(Params{UDPAddr: "127.0.0.1:0", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	port := strconv.Itoa(e.UDPAddr().(*net.UDPAddr).Port)
	client := clientAPI(webrtc.NetworkTypeUDP4)
	for i := 0; i < 3; i++ {
		sdp := session(t, e, client)
		ports := candidatePorts(sdp, "udp")
		if len(ports) == 0 {
			t.Fatalf("no UDP candidate in the answer:\n%s", sdp)
		}
		for _, p := range ports {
			if p != port {
				t.Fatalf("candidate on port %s, want the shared %s", p, port)
			}
		}
	}
	// The server answered STUN and DTLS for each session from the port.
	datagrams := counter(t, reg, "lookout_webrtc_udp_datagrams_total")
	refused := counter(t, reg, "lookout_webrtc_udp_refused_total")
	if n := counter(t, reg, "lookout_webrtc_direct_packets_total"); n != 0 {
		t.Errorf("%v direct packets without a direct sender", n)
	}
	if datagrams < 3 || refused != 0 {
		t.Errorf("udp port metrics: %v datagrams sent, %v refused", datagrams, refused)
	}
}

// counter is the value of the registered counter named name.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}

// A client that cannot use UDP connects over ICE-TCP.
func TestICETCPFallback(t *testing.T) {
	e := newEngine(t, true)
	sdp := session(t, e, clientAPI(webrtc.NetworkTypeTCP4))
	port := strconv.Itoa(e.TCPAddr().(*net.TCPAddr).Port)
	ports := candidatePorts(sdp, "tcp")
	if len(ports) == 0 || ports[0] != port {
		t.Fatalf("tcp candidates %v, want port %s", ports, port)
	}
}

func TestBrokenSDPIsRefused(t *testing.T) {
	e := newEngine(t, false)
	pc, err := e.NewPeerConnection()
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, sdp := range []string{"", "v=0\r\n", "not sdp at all", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"} {
		if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err == nil {
			t.Errorf("accepted offer %q", sdp)
		}
	}
}

func TestPortInUse(t *testing.T) {
	e := newEngine(t, false)
	_, err := New(Params{UDPAddr: e.UDPAddr().String(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("second engine on %s: %v", e.UDPAddr(), err)
	}
}

// Behind 1:1 NAT the answer advertises the public address, on the shared port.
func TestPublicIPsAdvertised(t *testing.T) {
	e, err := New(Params{UDPAddr: "127.0.0.1:0", PublicIPs: []string{"203.0.113.7"}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	cpc, _ := clientAPI(webrtc.NetworkTypeUDP4).NewPeerConnection(webrtc.Configuration{})
	defer cpc.Close()
	if _, err := cpc.CreateDataChannel("x", nil); err != nil {
		t.Fatal(err)
	}
	offer, _ := cpc.CreateOffer(nil)
	_ = cpc.SetLocalDescription(offer)
	spc, _ := e.NewPeerConnection()
	defer spc.Close()
	if err := spc.SetRemoteDescription(offer); err != nil {
		t.Fatal(err)
	}
	answer, _ := spc.CreateAnswer(nil)
	gather := webrtc.GatheringCompletePromise(spc)
	_ = spc.SetLocalDescription(answer)
	<-gather
	sdp := spc.LocalDescription().SDP
	port := strconv.Itoa(e.UDPAddr().(*net.UDPAddr).Port)
	if !strings.Contains(sdp, "203.0.113.7 "+port+" typ host") || strings.Contains(sdp, "127.0.0.1 "+port) {
		t.Fatalf("answer does not advertise only the public address:\n%s", sdp)
	}
}

// An ICE-TCP connection that never sends its first STUN message (a
// browser that opened one and then chose UDP) does not hold up Close:
// pion's mux would wait for it until its first-message timeout.
func TestCloseEndsSilentICETCPConnections(t *testing.T) {
	e, err := New(Params{UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	var silent []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", e.TCPAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, c)
	}
	defer func() {
		for _, c := range silent {
			c.Close()
		}
	}()
	// The mux has taken them (its goroutines wait for their first message).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		e.tcpConns.mu.Lock()
		taken := len(e.tcpConns.conns)
		e.tcpConns.mu.Unlock()
		if taken == len(silent) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mux took %d of %d connections", taken, len(silent))
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- e.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(firstSTUNTimeout / 2):
		t.Fatalf("Close waited for the silent connections (over %s)", firstSTUNTimeout/2)
	}
	// The server closed them: a read sees the end.
	_ = silent[0].SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := silent[0].Read(make([]byte, 1)); err == nil {
		t.Fatal("a silent connection is still open")
	}
}

// The shared UDP socket's receive buffer is enlarged, as far as the
// kernel allows (net.core.rmem_max): the kernel's default overflowed with
// 60 publishers.
func TestUDPReceiveBufferEnlarged(t *testing.T) {
	e := newEngine(t, false)
	want := udpReadBuffer
	if b, err := os.ReadFile("/proc/sys/net/core/rmem_max"); err == nil {
		if max, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			want = min(want, max)
		}
	}
	raw, err := e.udp.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	if cerr := raw.Control(func(fd uintptr) { got, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF) }); cerr != nil || err != nil {
		t.Fatal(cerr, err)
	}
	// Linux reports twice what was set (its bookkeeping's share).
	if got < want {
		t.Fatalf("receive buffer %d bytes, want at least %d", got, want)
	}
	if want <= 212992 {
		t.Logf("net.core.rmem_max is %d: the buffer could not be enlarged here", want)
	}
}
