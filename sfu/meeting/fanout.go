package meeting

import (
	"runtime"
	"sync"

	"github.com/pion/rtp"

	"github.com/lookout-cc/lookout/internal/procs"
)

// fanout forwards a packet of a large room on several cores at once. A
// subscriber's write (pion's interceptors, SRTP and the socket) takes
// some microseconds, so one goroutine forwarding a packet to 200
// subscribers makes the last wait a few milliseconds behind the first;
// split across the cores, that wait shrinks by their number.
//
// The workers take parts of a packet's subscribers over an unbuffered
// channel: a part is handed over only to a worker that is idle at that
// moment, and the reader forwards any part no worker took itself, so a
// busy machine degrades to forwarding in the reader and a stopped pool
// costs nothing but that. While the server runs on one P (internal/procs
// gives the others back when the load is light) the reader forwards it
// all: a worker would only wait for the same P. Nothing is allocated per
// packet.
type fanout struct {
	jobs     chan fanoutJob
	quit     chan struct{}
	stopOnce sync.Once
	workers  int
	done     sync.WaitGroup
}

// fanoutJob is one part of a packet's subscribers.
type fanoutJob struct {
	downs []*downTrack
	layer int
	p     *rtp.Packet
	key   bool
	now   int64
	wg    *sync.WaitGroup
}

// fanoutPart is the fewest subscribers given to a goroutine of their own:
// below it the hand-over costs more than it saves.
const fanoutPart = 40

// newFanout starts n workers; nil (everything in the reader) when n < 1.
// The SFU starts one per core but the one the reader runs on.
func newFanout(n int) *fanout {
	if n < 1 {
		return nil
	}
	f := &fanout{jobs: make(chan fanoutJob), quit: make(chan struct{}), workers: n}
	f.done.Add(n)
	for range n {
		go f.work()
	}
	return f
}

func (f *fanout) work() {
	defer f.done.Done()
	for {
		select {
		case j := <-f.jobs:
			writeAll(j.downs, j.layer, j.p, j.key, j.now)
			j.wg.Done()
		case <-f.quit:
			return
		}
	}
}

// stop ends the workers; forwarding goes on in the readers. Calls after
// the first do nothing.
func (f *fanout) stop() {
	if f != nil {
		f.stopOnce.Do(func() { close(f.quit) })
		f.done.Wait()
	}
}

// forward writes p to every subscriber in downs and returns when all are
// written (p and its payload are the reader's to reuse then). wg is the
// reader's own, reused for every packet.
func (f *fanout) forward(downs []*downTrack, layer int, p *rtp.Packet, key bool, now int64, wg *sync.WaitGroup) {
	parts := 1
	if f != nil {
		parts = min(f.workers+1, procs.Active(), len(downs)/fanoutPart)
	}
	if parts <= 1 {
		writeAll(downs, layer, p, key, now)
		return
	}
	size := (len(downs) + parts - 1) / parts
	for start := size; start < len(downs); start += size {
		part := downs[start:min(start+size, len(downs))]
		wg.Add(1)
		select {
		case f.jobs <- fanoutJob{downs: part, layer: layer, p: p, key: key, now: now, wg: wg}:
		default: // no worker idle: forward it here
			wg.Done()
			writeAll(part, layer, p, key, now)
		}
	}
	writeAll(downs[:size], layer, p, key, now)
	wg.Wait()
}

func writeAll(downs []*downTrack, layer int, p *rtp.Packet, key bool, now int64) {
	one := procs.Active() == 1
	for i, d := range downs {
		d.write(layer, p, key, now)
		if one && i%fanoutYield == fanoutYield-1 && i < len(downs)-1 {
			runtime.Gosched()
		}
	}
}

// fanoutYield is how many subscribers' copies a fan-out on the only P
// writes before it lets the sender run: the sender's goroutine, made
// runnable by the first copy, would otherwise wait for the last. The
// yielding goroutine goes to the back of the run queue, behind any other
// room's; a room of fewer never yields.
const fanoutYield = 50
