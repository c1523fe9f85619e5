package turn

import (
	"errors"
	"net"
	"sync"

	pionturn "github.com/pion/turn/v5"
)

// errTCPRelay refuses TCP relay allocations (RFC 6062).
var errTCPRelay = errors.New("tcp relay allocations are not supported")

// errClosed is what a socket made while the server closes gets.
var errClosed = errors.New("turn server closed")

// errPortOutOfRange refuses a relay port a client asked for (EVEN-PORT,
// RESERVATION-TOKEN) outside the configured range.
var errPortOutOfRange = errors.New("requested relay port out of range")

// relayGenerator makes the relay address generator of one listener.
func (s *Server) relayGenerator(p Params, bindIP net.IP) pionturn.RelayAddressGenerator {
	bind := bindIP.String()
	if bindIP.IsUnspecified() {
		bind = "0.0.0.0"
		if bindIP.To4() == nil {
			bind = "::"
		}
	}
	g := &relayGen{s: s, min: p.RelayPortMin, max: p.RelayPortMax}
	if p.RelayPortMin == 0 {
		g.RelayAddressGenerator = &pionturn.RelayAddressGeneratorStatic{RelayAddress: s.relayIP, Address: bind}
	} else {
		g.RelayAddressGenerator = &pionturn.RelayAddressGeneratorPortRange{
			RelayAddress: s.relayIP, Address: bind, MinPort: p.RelayPortMin, MaxPort: p.RelayPortMax,
		}
	}
	return g
}

// relayGen wraps one of pion's generators. It tracks each relay socket so
// Close can close it, refuses TCP relays, and keeps ports a client asks
// for inside the configured range (pion's range generator takes them as
// they come).
//
// TCP relays (RFC 6062, REQUESTED-TRANSPORT TCP) are refused: WebRTC
// clients, browsers and pion alike, only ask for UDP relays (even over a
// TCP control connection), and a TCP relay would have the server open
// TCP connections to whatever peer a client names.
type relayGen struct {
	pionturn.RelayAddressGenerator
	s        *Server
	min, max uint16
}

func (g *relayGen) AllocatePacketConn(conf pionturn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	if g.min != 0 && conf.RequestedPort != 0 &&
		(conf.RequestedPort < int(g.min) || conf.RequestedPort > int(g.max)) {
		return nil, nil, errPortOutOfRange
	}
	conn, addr, err := g.RelayAddressGenerator.AllocatePacketConn(conf)
	if err != nil {
		return nil, nil, err
	}
	tc := &trackedPacketConn{PacketConn: conn, s: g.s}
	if !g.s.track(tc) {
		_ = conn.Close()
		return nil, nil, errClosed
	}
	return tc, addr, nil
}

func (g *relayGen) AllocateListener(pionturn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, errTCPRelay
}

func (g *relayGen) AllocateConn(pionturn.AllocateConnConfig) (net.Conn, error) {
	return nil, errTCPRelay
}

// trackedPacketConn is a relay socket; closing it more than once is
// harmless, since both Close and pion close it.
type trackedPacketConn struct {
	net.PacketConn
	s    *Server
	once sync.Once
	err  error
}

func (c *trackedPacketConn) Close() error {
	c.once.Do(func() {
		c.s.untrack(c)
		c.err = c.PacketConn.Close()
	})
	return c.err
}

// trackingListener tracks the clients' TCP connections, which pion's
// Close leaves open.
type trackingListener struct {
	net.Listener
	s *Server
}

func (l *trackingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: conn, s: l.s}
	if !l.s.track(tc) {
		_ = conn.Close()
		return nil, net.ErrClosed // ends pion's accept loop
	}
	return tc, nil
}

// trackedConn is a client's TCP connection; closing it more than once is
// harmless, since both Close and pion close it.
type trackedConn struct {
	net.Conn
	s    *Server
	once sync.Once
	err  error
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.s.untrack(c)
		c.err = c.Conn.Close()
	})
	return c.err
}
