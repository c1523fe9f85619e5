package turn

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the scheme under test
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v5"
	"go.uber.org/goleak"

	"github.com/lookout-cc/lookout/internal/pionlog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testSecret = []byte("0123456789abcdef0123456789abcdef") // 32 bytes

// logBuf collects a server's logs, to check what they hold.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newServer starts a server on loopback, UDP and TCP on free ports,
// with edit applied to its Params; Close runs at cleanup.
func newServer(t *testing.T, edit func(*Params)) (*Server, *logBuf) {
	t.Helper()
	logs := &logBuf{}
	p := Params{
		UDPAddr: "127.0.0.1:0",
		TCPAddr: "127.0.0.1:0",
		Secret:  testSecret,
		Log:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&p)
	}
	s, err := New(p)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, logs
}

// newClient makes a pion TURN client of s over transport ("udp" or
// "tcp"), listening; everything is closed at cleanup. wrap, if set,
// wraps the client's socket.
func newClient(t *testing.T, s *Server, transport, username, password string,
	wrap func(net.PacketConn) net.PacketConn,
) *pionturn.Client {
	t.Helper()
	var conn net.PacketConn
	var server string
	switch transport {
	case "udp":
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn, server = c, s.UDPAddr().String()
	case "tcp":
		server = s.TCPAddr().String()
		c, err := net.Dial("tcp", server)
		if err != nil {
			t.Fatal(err)
		}
		conn = pionturn.NewSTUNConn(c)
	}
	if wrap != nil {
		conn = wrap(conn)
	}
	client, err := pionturn.NewClient(&pionturn.ClientConfig{
		STUNServerAddr: server,
		TURNServerAddr: server,
		Conn:           conn,
		Username:       username,
		Password:       password,
		LoggerFactory:  pionlog.Factory{Log: slog.New(slog.DiscardHandler)},
	})
	if err != nil {
		_ = conn.Close()
		t.Fatal(err)
	}
	if err := client.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		_ = conn.Close()
	})
	return client
}

// allocate allocates a relay, closed at cleanup (before its client).
func allocate(t *testing.T, c *pionturn.Client) net.PacketConn {
	t.Helper()
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	return relay
}

// echoPeer is a plain UDP socket on loopback that sends back what it
// gets.
func echoPeer(t *testing.T) *net.UDPAddr {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	t.Cleanup(func() { _ = pc.Close(); <-done })
	return pc.LocalAddr().(*net.UDPAddr)
}

// roundTrip sends msg through relay to peer and returns what comes back
// and from where. It resends a few times, since a datagram may beat the
// permission it needs.
func roundTrip(t *testing.T, relay net.PacketConn, peer net.Addr, msg []byte) ([]byte, net.Addr) {
	t.Helper()
	buf := make([]byte, 1500)
	for range 20 {
		if _, err := relay.WriteTo(msg, peer); err != nil {
			t.Fatalf("WriteTo: %v", err)
		}
		_ = relay.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		n, from, err := relay.ReadFrom(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			continue
		}
		if err != nil {
			t.Fatalf("ReadFrom: %v", err)
		}
		return buf[:n], from
	}
	t.Fatal("no echo through the relay")
	return nil, nil
}

// Tests 1 and 2: a real client allocates over UDP and over TCP, and its
// datagram goes to a plain UDP peer and back.
func TestRelay(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			s, _ := newServer(t, nil)
			user, pass, _ := s.Credentials("alice", time.Minute)
			relay := allocate(t, newClient(t, s, transport, user, pass, nil))

			relayAddr := relay.LocalAddr().(*net.UDPAddr)
			if !relayAddr.IP.Equal(net.IPv4(127, 0, 0, 1)) || relayAddr.Port == 0 {
				t.Fatalf("relayed address %v, want 127.0.0.1:<port>", relayAddr)
			}
			peer := echoPeer(t)
			msg := []byte("hello over " + transport + " \x00\xff")
			got, from := roundTrip(t, relay, peer, msg)
			if !bytes.Equal(got, msg) {
				t.Errorf("echo %q, want %q", got, msg)
			}
			if from.String() != peer.String() {
				t.Errorf("echo from %v, want %v", from, peer)
			}
		})
	}
}

// realmConn rewrites the server's realm in what the client receives, so
// the client answers the challenge with another realm.
type realmConn struct {
	net.PacketConn
	from, to []byte
}

func (c realmConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(p)
	if i := bytes.Index(p[:n], c.from); i >= 0 {
		copy(p[i:], c.to)
	}
	return n, addr, err
}

// Test 3: refused credentials fail the allocation, and leave the server
// serving.
func TestRefusals(t *testing.T) {
	s, logs := newServer(t, nil)
	good, goodPass, _ := s.Credentials("alice", time.Minute)
	expired, expiredPass, _ := s.Credentials("bob", -time.Minute)
	old := "1000000000:carol"
	future := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	elsewhere := func(c net.PacketConn) net.PacketConn {
		return realmConn{PacketConn: c, from: []byte("lookout"), to: []byte("elsewhe")}
	}

	tests := []struct {
		name     string
		user     string
		pass     string
		wrap     func(net.PacketConn) net.PacketConn
		wantLogs string
	}{
		{"wrong password", good, "bm90IHRoZSBwYXNzd29yZA==", nil, "wrong password"},
		{"password of another user", good, s.password(expired), nil, "wrong password"},
		{"expired by ttl", expired, expiredPass, nil, "expired"},
		{"crafted old expiry", old, s.password(old), nil, "expired"},
		{"no colon", future, s.password(future), nil, "malformed"},
		{"expiry not a number", "soon:dave", s.password("soon:dave"), nil, "malformed"},
		{"signed expiry", "+" + future + ":dave", s.password("+" + future + ":dave"), nil, "malformed"},
		{"colon in identity", future + ":a:b", s.password(future + ":a:b"), nil, "malformed"},
		{"unknown realm", good, goodPass, elsewhere, "unknown realm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, transport := range []string{"udp", "tcp"} {
				c := newClient(t, s, transport, tt.user, tt.pass, tt.wrap)
				if relay, err := c.Allocate(); err == nil {
					_ = relay.Close()
					t.Fatalf("%s: Allocate succeeded", transport)
				}
			}
			if !strings.Contains(logs.String(), tt.wantLogs) {
				t.Errorf("logs lack %q:\n%s", tt.wantLogs, logs.String())
			}
		})
	}

	// Still serving.
	relay := allocate(t, newClient(t, s, "udp", good, goodPass, nil))
	if got, _ := roundTrip(t, relay, echoPeer(t), []byte("still")); string(got) != "still" {
		t.Errorf("echo %q after the refusals", got)
	}

	for _, secret := range []string{goodPass, expiredPass, string(testSecret), base64.StdEncoding.EncodeToString(testSecret)} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs hold a password or the secret %q", secret)
		}
	}
}

// A TCP relay (RFC 6062) is refused; see relayGen.
func TestTCPRelayRefused(t *testing.T) {
	s, _ := newServer(t, nil)
	user, pass, _ := s.Credentials("alice", time.Minute)
	c := newClient(t, s, "tcp", user, pass, nil)
	if alloc, err := c.AllocateTCP(); err == nil {
		_ = alloc.Close()
		t.Fatal("AllocateTCP succeeded")
	}
}

func TestAllowPeer(t *testing.T) {
	tests := []struct {
		name  string
		allow func(net.IP) bool
		want  bool
	}{
		{"nil allows all", nil, true},
		{"allowed", func(ip net.IP) bool { return ip.IsLoopback() }, true},
		{"refused", func(ip net.IP) bool { return !ip.IsLoopback() }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newServer(t, func(p *Params) { p.AllowPeer = tt.allow })
			user, pass, _ := s.Credentials("alice", time.Minute)
			c := newClient(t, s, "udp", user, pass, nil)
			allocate(t, c)
			err := c.CreatePermission(echoPeer(t))
			if got := err == nil; got != tt.want {
				t.Errorf("CreatePermission: %v, want allowed=%v", err, tt.want)
			}
		})
	}
}

// A one-port range: the relay gets that port, and a second allocation,
// finding it taken, fails.
func TestRelayPortRange(t *testing.T) {
	free, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(free.LocalAddr().(*net.UDPAddr).Port)
	_ = free.Close()

	s, _ := newServer(t, func(p *Params) { p.RelayPortMin, p.RelayPortMax = port, port })
	user, pass, _ := s.Credentials("alice", time.Minute)
	relay := allocate(t, newClient(t, s, "udp", user, pass, nil))
	if got := relay.LocalAddr().(*net.UDPAddr).Port; got != int(port) {
		t.Fatalf("relay port %d, want %d", got, port)
	}
	if r2, err := newClient(t, s, "udp", user, pass, nil).Allocate(); err == nil {
		_ = r2.Close()
		t.Fatal("second allocation in a one-port range succeeded")
	}
}

// Test 4: the shape of credentials and ICE servers.
func TestICEServers(t *testing.T) {
	s, _ := newServer(t, nil)
	udpPort := strconv.Itoa(s.UDPAddr().(*net.UDPAddr).Port)
	tcpPort := strconv.Itoa(s.TCPAddr().(*net.TCPAddr).Port)
	udpOnly, _ := newServer(t, func(p *Params) { p.TCPAddr = "" })
	udpOnlyPort := strconv.Itoa(udpOnly.UDPAddr().(*net.UDPAddr).Port)

	tests := []struct {
		name string
		s    *Server
		host string
		want []string
	}{
		{"host name", s, "turn.example.com", []string{
			"turn:turn.example.com:" + udpPort + "?transport=udp",
			"turn:turn.example.com:" + tcpPort + "?transport=tcp",
		}},
		{"no host: the relay ip", s, "", []string{
			"turn:127.0.0.1:" + udpPort + "?transport=udp",
			"turn:127.0.0.1:" + tcpPort + "?transport=tcp",
		}},
		{"ipv6 host", s, "::1", []string{
			"turn:[::1]:" + udpPort + "?transport=udp",
			"turn:[::1]:" + tcpPort + "?transport=tcp",
		}},
		{"bracketed ipv6 host", s, "[::1]", []string{
			"turn:[::1]:" + udpPort + "?transport=udp",
			"turn:[::1]:" + tcpPort + "?transport=tcp",
		}},
		{"udp only", udpOnly, "h", []string{"turn:h:" + udpOnlyPort + "?transport=udp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			servers := tt.s.ICEServers("alice", time.Hour, tt.host)
			if len(servers) != 1 {
				t.Fatalf("%d servers, want 1", len(servers))
			}
			got := servers[0]
			if strings.Join(got.URLs, " ") != strings.Join(tt.want, " ") {
				t.Errorf("urls %q, want %q", got.URLs, tt.want)
			}
			expires, identity, err := parseUsername(got.Username)
			if err != nil || identity != "alice" {
				t.Fatalf("username %q: identity %q, %v", got.Username, identity, err)
			}
			if lo, hi := before.Add(time.Hour-time.Second), time.Now().Add(time.Hour); expires.Before(lo) || expires.After(hi) {
				t.Errorf("expires %v, want in [%v, %v]", expires, lo, hi)
			}
			mac := hmac.New(sha1.New, testSecret)
			mac.Write([]byte(got.Username))
			if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); got.Credential != want {
				t.Errorf("credential %q, want %q", got.Credential, want)
			}
		})
	}

	b, err := json.Marshal(ICEServer{URLs: []string{"turn:h:1?transport=udp"}, Username: "u", Credential: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"urls":["turn:h:1?transport=udp"],"username":"u","credential":"c"}`; string(b) != want {
		t.Errorf("json %s, want %s", b, want)
	}
}

func TestCredentials(t *testing.T) {
	s, _ := newServer(t, nil)
	long := strings.Repeat("é", 200) // 400 bytes
	tests := []struct {
		name, identity, want string
		ttl                  time.Duration
	}{
		{"plain", "alice", "alice", time.Minute},
		{"colon", "a:b", "a_b", time.Minute},
		{"control", "a\nb\x00", "a_b_", time.Minute},
		{"invalid utf-8", "a\xffb", "a_b", time.Minute},
		{"empty", "", "", time.Minute},
		{"long, cut on a rune", long, long[:256], time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, pass, expires := s.Credentials(tt.identity, tt.ttl)
			gotExp, identity, err := parseUsername(user)
			if err != nil {
				t.Fatalf("parse %q: %v", user, err)
			}
			if identity != tt.want {
				t.Errorf("identity %q, want %q", identity, tt.want)
			}
			if !gotExp.Equal(expires) {
				t.Errorf("username's expiry %v, returned %v", gotExp, expires)
			}
			if _, key, ok := s.authenticate(&pionturn.RequestAttributes{Username: user, Realm: "lookout"}); !ok ||
				!bytes.Equal(key, pionturn.GenerateAuthKey(user, "lookout", pass)) {
				t.Errorf("authenticate refuses fresh credentials, or keys them differently")
			}
		})
	}
}

// The auth handler alone: what it refuses, and the user id it gives.
func TestAuthenticate(t *testing.T) {
	s, _ := newServer(t, nil)
	good, _, _ := s.Credentials("alice", time.Minute)
	expired, _, _ := s.Credentials("alice", -time.Second)
	tests := []struct {
		name, user, realm, wantID string
		wantOK                    bool
	}{
		{"good", good, "lookout", "alice", true},
		{"expired", expired, "lookout", "", false},
		{"other realm", good, "other", "", false},
		{"empty realm", good, "", "", false},
		{"no colon", "9999999999", "lookout", "", false},
		{"empty expiry", ":alice", "lookout", "", false},
		{"space in expiry", " 9999999999:alice", "lookout", "", false},
		{"too many digits", "9999999999999999999:alice", "lookout", "", false},
		{"empty", "", "lookout", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, key, ok := s.authenticate(&pionturn.RequestAttributes{Username: tt.user, Realm: tt.realm})
			if ok != tt.wantOK || id != tt.wantID || (ok != (key != nil)) {
				t.Errorf("got (%q, %x, %v), want (%q, _, %v)", id, key, ok, tt.wantID, tt.wantOK)
			}
		})
	}
}

// Test 5: what New refuses.
func TestNewRefuses(t *testing.T) {
	tests := []struct {
		name string
		p    Params
		want error
	}{
		{"no addresses", Params{Secret: testSecret}, ErrNoListener},
		{"no secret", Params{UDPAddr: "127.0.0.1:0"}, ErrSecretTooShort},
		{"short secret", Params{UDPAddr: "127.0.0.1:0", Secret: testSecret[:31]}, ErrSecretTooShort},
		{"port min only", Params{UDPAddr: "127.0.0.1:0", Secret: testSecret, RelayPortMin: 50000}, ErrBadPortRange},
		{"port max only", Params{UDPAddr: "127.0.0.1:0", Secret: testSecret, RelayPortMax: 50000}, ErrBadPortRange},
		{"ports reversed", Params{UDPAddr: "127.0.0.1:0", Secret: testSecret, RelayPortMin: 50001, RelayPortMax: 50000}, ErrBadPortRange},
		{"relay ip not an ip", Params{UDPAddr: "127.0.0.1:0", Secret: testSecret, RelayIP: "example.com"}, ErrBadRelayIP},
		{"relay ip of another family", Params{UDPAddr: "127.0.0.1:0", Secret: testSecret, RelayIP: "::1"}, ErrBadRelayIP},
		{"unspecified listen ip", Params{UDPAddr: "0.0.0.0:0", Secret: testSecret}, ErrRelayIPRequired},
		{"no listen ip", Params{TCPAddr: ":0", Secret: testSecret}, ErrRelayIPRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.p)
			if err == nil {
				_ = s.Close()
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("New: %v, want %v", err, tt.want)
			}
		})
	}
}

// A failed New leaves nothing open: the UDP port it had bound before the
// TCP port failed is free again.
func TestNewFailureFreesPorts(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udpAddr := free.LocalAddr().String()
	_ = free.Close()

	if s, err := New(Params{UDPAddr: udpAddr, TCPAddr: busy.Addr().String(), Secret: testSecret}); err == nil {
		_ = s.Close()
		t.Fatal("New on a busy TCP port succeeded")
	}
	again, err := net.ListenPacket("udp4", udpAddr)
	if err != nil {
		t.Fatalf("UDP port still bound after a failed New: %v", err)
	}
	_ = again.Close()
}

// Test 5: Close ends the clients' TCP connections and frees every port:
// a new server binds the same ports, and the relay port is free.
func TestCloseFreesPorts(t *testing.T) {
	s, err := New(Params{UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0", Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	user, pass, _ := s.Credentials("alice", time.Minute)

	tcpConn, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer tcpConn.Close()
	udpRelay := allocate(t, newClient(t, s, "udp", user, pass, nil))
	tcpRelay := allocate(t, newClient(t, s, "tcp", user, pass, nil))
	// Longer than 4 bytes: pion's STUNConn holds back a ChannelData frame
	// of 8 bytes or less until more bytes come (consumeSingleTURNFrame).
	if got, _ := roundTrip(t, tcpRelay, echoPeer(t), []byte("in use")); string(got) != "in use" {
		t.Fatalf("echo %q", got)
	}

	udpAddr, tcpAddr := s.UDPAddr().String(), s.TCPAddr().String()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if n := s.turn.AllocationCount(); n != 0 {
		t.Errorf("%d allocations left after Close", n)
	}

	_ = tcpConn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := tcpConn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("client's TCP connection after Close: read %v, want EOF", err)
	}
	for _, relay := range []net.PacketConn{udpRelay, tcpRelay} {
		pc, err := net.ListenPacket("udp4", relay.LocalAddr().String())
		if err != nil {
			t.Errorf("relay port %v still bound: %v", relay.LocalAddr(), err)
			continue
		}
		_ = pc.Close()
	}
	s2, err := New(Params{UDPAddr: udpAddr, TCPAddr: tcpAddr, Secret: testSecret})
	if err != nil {
		t.Fatalf("New on the same ports: %v", err)
	}
	if err := s2.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestAddrs(t *testing.T) {
	tests := []struct {
		name         string
		edit         func(*Params)
		wantUDP, tcp bool
	}{
		{"both", nil, true, true},
		{"udp only", func(p *Params) { p.TCPAddr = "" }, true, false},
		{"tcp only", func(p *Params) { p.UDPAddr = "" }, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newServer(t, tt.edit)
			if got := s.UDPAddr() != nil; got != tt.wantUDP {
				t.Errorf("UDPAddr %v", s.UDPAddr())
			}
			if got := s.TCPAddr() != nil; got != tt.tcp {
				t.Errorf("TCPAddr %v", s.TCPAddr())
			}
		})
	}
}
