package procs

import (
	"context"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	const after = 5 * time.Second
	tests := []struct {
		name  string
		cur   int
		most  int
		cores float64
		wait  time.Duration
		low   time.Duration
		want  int
	}{
		{"idle at the most, not low for long", 2, 2, 0.05, 0, time.Second, 2},
		{"idle at the most, low long enough", 2, 2, 0.05, 0, after, 1},
		{"a fan-out of 200 at one P", 1, 2, 0.3, time.Millisecond, 0, 1},
		{"ten rooms of six at one P", 1, 2, 0.52, 4 * time.Millisecond, 0, 1},
		{"one P past growAt", 1, 2, 0.8, 0, 0, 2},
		{"one P full", 1, 2, 1.0, 0, 0, 2},
		{"goroutines waiting for the one P on a busy machine", 1, 2, 0.6, 8 * time.Millisecond, 0, 2},
		{"waiting, at the most already", 2, 2, 0.6, 8 * time.Millisecond, 0, 2},
		{"never past the most", 2, 2, 1.9, 0, 0, 2},
		{"grows by as many as keep them under growAt", 2, 8, 1.95, 0, 0, 3},
		{"a burst on many cores", 4, 8, 3.9, 0, 0, 6},
		{"busy but under growAt", 4, 8, 2.7, 0, 0, 4},
		{"one fewer, not down to one at once", 4, 8, 0.2, 0, after, 3},
		{"one P stays one", 1, 2, 0, 0, after, 1},
		{"grow wins over a stale low", 2, 4, 1.6, 0, after, 3},
		{"a wait wins over a stale low", 2, 4, 0.1, 6 * time.Millisecond, after, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := decide(tc.cur, tc.most, tc.cores, tc.wait, tc.low, after); got != tc.want {
				t.Errorf("decide(%d, %d, %.2f, %s, %s) = %d, want %d", tc.cur, tc.most, tc.cores, tc.wait, tc.low, got, tc.want)
			}
		})
	}
}

// TestRunFollowsTheLoad runs the controller on this test process: idle, it
// gives Ps back down to one; made busy, it takes them again; stopped, it
// leaves the most.
//
// On a machine of one CPU the test gives Run a most of two: the runtime's
// default would leave nothing to give back.
func TestRunFollowsTheLoad(t *testing.T) {
	t.Setenv("GOMAXPROCS", "") // Run leaves a GOMAXPROCS the environment sets
	before := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(before)
	cfg := Config{Tick: 20 * time.Millisecond, ShrinkAfter: 100 * time.Millisecond}
	most := before
	if most < 2 {
		most, cfg.Most = 2, 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, cfg)
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	defer stop()

	waitUntil(t, "one P while idle", func() bool { return Active() == 1 && runtime.GOMAXPROCS(0) == 1 })

	// Goroutines that spin until the Ps are back, or for at most 10 s.
	var quit atomic.Bool
	var spinners sync.WaitGroup
	for range most {
		spinners.Go(func() {
			deadline := time.Now().Add(10 * time.Second)
			for !quit.Load() && time.Now().Before(deadline) {
				for range 10000 {
				}
			}
		})
	}
	waitUntil(t, "the most Ps while busy", func() bool { return Active() == most && runtime.GOMAXPROCS(0) == most })
	quit.Store(true)
	spinners.Wait()

	waitUntil(t, "one P again once idle", func() bool { return Active() == 1 })
	stop()
	if got := runtime.GOMAXPROCS(0); got != most || Active() != most {
		t.Fatalf("after Run: GOMAXPROCS %d, Active %d; want both %d", got, Active(), most)
	}
}

func TestRunDoesNothingAtOneP(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(context.Background(), Config{Most: 1})
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run with one P at most did not return")
	}
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Fatalf("GOMAXPROCS %d after Run with one P at most, want it untouched (%d)", got, before)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 15 s for %s: GOMAXPROCS %d, Active %d", what, runtime.GOMAXPROCS(0), Active())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPercentile(t *testing.T) {
	buckets := []float64{math.Inf(-1), 0, 0.001, 0.002, 0.005, math.Inf(1)}
	tests := []struct {
		name   string
		counts []uint64
		q      float64
		want   time.Duration
	}{
		{"all short", []uint64{0, 100, 0, 0, 0}, 0.99, 0},
		{"the 99th in the 2-5 ms bucket", []uint64{0, 90, 8, 2, 0}, 0.99, 2 * time.Millisecond},
		{"the 99th at the edge of a bucket", []uint64{0, 98, 1, 1, 0}, 0.99, time.Millisecond},
		{"past the last edge", []uint64{0, 0, 0, 0, 10}, 0.99, 5 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var total uint64
			for _, c := range tc.counts {
				total += c
			}
			if got := percentile(tc.counts, buckets, total, tc.q); got != tc.want {
				t.Errorf("percentile = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestSchedLatenciesSeesWaits keeps this process's one P busy with more
// goroutines than it can run: the waits read tick by tick must show it.
func TestSchedLatenciesSeesWaits(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	l := newSchedLatencies()
	l.p99() // the first reading is the baseline
	var quit atomic.Bool
	var spinners sync.WaitGroup
	for range 4 {
		spinners.Go(func() {
			for !quit.Load() {
				for range 10000 {
				}
			}
		})
	}
	var worst time.Duration
	deadline := time.Now().Add(10 * time.Second)
	for worst <= growLatency && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		worst = max(worst, l.p99())
	}
	quit.Store(true)
	spinners.Wait()
	if worst <= growLatency {
		t.Fatalf("four spinning goroutines on one P: the waits' 99th percentile was at most %s, want over %s", worst, growLatency)
	}
}
