package alerts

import (
	"testing"
)

// reading is one input of an evaluation sequence and what it must give.
type reading struct {
	at     int64 // seconds
	metric string
	v      float64
	want   verdictKind
	sev    Severity
}

func (r reading) check(t *testing.T, i int, got verdict) {
	t.Helper()
	if got.kind != r.want || (r.want == verdictRaise && got.severity != r.sev) {
		t.Fatalf("reading %d (%g at %ds): got %v %s, want %v %s", i, r.v, r.at, got.kind, got.severity, r.want, r.sev)
	}
}

func TestThresholdHysteresisEscalationAndForS(t *testing.T) {
	levels := &Rule{ID: "r", Kind: KindThreshold, Metric: "m", ClearBelow: &Bound{Value: 784.5},
		Steps: []Step{{Severity: Yellow, Above: &Bound{Value: 785}}, {Severity: Red, Above: &Bound{Value: 827.71}}}}
	below := &Rule{ID: "b", Kind: KindThreshold, Metric: "m", Below: &Bound{Value: 10}, ClearAbove: &Bound{Value: 12}, Severity: Orange}
	held := &Rule{ID: "h", Kind: KindThreshold, Metric: "m", Above: &Bound{Value: 100}, Severity: Red, ForS: 60}
	for _, tc := range []struct {
		name     string
		rule     *Rule
		readings []reading
	}{
		{"raise, repeat, escalate, stay in the band, clear, raise again", levels, []reading{
			{0, "m", 784, verdictNone, ""},
			{1, "m", 785.2, verdictRaise, Yellow},
			{2, "m", 785.3, verdictRaise, Yellow}, // a repeat: the store counts it
			{3, "m", 828, verdictRaise, Red},      // escalation
			{4, "m", 784.8, verdictObserve, ""},   // under the bound, above the clear bound
			{5, "m", 784.4, verdictClear, ""},
			{6, "m", 784.9, verdictNone, ""}, // back in the band: nothing until past the bound
			{7, "m", 785.1, verdictRaise, Yellow},
		}},
		{"below with hysteresis", below, []reading{
			{0, "m", 11, verdictNone, ""},
			{1, "m", 9, verdictRaise, Orange},
			{2, "m", 11, verdictObserve, ""},
			{3, "m", 12.5, verdictClear, ""},
		}},
		{"for_s: must hold a minute", held, []reading{
			{0, "m", 101, verdictNone, ""},
			{30, "m", 102, verdictNone, ""},
			{40, "m", 99, verdictNone, ""}, // broke off: the minute starts again
			{50, "m", 101, verdictNone, ""},
			{109, "m", 101, verdictNone, ""},
			{110, "m", 103, verdictRaise, Red},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.rule.normalize()
			p := newPair()
			thr, err := tc.rule.compileThreshold(nil)
			if err != nil {
				t.Fatal(err)
			}
			p.thr = thr
			for i, r := range tc.readings {
				r.check(t, i, tc.rule.evalThreshold(p, r.v, r.at*1000, r.at*1000))
			}
		})
	}
}

func TestThresholdForSRaisesOnTheTick(t *testing.T) {
	r := &Rule{ID: "h", Kind: KindThreshold, Metric: "m", Above: &Bound{Value: 100}, Severity: Red, ForS: 60}
	r.normalize()
	p := newPair()
	p.thr, _ = r.compileThreshold(nil)
	if v := r.evalThreshold(p, 101, 0, 0); v.kind != verdictNone {
		t.Fatal(v)
	}
	if v := r.tickThreshold(p, 59_000); v.kind != verdictNone {
		t.Fatalf("early: %v", v)
	}
	if v := r.tickThreshold(p, 61_000); v.kind != verdictRaise || v.value != 101 {
		t.Fatalf("held a minute, no new reading: %+v", v)
	}
}

func TestRate(t *testing.T) {
	r := &Rule{ID: "r", Kind: KindRate, Metric: "m", RisePerHour: ptr(0.5), ClearPerHour: ptr(0.2), WindowS: 3600, Severity: Orange}
	r.normalize()
	p := newPair()
	min := func(m int64) int64 { return m * 60 }
	steps := []reading{
		{min(0), "m", 780.0, verdictNone, ""},
		{min(10), "m", 780.1, verdictNone, ""},      // ten minutes are too few to say
		{min(30), "m", 780.2, verdictNone, ""},      // 0.4 m/h over half an hour
		{min(40), "m", 780.25, verdictNone, ""},     // 0.375 m/h
		{min(61), "m", 780.8, verdictRaise, Orange}, // from min 10: 0.7 m in 51 min
		{min(90), "m", 780.55, verdictObserve, ""},  // from min 30: 0.35 m/h, above the clear rate
		{min(150), "m", 780.6, verdictClear, ""},    // from min 90: 0.05 m/h
	}
	for i, s := range steps {
		s.check(t, i, r.evalRate(p, s.v, s.at*1000))
	}
	// The window is bounded however fast the readings come.
	for i := range 10_000 {
		r.evalRate(p, 781, (min(151)+int64(i))*1000)
	}
	if len(p.window) > maxWindowSamples+2 {
		t.Fatalf("window holds %d readings", len(p.window))
	}
}

func TestNoData(t *testing.T) {
	r := &Rule{ID: "n", Kind: KindNoData, AfterS: 60, Severity: Blue}
	p := newPair()
	p.lastSeen = 0
	for i, s := range []struct {
		tick bool
		at   int64
		want verdictKind
	}{
		{true, 30_000, verdictNone},
		{true, 61_000, verdictRaise},
		{true, 62_000, verdictObserve},
		{false, 63_000, verdictClear}, // it speaks
		{true, 100_000, verdictNone},
		{true, 124_000, verdictRaise},
	} {
		var v verdict
		if s.tick {
			v = r.tickNoData(p, s.at)
		} else {
			v = r.seenNoData(p, s.at)
		}
		if v.kind != s.want {
			t.Fatalf("step %d: %v, want %v", i, v.kind, s.want)
		}
	}
}

func TestGeofenceLeaveWithDebounce(t *testing.T) {
	port := [][2]float64{{24.733, 118.758}, {24.733, 118.776}, {24.749, 118.776}, {24.749, 118.758}}
	r := &Rule{ID: "g", Kind: KindGeofence, On: "leave", Polygon: port, DebounceS: ptr(60), Severity: Yellow}
	p := newPair()
	// A position comes as two points, lat and lon of one time: the
	// second completes it.
	at := func(s int64, lat, lon float64) verdict {
		if v := r.evalGeofence(p, "lat", lat, s*1000, s*1000); v.kind != verdictNone {
			t.Fatalf("half a position decided %v", v.kind)
		}
		return r.evalGeofence(p, "lon", lon, s*1000, s*1000)
	}
	in, out := [2]float64{24.741, 118.767}, [2]float64{24.70, 118.80}
	for i, s := range []struct {
		at   int64
		pos  [2]float64
		want verdictKind
	}{
		{0, in, verdictNone},    // first position: sets the side
		{10, out, verdictNone},  // out, but not for a minute yet
		{20, in, verdictNone},   // back: jitter at the quay
		{30, out, verdictNone},  // out again: the minute starts now
		{89, out, verdictNone},  // 59 s
		{91, out, verdictRaise}, // left
		{100, out, verdictObserve},
		{110, in, verdictNone},
		{171, in, verdictClear}, // back in port
	} {
		if v := at(s.at, s.pos[0], s.pos[1]); v.kind != s.want {
			t.Fatalf("step %d at %ds: %v, want %v", i, s.at, v.kind, s.want)
		}
	}
	// The tick settles a side change without a new position.
	at(200, out[0], out[1])
	if v := r.tickGeofence(p, 261_000); v.kind != verdictRaise || v.position == nil {
		t.Fatalf("tick: %+v", v)
	}
}

func TestInPolygon(t *testing.T) {
	// A concave L shape.
	l := [][2]float64{{0, 0}, {0, 2}, {1, 2}, {1, 1}, {2, 1}, {2, 0}}
	for _, tc := range []struct {
		lat, lon float64
		in       bool
	}{{0.5, 0.5, true}, {0.5, 1.5, true}, {1.5, 0.5, true}, {1.5, 1.5, false}, {3, 3, false}, {-0.1, 0.5, false}} {
		if got := inPolygon(l, tc.lat, tc.lon); got != tc.in {
			t.Errorf("(%g, %g): %v", tc.lat, tc.lon, got)
		}
	}
}

// for_s is timed by the engine's clock: a reading stamped long ago (an
// upload from a device's buffer) does not count as having held that long,
// and a reading older than the last is not the current value.
func TestForSIsTimedByTheEngine(t *testing.T) {
	r := &Rule{ID: "h", Kind: KindThreshold, Metric: "m", Above: &Bound{Value: 100}, Severity: Red, ForS: 600}
	r.normalize()
	p := newPair()
	p.thr, _ = r.compileThreshold(nil)
	now := int64(10_000_000)
	if v := r.evalThreshold(p, 101, now-900_000, now); v.kind != verdictNone {
		t.Fatalf("a reading from 15 minutes ago: %v", v.kind)
	}
	if v := r.tickThreshold(p, now+1000); v.kind != verdictNone {
		t.Fatalf("raised a second later: %v", v.kind)
	}
	if v := r.evalThreshold(p, 50, now-950_000, now+2000); v.kind != verdictNone || p.last != 101 {
		t.Fatalf("an older reading was taken: %v %g", v.kind, p.last)
	}
	if v := r.tickThreshold(p, now+600_000); v.kind != verdictRaise {
		t.Fatalf("held ten minutes: %v", v.kind)
	}
}
