package spool

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lookout-cc/lookout/ingest/tsdb"
)

func batch(start, n int) []tsdb.Point {
	out := make([]tsdb.Point, 0, n)
	for i := start; i < start+n; i++ {
		p := tsdb.Point{Device: "gauge-1", Metric: "water_level_m", TS: 1_763_800_000_000 + int64(i), Value: float64(i) + 0.5}
		if i%7 == 0 {
			p = tsdb.Point{Device: "lamp-3", Metric: "fault", TS: p.TS, Text: "过热", IsText: true}
		}
		out = append(out, p)
	}
	return out
}

func drain(t *testing.T, s *Spool) []tsdb.Point {
	t.Helper()
	var got []tsdb.Point
	for {
		ok, err := s.ReplayOldest(func(ps []tsdb.Point) error { got = append(got, ps...); return nil })
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return got
		}
	}
}

func TestAppendReplayInOrderAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var want []tsdb.Point
	for i := 0; i < 300; i++ { // several segments
		b := batch(i*100, 100)
		want = append(want, b...)
		if _, err := s.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	if s.Points() != 30_000 || len(s.segs) < 2 {
		t.Fatalf("points %d in %d segments", s.Points(), len(s.segs))
	}
	s.Close()

	s, err = Open(dir, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Points() != 30_000 {
		t.Fatalf("after reopen %d points", s.Points())
	}
	got := drain(t, s)
	if !slices.Equal(got, want) {
		t.Fatalf("replayed %d points, not the %d appended in order", len(got), len(want))
	}
	if s.Points() != 0 || s.Bytes() != 0 {
		t.Fatalf("left %d points, %d bytes", s.Points(), s.Bytes())
	}
}

func TestFailedReplayKeepsTheSegment(t *testing.T) {
	s, err := Open(t.TempDir(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Append(batch(0, 10))
	down := errors.New("store down")
	if ok, err := s.ReplayOldest(func([]tsdb.Point) error { return down }); ok || !errors.Is(err, down) {
		t.Fatalf("replay = %v, %v", ok, err)
	}
	s.Append(batch(10, 10)) // arrives while the store is down
	got := drain(t, s)
	if !slices.Equal(got, batch(0, 20)) {
		t.Fatalf("got %d points out of order or missing", len(got))
	}
}

func TestBoundDropsOldestAndCounts(t *testing.T) {
	s, err := Open(t.TempDir(), 3*SegmentBytes)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var dropped int64
	for i := 0; i < 2000; i++ {
		d, err := s.Append(batch(i*100, 100))
		if err != nil {
			t.Fatal(err)
		}
		dropped += d
	}
	if s.Bytes() > 3*SegmentBytes || dropped == 0 {
		t.Fatalf("bytes %d over bound or nothing dropped (%d)", s.Bytes(), dropped)
	}
	got := drain(t, s)
	if int64(len(got))+dropped != 200_000 {
		t.Fatalf("kept %d + dropped %d != 200000", len(got), dropped)
	}
	// What is kept is the newest, in order.
	if got[len(got)-1] != batch(199_999, 1)[0] {
		t.Fatalf("last kept point %+v", got[len(got)-1])
	}
}

func TestTornTailIsCut(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, 1<<30)
	s.Append(batch(0, 5))
	s.Append(batch(5, 5))
	s.Close()
	seg := filepath.Join(dir, "0000000000000001.seg")
	st, _ := os.Stat(seg)
	if err := os.Truncate(seg, st.Size()-3); err != nil { // a crash mid-write
		t.Fatal(err)
	}
	s, err := Open(dir, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := drain(t, s); !slices.Equal(got, batch(0, 5)) {
		t.Fatalf("after a torn write: %d points", len(got))
	}
}

// decodePoints reads files from disk: no content may make it panic, and
// whatever it accepts re-encodes to the same bytes.
func FuzzDecodePoints(f *testing.F) {
	f.Add(encodeRecord(batch(0, 3))[8:])
	f.Add(encodeRecord(batch(7, 1))[8:])
	f.Add([]byte{1, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, payload []byte) {
		ps, err := decodePoints(payload)
		if err != nil || len(ps) == 0 {
			return
		}
		if again := encodeRecord(ps)[8:]; !slices.Equal(again, payload) {
			t.Fatalf("re-encoding differs")
		}
	})
}
