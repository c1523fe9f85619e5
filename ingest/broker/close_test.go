package broker

import (
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A connection that never sends CONNECT does not hold Close for longer
// than closeWait; Close closes it and says so. (It ran without the race
// detector while mochi's own listener was used: see listener.go.)
func TestCloseDoesNotWaitForASilentConnection(t *testing.T) {
	b, err := New(Params{Addr: "127.0.0.1:0", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	silent, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	waitAccepted(t, b, 1)
	began := time.Now()
	err = b.Close()
	if took := time.Since(began); took > closeWait+time.Second {
		t.Fatalf("Close took %s", took)
	}
	if err == nil || !strings.Contains(err.Error(), "never sent CONNECT") {
		t.Fatalf("Close: %v", err)
	}
	// The server closed it: a read sees the end.
	_ = silent.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Fatal("the silent connection is still open")
	}
}

// Connections arriving while the broker closes are all accepted and ended
// or refused, with nothing left running (goleak) and no data race (the
// suite runs with -race): mochi's own listener raced here.
func TestCloseWhileConnectionsArrive(t *testing.T) {
	for round := range 10 {
		b, err := New(Params{Addr: "127.0.0.1:0", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		addr := b.Addr()
		stop := make(chan struct{})
		dialed := make(chan struct{})
		var dials atomic.Int64
		go func() {
			defer close(dialed)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", addr, time.Second)
				dials.Add(1)
				if err != nil {
					continue // closed: keep trying until told to stop
				}
				if i%2 == 0 {
					// A CONNECT without credentials: refused.
					_, _ = c.Write([]byte{0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00})
				}
				c.Close()
			}
		}()
		// Close after a number of connections that grows with the round,
		// so the rounds close at different points of the dialing.
		for dials.Load() < int64(round) {
			runtime.Gosched()
		}
		if err := b.Close(); err != nil && !strings.Contains(err.Error(), "never sent CONNECT") {
			t.Fatalf("round %d: Close: %v", round, err)
		}
		close(stop)
		<-dialed
	}
}

// waitAccepted waits until the listener holds n accepted connections.
func waitAccepted(t *testing.T, b *Broker, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		b.listener.mu.Lock()
		got := len(b.listener.open)
		b.listener.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections accepted, want %d", got, n)
		}
	}
}
