package pipeline

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lookout-cc/lookout/devices"
	"github.com/lookout-cc/lookout/ingest/spool"
	"github.com/lookout-cc/lookout/ingest/tsdb"
)

// flakyStore is a store that can be switched off, or made to refuse points
// for good; it records what it took, in order.
type flakyStore struct {
	mu        sync.Mutex
	down      bool
	permanent bool
	got       []tsdb.Point
}

func (s *flakyStore) Write(_ context.Context, ps []tsdb.Point) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.permanent {
		return &tsdb.PermanentError{Err: errors.New("field type conflict")}
	}
	if s.down {
		return errors.New("connection refused")
	}
	s.got = append(s.got, ps...)
	return nil
}
func (s *flakyStore) set(down, permanent bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down, s.permanent = down, permanent
}
func (s *flakyStore) points() []tsdb.Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}
func (s *flakyStore) Query(context.Context, tsdb.Query) ([]tsdb.Sample, error) { return nil, nil }
func (s *flakyStore) Latest(context.Context, string) ([]tsdb.Point, error)     { return nil, nil }
func (s *flakyStore) Check(context.Context) error                              { return nil }
func (s *flakyStore) Close() error                                             { return nil }

// knownDevices are the devices the pipeline knows: true enabled, false
// disabled.
type knownDevices map[devices.ID]bool

func (k knownDevices) Lookup(id devices.ID) (devices.Device, bool) {
	enabled, ok := k[id]
	return devices.Device{ID: id, Disabled: !enabled}, ok
}

func newPipeline(t *testing.T, store tsdb.Store, log *bytes.Buffer, now func() time.Time) *Pipeline {
	t.Helper()
	sp, err := spool.Open(t.TempDir(), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := New(Params{Store: store, Spool: sp, Devices: knownDevices{"g1": true, "off": false}, Log: slog.New(slog.NewTextHandler(log, nil)),
		Metrics: prometheus.NewRegistry(), FlushInterval: 5 * time.Millisecond, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	pl.Start()
	t.Cleanup(func() { pl.Close(); sp.Close() })
	return pl
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Points that arrive while the store is down are spooled, and reach the
// store in their order, before anything newer, when it is back.
func TestStoreOutageKeepsOrder(t *testing.T) {
	store := &flakyStore{}
	var log bytes.Buffer
	pl := newPipeline(t, store, &log, time.Now)
	for i := 0; i < 100; i++ {
		if i == 20 {
			waitUntil(t, func() bool { return len(store.points()) == 20 })
			store.set(true, false)
		}
		if i == 60 {
			waitUntil(t, func() bool { return pl.p.Spool.Points() > 0 })
			store.set(false, false)
		}
		pl.HandleTelemetry("lookout/v1/devices/g1/telemetry", []byte(`{"ts": `+itoa(1_763_800_000_000+int64(i))+`, "v": `+itoa(int64(i))+`}`))
	}
	waitUntil(t, func() bool { return len(store.points()) == 100 })
	for i, p := range store.points() {
		if p.Value != float64(i) {
			t.Fatalf("point %d has value %v: out of order", i, p.Value)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A store that refuses points for good does not stall the pipeline: they
// are dropped and counted, and later points go through.
func TestPermanentRefusalIsDroppedNotRetried(t *testing.T) {
	store := &flakyStore{}
	var log bytes.Buffer
	pl := newPipeline(t, store, &log, time.Now)
	store.set(false, true)
	pl.HandleTelemetry("lookout/v1/devices/g1/telemetry", []byte(`{"v": 1}`))
	waitUntil(t, func() bool { return testutil.ToFloat64(pl.dropped.WithLabelValues("store_refused")) == 1 })
	store.set(false, false)
	pl.HandleTelemetry("lookout/v1/devices/g1/telemetry", []byte(`{"v": 2}`))
	waitUntil(t, func() bool { return len(store.points()) == 1 })
	if pl.p.Spool.Points() != 0 {
		t.Fatal("a permanent refusal went to the spool")
	}
}

// Refusals are counted every time but logged once per device per minute.
func TestRefusalsLoggedOncePerDevicePerMinute(t *testing.T) {
	now := time.Unix(1_763_800_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var log bytes.Buffer
	pl := newPipeline(t, &flakyStore{}, &log, clock)
	for i := 0; i < 50; i++ {
		pl.HandleTelemetry("lookout/v1/devices/g1/telemetry", []byte(`{"v": nope}`))
		pl.HandleTelemetry("lookout/v1/devices/ghost/telemetry", []byte(`{"v": 1}`))
	}
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	pl.HandleTelemetry("lookout/v1/devices/g1/telemetry", []byte(`{"v": nope}`))
	if n := strings.Count(log.String(), "telemetry refused"); n != 3 {
		t.Fatalf("%d log lines, want 3 (g1, ghost, g1 a minute later):\n%s", n, log.String())
	}
	if testutil.ToFloat64(pl.rejected.WithLabelValues("malformed")) != 51 || testutil.ToFloat64(pl.rejected.WithLabelValues("unknown_device")) != 50 {
		t.Fatal("refusals not all counted")
	}
}

// A disabled device's messages (an external broker may still let it in)
// are refused and counted; the others around them land.
func TestDisabledDeviceRefused(t *testing.T) {
	var log bytes.Buffer
	store := &flakyStore{}
	pl := newPipeline(t, store, &log, time.Now)
	pl.HandleTelemetry("lookout/v1/devices/off/telemetry", []byte(`{"v": 1}`))
	pl.HandleNMEA("lookout/v1/devices/off/nmea", []byte("!AIVDM,1,1,,A,13u?etPv2;0n:dDPwUM1U1Cb069D,0*23"))
	pl.HandleTelemetry("lookout/v1/devices/g1/telemetry", []byte(`{"v": 1}`))
	if got := testutil.ToFloat64(pl.rejected.WithLabelValues(string(ReasonDeviceDisabled))); got != 2 {
		t.Fatalf("%v disabled refusals counted, want 2", got)
	}
	if got := testutil.ToFloat64(pl.accepted); got != 1 {
		t.Fatalf("%v accepted, want 1", got)
	}
}
