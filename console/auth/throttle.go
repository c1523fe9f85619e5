package auth

import (
	"sync"
	"time"
)

// Throttle slows down password guessing. It counts failed logins per key (a
// user name, a client address); after FreeFailures in a row each further
// attempt must wait BaseDelay, doubling with every failure up to MaxDelay.
// A success clears the user name's count; an address's count only fades, so
// a guesser cannot clear it by logging in to an account of their own.
//
// Written here rather than taken from golang.org/x/time/rate: a token bucket
// limits every request, where this must count failures only and back off
// exponentially per key.
type Throttle struct {
	FreeFailures int
	BaseDelay    time.Duration
	MaxDelay     time.Duration
	now          func() time.Time

	mu      sync.Mutex
	entries map[string]*throttleEntry
}

type throttleEntry struct {
	failures int
	last     time.Time
}

// maxThrottleEntries bounds the memory a flood of distinct keys can take.
const maxThrottleEntries = 100_000

// NewThrottle returns a throttle with the given limits.
func NewThrottle(free int, base, max time.Duration) *Throttle {
	return &Throttle{FreeFailures: free, BaseDelay: base, MaxDelay: max, now: time.Now, entries: map[string]*throttleEntry{}}
}

// Wait returns how long the caller must still wait before another attempt
// for any of keys is considered; zero means go ahead.
func (t *Throttle) Wait(keys ...string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var wait time.Duration
	for _, k := range keys {
		e, ok := t.entries[k]
		if !ok || e.failures < t.FreeFailures {
			continue
		}
		if w := e.last.Add(t.delay(e.failures)).Sub(now); w > wait {
			wait = w
		}
	}
	return wait
}

// delay is the wait after n failures in a row.
func (t *Throttle) delay(n int) time.Duration {
	d := t.BaseDelay
	for i := t.FreeFailures; i < n && d < t.MaxDelay; i++ {
		d *= 2
	}
	return min(d, t.MaxDelay)
}

// Fail records a failed attempt against each key.
func (t *Throttle) Fail(keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.entries) >= maxThrottleEntries {
		t.sweepLocked(now)
	}
	for _, k := range keys {
		e, ok := t.entries[k]
		if !ok {
			e = &throttleEntry{}
			t.entries[k] = e
		}
		e.failures++
		e.last = now
	}
}

// Succeed clears the counts of keys.
func (t *Throttle) Succeed(keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		delete(t.entries, k)
	}
}

// sweepLocked forgets keys idle for longer than the longest wait, and, if the
// table is still full, arbitrary others: losing a count only lets a guesser
// start over, keeping them would let a flood of keys exhaust memory.
func (t *Throttle) sweepLocked(now time.Time) {
	idle := 2 * t.MaxDelay
	for k, e := range t.entries {
		if now.Sub(e.last) > idle {
			delete(t.entries, k)
		}
	}
	for k := range t.entries {
		if len(t.entries) < maxThrottleEntries*9/10 {
			break
		}
		delete(t.entries, k)
	}
}
