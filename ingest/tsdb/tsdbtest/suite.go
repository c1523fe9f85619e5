// Package tsdbtest is the conformance suite every time-series backend
// passes: the same writes, the same queries, the same answers.
package tsdbtest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/ingest/tsdb"
)

// Run runs the suite against stores made by open, a fresh empty one per
// subtest.
func Run(t *testing.T, open func(t *testing.T) tsdb.Store) {
	ctx := context.Background()
	// A whole minute an hour ago: inside every backend's retention and
	// away from bucket edges.
	base := time.Now().Add(-time.Hour).Truncate(time.Minute)
	ms := func(d time.Duration) int64 { return base.Add(d).UnixMilli() }

	t.Run("raw range is [from, to) oldest first", func(t *testing.T) {
		s := open(t)
		write(t, s,
			tsdb.Point{Device: "g1", Metric: "level", TS: ms(2 * time.Second), Value: 3},
			tsdb.Point{Device: "g1", Metric: "level", TS: ms(0), Value: 1},
			tsdb.Point{Device: "g1", Metric: "level", TS: ms(time.Second), Value: 2},
			tsdb.Point{Device: "g1", Metric: "level", TS: ms(3 * time.Second), Value: 4},
			tsdb.Point{Device: "g1", Metric: "other", TS: ms(time.Second), Value: 99},
			tsdb.Point{Device: "g2", Metric: "level", TS: ms(time.Second), Value: 98},
		)
		got := query(t, s, tsdb.Query{Device: "g1", Metric: "level", From: base, To: base.Add(3 * time.Second)})
		want := []tsdb.Sample{{TS: ms(0), Value: 1}, {TS: ms(time.Second), Value: 2}, {TS: ms(2 * time.Second), Value: 3}}
		if !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})

	t.Run("step gives the mean of epoch-aligned buckets", func(t *testing.T) {
		s := open(t)
		var ps []tsdb.Point
		for i := 0; i < 6; i++ { // 0..5 s, values 0..5
			ps = append(ps, tsdb.Point{Device: "g", Metric: "m", TS: ms(time.Duration(i) * time.Second), Value: float64(i)})
		}
		write(t, s, ps...)
		got := query(t, s, tsdb.Query{Device: "g", Metric: "m", From: base, To: base.Add(time.Minute), Step: 2 * time.Second})
		want := []tsdb.Sample{{TS: ms(0), Value: 0.5}, {TS: ms(2 * time.Second), Value: 2.5}, {TS: ms(4 * time.Second), Value: 4.5}}
		if !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})

	t.Run("a point written twice is stored once, the later value kept", func(t *testing.T) {
		s := open(t)
		p := tsdb.Point{Device: "g", Metric: "m", TS: ms(0), Value: 1}
		write(t, s, p)
		p.Value = 7
		write(t, s, p, p)
		got := query(t, s, tsdb.Query{Device: "g", Metric: "m", From: base, To: base.Add(time.Second)})
		if !slices.Equal(got, []tsdb.Sample{{TS: ms(0), Value: 7}}) {
			t.Fatalf("got %v", got)
		}
	})

	t.Run("latest per metric, text and numbers", func(t *testing.T) {
		s := open(t)
		write(t, s,
			tsdb.Point{Device: "lamp", Metric: "power_w", TS: ms(0), Value: 80},
			tsdb.Point{Device: "lamp", Metric: "power_w", TS: ms(time.Second), Value: 85},
			tsdb.Point{Device: "lamp", Metric: "fault", TS: ms(0), Text: "过热 overheat", IsText: true},
			tsdb.Point{Device: "lamp", Metric: "on", TS: ms(2 * time.Second), Value: 1},
			tsdb.Point{Device: "lamp-2", Metric: "power_w", TS: ms(5 * time.Second), Value: 1},
		)
		got, err := s.Latest(ctx, "lamp")
		if err != nil {
			t.Fatal(err)
		}
		want := []tsdb.Point{
			{Device: "lamp", Metric: "fault", TS: ms(0), Text: "过热 overheat", IsText: true},
			{Device: "lamp", Metric: "on", TS: ms(2 * time.Second), Value: 1},
			{Device: "lamp", Metric: "power_w", TS: ms(time.Second), Value: 85},
		}
		if !slices.Equal(got, want) {
			t.Fatalf("got %+v\nwant %+v", got, want)
		}
		none, err := s.Latest(ctx, "nobody")
		if err != nil || len(none) != 0 {
			t.Fatalf("unknown device: %v %v", none, err)
		}
	})

	t.Run("text is not a numeric sample", func(t *testing.T) {
		s := open(t)
		write(t, s, tsdb.Point{Device: "g", Metric: "state", TS: ms(0), Text: "ok", IsText: true})
		got := query(t, s, tsdb.Query{Device: "g", Metric: "state", From: base, To: base.Add(time.Minute)})
		if got == nil || len(got) != 0 {
			t.Fatalf("got %v, want an empty list", got)
		}
	})

	t.Run("large batch and odd names", func(t *testing.T) {
		s := open(t)
		const n = 10_000
		ps := make([]tsdb.Point, 0, n)
		for i := 0; i < n; i++ {
			ps = append(ps, tsdb.Point{Device: fmt.Sprintf("dev-%d", i%10), Metric: "water.level_m", TS: ms(time.Duration(i) * time.Millisecond), Value: float64(i)})
		}
		write(t, s, ps...)
		got := query(t, s, tsdb.Query{Device: "dev-3", Metric: "water.level_m", From: base, To: base.Add(time.Minute)})
		if len(got) != n/10 || got[0].Value != 3 || got[len(got)-1].Value != n-7 {
			t.Fatalf("got %d samples, first %v last %v", len(got), got[0], got[len(got)-1])
		}
	})

	t.Run("check", func(t *testing.T) {
		if err := open(t).Check(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func write(t *testing.T, s tsdb.Store, ps ...tsdb.Point) {
	t.Helper()
	if err := s.Write(context.Background(), ps); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func query(t *testing.T, s tsdb.Store, q tsdb.Query) []tsdb.Sample {
	t.Helper()
	got, err := s.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	return got
}
