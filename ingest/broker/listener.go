package broker

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// tcpListener is the broker's TCP listener, in place of mochi's own.
// mochi v2.7.9 adds each connection to its clients' WaitGroup on the
// connection's own goroutine, with nothing ordering that before the Wait
// in its Close: a connection accepted while the broker closes is a data
// race, and may be missed by the Wait. Here every connection runs under a
// WaitGroup of the listener's, added before its goroutine starts and never
// after Close began; Close waits for the accept loop, then for every
// connection, so that when mochi's own Wait runs nothing can be added.
//
// A connection that never sends CONNECT would hold that wait for ever
// (mochi reads it without a deadline): after closeWait, Close closes what
// is still open and says so (closeErr).
type tcpListener struct {
	id, addr string
	ln       net.Listener
	log      *slog.Logger

	mu        sync.Mutex
	closed    bool
	serving   bool
	serveDone chan struct{}
	open      map[net.Conn]struct{}
	conns     sync.WaitGroup
	closeErr  error
}

var _ listeners.Listener = (*tcpListener)(nil)

func newTCPListener(id, addr string) *tcpListener {
	return &tcpListener{id: id, addr: addr, serveDone: make(chan struct{}), open: map[net.Conn]struct{}{}}
}

func (l *tcpListener) ID() string       { return l.id }
func (l *tcpListener) Protocol() string { return "tcp" }

// Address is the listening address, with the real port once listening.
func (l *tcpListener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.addr
}

// Init opens the address.
func (l *tcpListener) Init(log *slog.Logger) error {
	l.log = log
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return err
	}
	l.ln = ln
	return nil
}

// Serve accepts connections until Close, each handed to establish on a
// goroutine of its own.
func (l *tcpListener) Serve(establish listeners.EstablishFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.serving = true
	l.mu.Unlock()
	defer close(l.serveDone)
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			return // closed
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = conn.Close()
			return
		}
		l.open[conn] = struct{}{}
		l.conns.Add(1)
		l.mu.Unlock()
		go func() {
			defer l.conns.Done()
			if err := establish(l.id, conn); err != nil && l.log != nil {
				l.log.Debug("mqtt connection ended", "client", conn.RemoteAddr().String(), "err", err)
			}
			l.mu.Lock()
			delete(l.open, conn)
			l.mu.Unlock()
		}()
	}
}

// Close stops accepting, ends the clients (closeClients) and waits for
// every connection; calls after the first return at once.
func (l *tcpListener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	serving := l.serving
	l.mu.Unlock()
	if l.ln != nil {
		_ = l.ln.Close()
	}
	if serving {
		<-l.serveDone // no connection is added after this
	}
	closeClients(l.id)
	done := make(chan struct{})
	go func() {
		l.conns.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-time.After(closeWait):
	}
	l.mu.Lock()
	stuck := len(l.open)
	for c := range l.open {
		_ = c.Close() // ends mochi's read of a CONNECT that never came
	}
	l.mu.Unlock()
	<-done
	l.closeErr = fmt.Errorf("mqtt broker: closed %d connection(s) still open %s after closing (that never sent CONNECT)", stuck, closeWait)
}
