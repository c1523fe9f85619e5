//go:build norace_only

package broker

// Built only with -tags norace_only, and run by `make test` without the race
// detector: mochi v2.7.9 adds a connection to its clients' WaitGroup on its
// accept goroutine with nothing ordering that before a Wait, which the race
// detector reports for any Wait while a connection is being accepted
// (here, one that never sends CONNECT).

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A connection that never sends CONNECT does not hold Close for longer
// than closeWait; Close says so.
func TestNoRaceCloseDoesNotWaitForASilentConnection(t *testing.T) {
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
	time.Sleep(100 * time.Millisecond) // accepted
	began := time.Now()
	err = b.Close()
	if took := time.Since(began); took > closeWait+time.Second {
		t.Fatalf("Close took %s", took)
	}
	if err == nil || !strings.Contains(err.Error(), "never sent CONNECT") {
		t.Fatalf("Close: %v", err)
	}
}
