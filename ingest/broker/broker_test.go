package broker

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

// Every test leaves no goroutine behind once its broker is closed.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startBroker(t *testing.T) *Broker {
	t.Helper()
	b, err := New(Params{Addr: "127.0.0.1:0", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func connect(addr, user, pass string) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("t-" + user + "-" + randomHex(4)).
		SetUsername(user).SetPassword(pass).SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(3 * time.Second)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		return nil, context.DeadlineExceeded
	}
	return c, tok.Error()
}

func TestBrokerRefusesAnonymousAndUnknown(t *testing.T) {
	b := startBroker(t)
	svcUser, svcPass := b.ServiceCredentials()
	tests := []struct {
		name, user, pass string
		ok               bool
	}{
		{"anonymous", "", "", false},
		{"unknown user", "pump-7", "secret", false},
		{"service user, wrong password", svcUser, "guess", false},
		{"service user, empty password", svcUser, "", false},
		{"service user", svcUser, svcPass, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := connect(b.Addr(), tt.user, tt.pass)
			if tt.ok != (err == nil) {
				t.Fatalf("connect: %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "not Authorized") && !strings.Contains(err.Error(), "bad user name or password") {
				t.Fatalf("refusal says %q", err)
			}
			if c != nil {
				c.Disconnect(100)
			}
		})
	}
	if n := testutil.ToFloat64(b.refused.WithLabelValues("bad_credentials")); n != 3 {
		t.Fatalf("bad_credentials refusals counted %v, want 3", n)
	}
	if n := testutil.ToFloat64(b.refused.WithLabelValues("anonymous")); n != 1 {
		t.Fatalf("anonymous refusals counted %v, want 1", n)
	}
	if err := b.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestServiceClientPublishesAndSubscribes(t *testing.T) {
	b := startBroker(t)
	u, p := b.ServiceCredentials()
	sub, err := connect(b.Addr(), u, p)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Disconnect(100)
	got := make(chan string, 1)
	if tok := sub.Subscribe("lookout/v1/devices/+/telemetry", 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	pub, err := connect(b.Addr(), u, p)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Disconnect(100)
	pub.Publish("lookout/v1/devices/gauge-1/telemetry", 1, false, `{"water_level_m":1712.4}`).WaitTimeout(5 * time.Second)
	select {
	case m := <-got:
		if m != `{"water_level_m":1712.4}` {
			t.Fatalf("got %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("message not delivered")
	}
}

func TestAddressInUse(t *testing.T) {
	b := startBroker(t)
	b2, err := New(Params{Addr: b.Addr(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b2.Start(); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("second broker on %s: %v", b.Addr(), err)
	}
}

// Closing the broker while its clients' sessions end at the same moment
// finishes (mochi's own Close could deadlock on its clients' lock then).
func TestCloseWhileSessionsEnd(t *testing.T) {
	for round := 0; round < 10; round++ {
		b, err := New(Params{Addr: "127.0.0.1:0", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		u, p := b.ServiceCredentials()
		var clients []paho.Client
		for range 16 {
			c, err := connect(b.Addr(), u, p)
			if err != nil {
				b.Close()
				t.Fatal(err)
			}
			clients = append(clients, c)
		}
		var wg sync.WaitGroup
		for _, c := range clients[:8] {
			wg.Add(1)
			go func() { defer wg.Done(); c.Disconnect(0) }()
		}
		closed := make(chan struct{})
		go func() { b.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Close did not return", round)
		}
		wg.Wait()
		for _, c := range clients[8:] {
			c.Disconnect(0)
		}
	}
}
