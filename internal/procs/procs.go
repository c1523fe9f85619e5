// Package procs sizes the Go scheduler (GOMAXPROCS) to the server's load.
//
// With more Ps than the work needs, every goroutine made runnable while a
// P is idle wakes a second thread (the runtime's wakep), which mostly finds
// the goroutine already taken and sleeps again. A meeting's packet crosses
// several goroutines (the socket's reader, the track's reader, the fan-out,
// the sender), so on a lightly loaded server each packet costs kernel
// context switches that a single P would not. On two cores, with the
// load generator on the same cores, a meeting of 200 subscribers took a
// sixth less CPU on one P (3,300 context switches a second against 1,300)
// and ten rooms of six a fifth less (6,500 against 1,500); the forwarding
// delay's 99th percentile rose by a few milliseconds, as the fan-out is
// no longer split across the cores (docs/BENCHMARKS.md, "Meetings"). On a
// small virtual machine, as a county's command room often has, a context
// switch is dear.
//
// Run watches the process's CPU time and gives Ps back while the load is
// low, and takes them again as soon as it rises: the Ps in use are kept
// under growAt busy, so a fan-out's burst finds a P free, and one is given
// back only after the load has fitted in one P fewer for shrinkAfter. The
// CPU time says what the process got, not what it wanted: on a machine
// whose cores are busy with other work it may get less than growAt while
// its goroutines queue for the P, so a P is also taken when goroutines
// waited longer than growLatency for one (the runtime's scheduling
// latencies). No library does this: the runtime sets GOMAXPROCS from the
// CPUs and the cgroup's limit, not from the load.
//
// At its most the process runs with the runtime's default, which follows
// the cgroup's limit as it changes; while Ps are given back the runtime
// does not update it, and the limit is read again when they are taken
// back. An operator who sets GOMAXPROCS in the environment gets that
// fixed number: Run does nothing then.
package procs

import (
	"context"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

const (
	// growAt is how busy the Ps may be, over a tick, before one more is
	// taken: past it a packet's fan-out mostly waits for the one before
	// it.
	growAt = 0.75
	// shrinkAt is how busy one P fewer would be, at most, for one to be
	// given back; below growAt, so that a P given back is not taken
	// again at the next tick (the Ps given back also take their wake-ups
	// with them: the load falls when they go).
	shrinkAt = 0.6
	// growLatency is how long, at the 99th percentile of a tick, runnable
	// goroutines may wait for a P before one more is taken. On one P a
	// meeting's goroutines wait 0.5-1.3 ms at the 99th percentile, ten
	// rooms' 1-4 ms.
	growLatency = 5 * time.Millisecond
	// defaultTick is how often the process's CPU time is read.
	defaultTick = 500 * time.Millisecond
	// defaultShrinkAfter is how long the load must fit in one P fewer.
	defaultShrinkAfter = 5 * time.Second
)

var (
	// most is GOMAXPROCS as the process started: the CPUs, the cgroup's
	// limit or the environment's GOMAXPROCS.
	most = runtime.GOMAXPROCS(0)
	// active is the Ps Run last set (most until it runs).
	active atomic.Int32
)

func init() { active.Store(int32(most)) }

// Most is the most Ps the process runs with: GOMAXPROCS as it started.
// Pools of goroutines sized by cores are sized by it.
func Most() int { return most }

// Active is the Ps in use now, as Run set them; cheap enough to read per
// packet. Work split across goroutines for parallelism need not be split
// wider than this.
func Active() int { return int(active.Load()) }

// Config is how Run samples and decides; zero values take the defaults.
type Config struct {
	// Most is the most Ps; 0 is Most().
	Most int
	// Tick is how often the CPU time is read.
	Tick time.Duration
	// ShrinkAfter is how long the load must fit in one P fewer before
	// one is given back.
	ShrinkAfter time.Duration
	Log         *slog.Logger
}

// Run sets GOMAXPROCS from the process's CPU use until ctx ends, then
// gives it back to the runtime's default. It returns at once where the
// most is one P, or where the environment sets GOMAXPROCS.
func Run(ctx context.Context, cfg Config) {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	fixedMost := cfg.Most > 0
	if !fixedMost {
		cfg.Most = runtime.GOMAXPROCS(0)
	}
	if cfg.Tick <= 0 {
		cfg.Tick = defaultTick
	}
	if cfg.ShrinkAfter <= 0 {
		cfg.ShrinkAfter = defaultShrinkAfter
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Most <= 1 {
		return
	}
	// set gives the runtime its default back at the most, so that it
	// follows the cgroup's limit again, and reads what that is.
	set := func(n int) int {
		if n >= cfg.Most && !fixedMost {
			runtime.SetDefaultGOMAXPROCS()
			n = runtime.GOMAXPROCS(0)
			cfg.Most = n
		} else {
			runtime.GOMAXPROCS(n)
		}
		active.Store(int32(n))
		return n
	}
	defer set(cfg.Most)

	tick := time.NewTicker(cfg.Tick)
	defer tick.Stop()
	cur := runtime.GOMAXPROCS(0)
	active.Store(int32(cur))
	latencies := newSchedLatencies()
	lastCPU, ok := cpuTime()
	if !ok {
		cfg.Log.Warn("the process's CPU time cannot be read: the scheduler keeps its Ps")
		return
	}
	lastAt := time.Now()
	var low time.Duration
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		used, ok := cpuTime()
		now := time.Now()
		elapsed := now.Sub(lastAt)
		if !ok || elapsed <= 0 {
			continue
		}
		cores := (used - lastCPU).Seconds() / elapsed.Seconds()
		lastCPU, lastAt = used, now
		waited := latencies.p99()
		if cur == cfg.Most && !fixedMost {
			// At its most the runtime's default applies; the cgroup's
			// limit may have changed it.
			cur = runtime.GOMAXPROCS(0)
			cfg.Most = cur
			active.Store(int32(cur))
		}
		if cur > 1 && cores < shrinkAt*float64(cur-1) {
			low += elapsed
		} else {
			low = 0
		}
		next := decide(cur, cfg.Most, cores, waited, low, cfg.ShrinkAfter)
		if next != cur {
			cfg.Log.Debug("scheduler resized", "procs", next, "was", cur, "cores_used", math.Round(cores*100)/100, "wait_p99", waited)
			cur = set(next)
			low = 0
		}
	}
}

// decide gives the Ps to run with next: more at once when the Ps in use
// were busier than growAt over the last tick (as many as keep them under
// it) or goroutines waited longer than growLatency for one, one fewer
// when the load has fitted in one fewer for shrinkAfter.
func decide(cur, most int, cores float64, waited, low, shrinkAfter time.Duration) int {
	if cur < most && (cores > growAt*float64(cur) || waited > growLatency) {
		return min(most, max(cur+1, int(math.Ceil(cores/growAt))))
	}
	if cur > 1 && low >= shrinkAfter {
		return cur - 1
	}
	return cur
}

// schedLatencies reads how long runnable goroutines waited for a P, from
// the runtime's histogram, tick by tick.
type schedLatencies struct {
	sample []metrics.Sample
	last   []uint64
	delta  []uint64
}

func newSchedLatencies() *schedLatencies {
	return &schedLatencies{sample: []metrics.Sample{{Name: "/sched/latencies:seconds"}}}
}

// p99 is the 99th percentile of the waits since the last call; 0 when
// there were none or the runtime has no such histogram.
func (l *schedLatencies) p99() time.Duration {
	metrics.Read(l.sample)
	if l.sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0
	}
	h := l.sample[0].Value.Float64Histogram()
	first := l.last == nil
	l.delta = l.delta[:0]
	var total uint64
	for i, c := range h.Counts {
		d := c
		if !first && i < len(l.last) {
			d = c - l.last[i]
		}
		l.delta = append(l.delta, d)
		total += d
	}
	l.last = append(l.last[:0], h.Counts...)
	if first || total == 0 {
		return 0
	}
	return percentile(l.delta, h.Buckets, total, 0.99)
}

// percentile is the lower bound of the bucket the q-th wait falls in
// (buckets[i] to buckets[i+1] hold counts[i]).
func percentile(counts []uint64, buckets []float64, total uint64, q float64) time.Duration {
	want := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen >= want {
			lo := buckets[i]
			if math.IsInf(lo, -1) {
				return 0
			}
			return time.Duration(lo * float64(time.Second))
		}
	}
	return 0
}
