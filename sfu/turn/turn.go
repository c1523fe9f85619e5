// Package turn is the built-in TURN server (RFC 8656) for meeting
// clients that cannot reach the SFU directly: clients behind a symmetric
// NAT, whose server-reflexive candidates the SFU cannot answer, and
// clients behind firewalls that block UDP. They relay their media
// through it, over UDP, or over TCP where only TCP gets out. It wraps
// pion/turn with short-lived credentials in the TURN REST API style
// (Credentials), minted by the signaling server for each client.
package turn

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	pionturn "github.com/pion/turn/v5"

	"github.com/lookout-cc/lookout/internal/pionlog"
)

// MinSecretLen is the shortest shared secret New accepts, in bytes.
const MinSecretLen = 32

// closeWait bounds how long Close waits for pion to drop its allocations.
const closeWait = 2 * time.Second

// Errors of New.
var (
	// ErrNoListener: neither Params.UDPAddr nor Params.TCPAddr is set.
	ErrNoListener = errors.New("'UDPAddr' or 'TCPAddr' must be set")
	// ErrSecretTooShort: Params.Secret is shorter than MinSecretLen.
	ErrSecretTooShort = fmt.Errorf("'Secret' must be at least %d bytes", MinSecretLen)
	// ErrBadRelayIP: Params.RelayIP is not an IP address, or not of the
	// listen address's family.
	ErrBadRelayIP = errors.New("'RelayIP' must be an IP address of the listen address's family")
	// ErrRelayIPRequired: the server listens on an unspecified address
	// (0.0.0.0 or ::) and Params.RelayIP does not say which address to
	// advertise.
	ErrRelayIPRequired = errors.New("'RelayIP' is required when listening on an unspecified address")
	// ErrBadPortRange: RelayPortMin and RelayPortMax are not both 0 or
	// both set with RelayPortMin <= RelayPortMax.
	ErrBadPortRange = errors.New("'RelayPortMin' and 'RelayPortMax' must both be 0, or both set with min <= max")
)

// Params configure the server.
type Params struct {
	// UDPAddr and TCPAddr are the addresses to listen on, e.g.
	// "127.0.0.1:3478"; "" turns that transport off. At least one is
	// required. TCP is for clients whose networks block UDP: their
	// control connection is TCP, their relay on the server still UDP.
	UDPAddr, TCPAddr string

	// RelayIP is the IP advertised in relayed addresses, the one the SFU
	// and the clients send to. Relay sockets are bound to the listen IP
	// (UDPAddr's if set, else TCPAddr's), so behind a 1:1 NAT (a cloud
	// VM) this is the public IP. Default: the listen IP; when that is
	// unspecified (0.0.0.0 or ::) there is no sensible default (loopback
	// or a guessed interface would break every remote client without a
	// word), and New fails with ErrRelayIPRequired.
	RelayIP string

	// RelayPortMin and RelayPortMax bound the relay ports (inclusive),
	// e.g. to match a firewall rule; 0, 0 means any port.
	RelayPortMin, RelayPortMax uint16

	// Realm is the TURN realm; default "lookout".
	Realm string

	// Secret is the shared secret of the TURN REST credentials, at least
	// MinSecretLen bytes. New copies it.
	Secret []byte

	// AllowPeer says whether clients may relay to (or receive from) a
	// peer IP; it is asked on every CreatePermission and ChannelBind.
	// nil allows every peer, which is what the tests on loopback need.
	// A relay open to every peer lets anyone with credentials reach
	// services on the server's own networks (its loopback, the cloud's
	// metadata address, the LAN); in production, allow only the SFU's
	// own addresses (its ICE host and server-reflexive IPs).
	AllowPeer func(peer net.IP) bool

	// Log receives the server's logs and pion's; nil discards them.
	Log *slog.Logger
}

// Server is a TURN server.
//
// Lifecycle: New opens the listeners and serves at once; Close closes
// every socket (listeners, clients' TCP connections, relays) and is
// final. Credentials and ICEServers may be called at any time from any
// goroutine.
type Server struct {
	log     *slog.Logger
	realm   string
	secret  []byte
	relayIP net.IP
	udp     net.PacketConn // nil when UDP is off
	tcp     net.Listener   // nil when TCP is off
	turn    *pionturn.Server

	// deleted is nudged on each allocation pion drops, for Close.
	deleted chan struct{}

	mu     sync.Mutex
	closed bool
	// socks are the sockets Close must close itself, since pion's Close
	// does not: clients' TCP connections, and the relay sockets (so their
	// ports are free when Close returns).
	socks map[io.Closer]struct{}
}

// New checks p, opens the listeners and starts serving.
func New(p Params) (*Server, error) {
	if p.UDPAddr == "" && p.TCPAddr == "" {
		return nil, ErrNoListener
	}
	if len(p.Secret) < MinSecretLen {
		return nil, ErrSecretTooShort
	}
	if (p.RelayPortMin == 0) != (p.RelayPortMax == 0) || p.RelayPortMin > p.RelayPortMax {
		return nil, ErrBadPortRange
	}
	var relayIP net.IP
	if p.RelayIP != "" {
		if relayIP = net.ParseIP(p.RelayIP); relayIP == nil {
			return nil, ErrBadRelayIP
		}
	} else {
		// Fail before binding anything when the address says it already;
		// a host name that resolves to it is caught after listening.
		for _, a := range []string{p.UDPAddr, p.TCPAddr} {
			if host, _, err := net.SplitHostPort(a); err == nil && unspecified(host) {
				return nil, ErrRelayIPRequired
			}
		}
	}
	if p.Realm == "" {
		p.Realm = "lookout"
	}
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}

	s := &Server{
		log:     p.Log,
		realm:   p.Realm,
		secret:  append([]byte(nil), p.Secret...),
		deleted: make(chan struct{}, 1),
		socks:   map[io.Closer]struct{}{},
	}
	if err := s.listen(p); err != nil {
		s.closeListeners()
		return nil, err
	}

	// Relay sockets are bound to the listen IP, and advertise relayIP.
	var bindIP net.IP
	if s.udp != nil {
		bindIP = s.udp.LocalAddr().(*net.UDPAddr).IP
	} else {
		bindIP = s.tcp.Addr().(*net.TCPAddr).IP
	}
	switch {
	case relayIP == nil && bindIP.IsUnspecified():
		s.closeListeners()
		return nil, ErrRelayIPRequired
	case relayIP == nil:
		relayIP = bindIP
	case !bindIP.IsUnspecified() && (relayIP.To4() == nil) != (bindIP.To4() == nil):
		s.closeListeners()
		return nil, ErrBadRelayIP
	}
	s.relayIP = relayIP

	var permit pionturn.PermissionHandler
	if p.AllowPeer != nil {
		permit = func(client net.Addr, peer net.IP) bool {
			if p.AllowPeer(peer) {
				return true
			}
			s.log.Debug("turn peer refused", "src", addrString(client), "peer", peer.String())
			return false
		}
	}
	cfg := pionturn.ServerConfig{
		Realm:         p.Realm,
		AuthHandler:   s.authenticate,
		LoggerFactory: pionlog.Factory{Log: p.Log, ErrorLevel: slog.LevelWarn},
		EventHandler: pionturn.EventHandler{
			OnAuth: s.logAuthFailure,
			OnAllocationDeleted: func(net.Addr, net.Addr, string, string, string) {
				select {
				case s.deleted <- struct{}{}:
				default:
				}
			},
		},
	}
	// One generator per listener: pion calls them from each listener's
	// goroutines.
	if s.udp != nil {
		cfg.PacketConnConfigs = []pionturn.PacketConnConfig{{
			PacketConn:            s.udp,
			RelayAddressGenerator: s.relayGenerator(p, bindIP),
			PermissionHandler:     permit,
		}}
	}
	if s.tcp != nil {
		cfg.ListenerConfigs = []pionturn.ListenerConfig{{
			Listener:              &trackingListener{Listener: s.tcp, s: s},
			RelayAddressGenerator: s.relayGenerator(p, bindIP),
			PermissionHandler:     permit,
		}}
	}
	ts, err := pionturn.NewServer(cfg)
	if err != nil {
		s.closeListeners()
		return nil, fmt.Errorf("turn server: %w", err)
	}
	s.turn = ts

	s.log.Info("turn server listening", "udp", addrString(s.UDPAddr()), "tcp", addrString(s.TCPAddr()),
		"relay_ip", relayIP.String(), "relay_ports", portRange(p), "realm", p.Realm,
		"peers_restricted", p.AllowPeer != nil)
	return s, nil
}

func (s *Server) listen(p Params) error {
	if p.UDPAddr != "" {
		c, err := net.ListenPacket("udp", p.UDPAddr)
		if err != nil {
			return fmt.Errorf("turn udp listen: %w", err)
		}
		s.udp = c
	}
	if p.TCPAddr != "" {
		l, err := net.Listen("tcp", p.TCPAddr)
		if err != nil {
			return fmt.Errorf("turn tcp listen: %w", err)
		}
		s.tcp = l
	}
	return nil
}

// closeListeners undoes listen when New fails.
func (s *Server) closeListeners() {
	if s.udp != nil {
		_ = s.udp.Close()
	}
	if s.tcp != nil {
		_ = s.tcp.Close()
	}
}

// unspecified reports whether a listen host means every interface.
func unspecified(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

func portRange(p Params) string {
	if p.RelayPortMin == 0 {
		return "any"
	}
	return fmt.Sprintf("%d-%d", p.RelayPortMin, p.RelayPortMax)
}

// UDPAddr is the UDP listen address, nil when UDP is off.
func (s *Server) UDPAddr() net.Addr {
	if s.udp == nil {
		return nil
	}
	return s.udp.LocalAddr()
}

// TCPAddr is the TCP listen address, nil when TCP is off.
func (s *Server) TCPAddr() net.Addr {
	if s.tcp == nil {
		return nil
	}
	return s.tcp.Addr()
}

// Close stops the server. When it returns, the listeners, the clients'
// TCP connections and the relay sockets are closed, so their ports are
// free, and pion has dropped its allocations (it waits up to 2 s for
// that). Pion gives no handle on its goroutines; they end on their own
// once their sockets are closed. Close is final; calling it again does
// nothing.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true // from now on, track refuses (and closes) new sockets
	socks := s.socks
	s.socks = nil
	s.mu.Unlock()

	// Pion closes the listeners, and its listener goroutines then close
	// their allocations; but not the clients' TCP connections, whose
	// goroutines would serve on. Closing everything here is also what
	// makes the ports free by the time Close returns.
	err := s.turn.Close()
	for c := range socks {
		_ = c.Close()
	}

	// Each relay socket's goroutine drops its allocation when its socket
	// fails; wait for them, a bounded time.
	timeout := time.NewTimer(closeWait)
	defer timeout.Stop()
	for s.turn.AllocationCount() > 0 {
		select {
		case <-s.deleted:
		case <-timeout.C:
			s.log.Warn("turn server closed with allocations left", "allocations", s.turn.AllocationCount())
			return err
		}
	}
	return err
}

// track registers a socket for Close. It returns false once the server
// is closed; the caller then closes the socket itself.
func (s *Server) track(c io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.socks[c] = struct{}{}
	return true
}

func (s *Server) untrack(c io.Closer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.socks, c)
}
