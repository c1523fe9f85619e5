// Package procs sizes the Go scheduler (GOMAXPROCS) to the server's load.
//
// With more Ps than the work needs, every goroutine made runnable while a
// P is idle wakes a second thread (the runtime's wakep), which mostly finds
// the goroutine already taken and sleeps again. A meeting's packet crosses
// several goroutines (the socket's reader, the track's reader, the fan-out,
// the sender), so on a lightly loaded server each packet costs kernel
// context switches that a single P would not. On two cores, one P takes a
// sixth less CPU for a meeting of 200 subscribers (3,300 context switches
// a second against 1,300) and a fifth less for ten rooms of six (6,500
// against 1,500), with no worse delay (docs/BENCHMARKS.md, "Meetings"). On
// a small virtual machine, as a county's command room often has, a
// context switch is dear.
//
// Run watches the process's CPU time and gives Ps back while the load is
// low, and takes them again as soon as it rises: the Ps in use are kept
// under growAt busy, so a fan-out's burst finds a P free, and one is given
// back only after the load has fitted in one P fewer for shrinkAfter. No
// library does this: the runtime sets GOMAXPROCS from the CPUs and the
// cgroup's limit, not from the load.
//
// An operator who sets GOMAXPROCS in the environment gets that fixed
// number; the server does not start Run then.
package procs

import (
	"context"
	"log/slog"
	"math"
	"runtime"
	"sync/atomic"
	"syscall"
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

// Run sets GOMAXPROCS from the process's CPU use until ctx ends, then sets
// it back to the most. It returns at once where the most is one P.
func Run(ctx context.Context, cfg Config) {
	if cfg.Most <= 0 {
		cfg.Most = most
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
	defer set(cfg.Most)

	tick := time.NewTicker(cfg.Tick)
	defer tick.Stop()
	cur := runtime.GOMAXPROCS(0)
	active.Store(int32(cur))
	lastCPU, lastAt := cpuTime(), time.Now()
	var low time.Duration
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			used := cpuTime()
			elapsed := now.Sub(lastAt)
			if elapsed <= 0 {
				continue
			}
			cores := (used - lastCPU).Seconds() / elapsed.Seconds()
			lastCPU, lastAt = used, now
			if cur > 1 && cores < shrinkAt*float64(cur-1) {
				low += elapsed
			} else {
				low = 0
			}
			next := decide(cur, cfg.Most, cores, low, cfg.ShrinkAfter)
			if next != cur {
				cfg.Log.Debug("scheduler resized", "procs", next, "was", cur, "cores_used", math.Round(cores*100)/100)
				cur = next
				set(cur)
				low = 0
			}
		}
	}
}

// decide gives the Ps to run with next: more at once when the Ps in use
// were busier than growAt over the last tick (as many as keep them under
// it), one fewer when the load has fitted in one fewer for shrinkAfter.
func decide(cur, most int, cores float64, low, shrinkAfter time.Duration) int {
	if cores > growAt*float64(cur) && cur < most {
		return min(most, max(cur+1, int(math.Ceil(cores/growAt))))
	}
	if cur > 1 && low >= shrinkAfter {
		return cur - 1
	}
	return cur
}

func set(n int) {
	runtime.GOMAXPROCS(n)
	active.Store(int32(n))
}

// cpuTime is the CPU time the process has used, in user space and in the
// kernel: on loopback and on a busy socket the kernel's part is half of a
// media server's.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
