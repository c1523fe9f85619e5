package main

import (
	"math/bits"
	"time"
)

// histogram counts durations in log-linear buckets, as HDR histograms do:
// exact below 64 ns, then 32 buckets per power of two (each within about
// 3 % of its value), up to about 2^42 ns (over an hour). add makes no
// allocation; each reader keeps its own and they are merged at the end.
type histogram struct {
	counts [histSub * 38]uint64
	n      uint64
	max    int64
}

const (
	histBits = 5
	histSub  = 1 << histBits // buckets per power of two
)

func histIndex(v int64) int {
	if v < 2*histSub {
		return int(max(v, 0))
	}
	// v>>shift is in [histSub, 2*histSub).
	shift := bits.Len64(uint64(v)) - histBits - 1
	return min((shift+1)*histSub+int(v>>shift)-histSub, histSub*38-1)
}

// histUpper is the largest value bucket i holds.
func histUpper(i int) int64 {
	if i < 2*histSub {
		return int64(i)
	}
	shift := i/histSub - 1
	m := int64(i%histSub + histSub)
	return (m+1)<<shift - 1
}

func (h *histogram) add(d time.Duration) {
	h.counts[histIndex(int64(d))]++
	h.n++
	h.max = max(h.max, int64(d))
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile is the upper bound of the bucket holding the q-th quantile
// (never above the largest value seen); 0 when empty.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	want := uint64(q * float64(h.n))
	want = max(want, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= want {
			return time.Duration(min(histUpper(i), h.max))
		}
	}
	return time.Duration(h.max)
}
