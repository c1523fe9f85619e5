package procs

import (
	"context"
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
		low   time.Duration
		want  int
	}{
		{"idle at the most, not low for long", 2, 2, 0.05, time.Second, 2},
		{"idle at the most, low long enough", 2, 2, 0.05, after, 1},
		{"a fan-out of 200 at one P", 1, 2, 0.3, 0, 1},
		{"ten rooms of six at one P", 1, 2, 0.52, 0, 1},
		{"one P past growAt", 1, 2, 0.8, 0, 2},
		{"one P full", 1, 2, 1.0, 0, 2},
		{"never past the most", 2, 2, 1.9, 0, 2},
		{"grows by as many as keep them under growAt", 2, 8, 1.95, 0, 3},
		{"a burst on many cores", 4, 8, 3.9, 0, 6},
		{"busy but under growAt", 4, 8, 2.7, 0, 4},
		{"one fewer, not down to one at once", 4, 8, 0.2, after, 3},
		{"one P stays one", 1, 2, 0, after, 1},
		{"grow wins over a stale low", 2, 4, 1.6, after, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := decide(tc.cur, tc.most, tc.cores, tc.low, after); got != tc.want {
				t.Errorf("decide(%d, %d, %.2f, %s) = %d, want %d", tc.cur, tc.most, tc.cores, tc.low, got, tc.want)
			}
		})
	}
}

// TestRunFollowsTheLoad runs the controller on this test process: idle, it
// gives Ps back down to one; made busy, it takes them again; stopped, it
// leaves the most.
func TestRunFollowsTheLoad(t *testing.T) {
	if most < 2 {
		t.Skipf("GOMAXPROCS is %d: nothing to give back", most)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, Config{Tick: 20 * time.Millisecond, ShrinkAfter: 100 * time.Millisecond})
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
	if got := runtime.GOMAXPROCS(0); got != most {
		t.Fatalf("GOMAXPROCS %d after Run with one P at most, want it untouched (%d)", got, most)
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
