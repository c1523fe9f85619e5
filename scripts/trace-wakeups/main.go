// Command trace-wakeups counts, in a Go runtime execution trace, the
// goroutine wake-ups (a goroutine made runnable after it waited) by the
// two innermost frames of the code that woke it, outside the runtime: where
// a server's hand-overs between goroutines are; a wake-up by the network
// poller or a timer is counted by where the woken goroutine waited (its
// read of a socket, its ticker). go tool trace shows each
// goroutine's waits but does not count wake-ups by their waker.
//
//	curl -o lookout.trace '127.0.0.1:6061/debug/pprof/trace?seconds=3'
//	go run . lookout.trace
//
// It is its own module (golang.org/x/exp/trace reads the trace), not part
// of Lookout's build or tests.
package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"golang.org/x/exp/trace"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: trace-wakeups TRACE-FILE")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "trace-wakeups:", err)
		os.Exit(1)
	}
}

func run(path string, out io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := trace.NewReader(f)
	if err != nil {
		return err
	}
	byWaker := map[string]int{}
	// waitedAt is where each goroutine last began to wait.
	waitedAt := map[trace.GoID]string{}
	total := 0
	var first, last trace.Time
	for {
		ev, err := r.ReadEvent()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if first == 0 {
			first = ev.Time()
		}
		last = ev.Time()
		if ev.Kind() != trace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind != trace.ResourceGoroutine {
			continue
		}
		from, to := st.Goroutine()
		if to == trace.GoWaiting {
			waitedAt[st.Resource.Goroutine()] = waker(ev.Stack())
		}
		if from != trace.GoWaiting || to != trace.GoRunnable {
			continue
		}
		total++
		w := waker(ev.Stack())
		if w == runtimeWaker {
			// Say which wait the poller or a timer ended.
			w += ", waking one waiting in " + waitedAt[st.Resource.Goroutine()]
		}
		byWaker[w]++
	}
	secs := float64(last.Sub(first)) / 1e9
	if secs <= 0 {
		return errors.New("no events")
	}
	fmt.Fprintf(out, "%d goroutine wake-ups in %.1f s: %.0f a second\n", total, secs, float64(total)/secs)
	type count struct {
		waker string
		n     int
	}
	var counts []count
	for w, n := range byWaker {
		counts = append(counts, count{w, n})
	}
	slices.SortFunc(counts, func(a, b count) int { return cmp.Compare(b.n, a.n) })
	for _, c := range counts[:min(25, len(counts))] {
		fmt.Fprintf(out, "%7d %5.1f%%  %s\n", c.n, 100*float64(c.n)/float64(total), c.waker)
	}
	return nil
}

// runtimeWaker names a wake-up with no code outside the runtime on the
// waker's stack: by the network poller or a timer.
const runtimeWaker = "(the runtime: network poller, timers)"

// waker is the two innermost frames outside the runtime of a stack: of the
// code that woke a goroutine, or where one began to wait; runtimeWaker
// if there are none.
func waker(s trace.Stack) string {
	var frames []string
	for f := range s.Frames() {
		if strings.HasPrefix(f.Func, "runtime.") || strings.HasPrefix(f.Func, "internal/") || strings.HasPrefix(f.Func, "sync.") {
			continue
		}
		frames = append(frames, f.Func)
		if len(frames) == 2 {
			break
		}
	}
	if len(frames) == 0 {
		return runtimeWaker
	}
	return strings.Join(frames, " < ")
}
