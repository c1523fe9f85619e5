package alerts

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/devices"
	"github.com/lookout-cc/lookout/ingest/tsdb"
	"github.com/lookout-cc/lookout/internal/audit"
	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
)

type fakeCameras []FeedCamera

func (f fakeCameras) CamerasOfSite(site devices.SiteID) []FeedCamera {
	var out []FeedCamera
	for _, c := range f {
		if c.SiteID == site {
			out = append(out, c)
		}
	}
	return out
}

func (f fakeCameras) CamerasNear(lat, lon, radiusM float64) []FeedCamera {
	var out []FeedCamera
	for _, c := range f {
		if devices.DistanceM(lat, lon, c.Lat, c.Lon) <= radiusM {
			out = append(out, c)
		}
	}
	return out
}

// rig is an engine and a store on a real state database, driven by hand:
// points go to evaluate and time to tick on the test's goroutine, with a
// clock the test sets.
type rig struct {
	t      *testing.T
	ctx    context.Context
	db     *sql.DB
	tree   *orgs.Store
	reg    *fakeRegistry
	audit  *audit.Log
	store  *Store
	engine *Engine
	now    time.Time

	mu     sync.Mutex
	events []AlertEvent
}

func newRig(t *testing.T) *rig {
	tree, reg, ctx, db := testWorldDB(t)
	al, err := audit.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, ctx: ctx, db: db, tree: tree, reg: reg, audit: al, now: time.Date(2026, 7, 20, 2, 0, 0, 0, time.UTC)}
	r.open()
	return r
}

// open makes a store and an engine on the rig's database, as a start of
// Lookout does.
func (r *rig) open() {
	store, err := NewStore(r.ctx, r.db, r.audit, r.tree, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		r.t.Fatal(err)
	}
	store.now = func() time.Time { return r.now }
	store.OnEvent = func(_ string, _ orgs.ID, data any) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.events = append(r.events, data.(AlertEvent))
	}
	cams := fakeCameras{
		{ID: "cam-dam-far", SiteID: "baihetan", OrgID: "qj", Lat: 27.25, Lon: 102.9},
		{ID: "cam-dam", SiteID: "baihetan", OrgID: "qj", Lat: 27.201, Lon: 102.9},
		{ID: "cam-near", SiteID: "qj-road", OrgID: "qj", Lat: 27.21, Lon: 102.9}, // 1.1 km, another site
		{ID: "cam-ys", SiteID: "ys-road", OrgID: "ys", Lat: 27.205, Lon: 102.9},  // near, but another county's
		{ID: "cam-away", SiteID: "qj-road", OrgID: "qj", Lat: 27.3, Lon: 102.9},  // 11 km
	}
	e, err := NewEngine(EngineParams{Store: store, Devices: r.reg, Orgs: r.tree, Cameras: cams, FeedRadiusM: 2000, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time { return r.now }})
	if err != nil {
		r.t.Fatal(err)
	}
	r.store, r.engine = store, e
}

func (r *rig) rules(rs ...*Rule) {
	for _, x := range rs {
		x.normalize()
		x.UpdatedAt = r.now
	}
	r.engine.setRules(rs)
}

func (r *rig) read(device, metric string, v float64) {
	r.engine.evaluate([]tsdb.Point{{Device: device, Metric: metric, TS: r.now.UnixMilli(), Value: v}})
}

func (r *rig) actions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Action)
	}
	return out
}

func (r *rig) open1(rule string) *Alert {
	r.t.Helper()
	province, _ := r.tree.ScopeOf("yn")
	as, err := r.store.List(r.ctx, province, Filter{RuleID: rule, State: "open"})
	if err != nil || len(as) != 1 {
		r.t.Fatalf("open alerts of %s: %d, %v", rule, len(as), err)
	}
	return as[0]
}

func levelsRule() *Rule {
	return &Rule{ID: "levels", Name: "水库水位超汛限", Kind: KindThreshold, DeviceKind: "water_level", Metric: "water_level_m", OrgID: "yn",
		Steps:      []Step{{Severity: Orange, Above: &Bound{Level: "flood_limit", OffsetM: 1}}, {Severity: Red, Above: &Bound{Level: "design_flood"}}},
		ClearBelow: &Bound{Level: "flood_limit"}}
}

func TestAlertRaisedRepeatedEscalatedClearedAndRefired(t *testing.T) {
	r := newRig(t)
	r.rules(levelsRule())
	r.read("bht-gauge", "water_level_m", 785.5) // over the flood limit, under +1 m
	r.read("ys-gauge", "water_level_m", 900)    // a street gauge: no levels, the rule does not apply
	if got := r.actions(); len(got) != 0 {
		t.Fatalf("events: %v", got)
	}
	r.read("bht-gauge", "water_level_m", 786.2)
	a := r.open1("levels")
	if a.Severity != Orange || a.Value != 786.2 || a.Bound != 786 || a.OrgID != "qj" || a.SiteID != "baihetan" || a.ClearedAt != nil {
		t.Fatalf("raised: %+v", a)
	}
	// Feeds: the site's cameras nearest first, then the nearby one of the
	// same county; not the other county's, not the far one.
	var feeds []string
	for _, f := range a.Feeds {
		feeds = append(feeds, f.CameraID)
	}
	if !slices.Equal(feeds, []string{"cam-dam", "cam-dam-far", "cam-near"}) {
		t.Fatalf("feeds %v", feeds)
	}
	for _, v := range []float64{786.5, 787, 786.4} {
		r.now = r.now.Add(time.Minute)
		r.read("bht-gauge", "water_level_m", v)
	}
	r.now = r.now.Add(time.Minute)
	r.read("bht-gauge", "water_level_m", 828)
	b := r.open1("levels")
	if b.ID != a.ID || b.Severity != Red || b.Count != 5 || b.Peak != 828 || b.Value != 828 {
		t.Fatalf("escalated: %+v", b)
	}
	r.now = r.now.Add(time.Minute)
	r.read("bht-gauge", "water_level_m", 785.5) // under +1 m, over the clear bound: stays
	r.read("bht-gauge", "water_level_m", 784.9) // cleared
	c := r.open1("levels")
	if c.ClearedAt == nil || c.Severity != Red || c.State != StateActive {
		t.Fatalf("cleared: %+v", c)
	}
	r.read("bht-gauge", "water_level_m", 786.5)
	d := r.open1("levels")
	if d.ID != a.ID || d.ClearedAt != nil {
		t.Fatalf("refired: %+v", d)
	}
	// Repeats are announced at most every five seconds: one a minute here.
	if got, want := r.actions(), []string{"raised", "updated", "updated", "updated", "escalated", "cleared", "refired"}; !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	// Every step is in the alert's record and in the audit log.
	province, _ := r.tree.ScopeOf("yn")
	full, err := r.store.Get(r.ctx, province, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, s := range full.Steps {
		steps = append(steps, s.Step)
	}
	if !slices.Equal(steps, []string{"raised", "escalated", "cleared", "refired"}) {
		t.Fatalf("steps %v", steps)
	}
	entries, _ := r.audit.List(r.ctx, province, audit.Filter{Action: "alert.", Limit: 100})
	if len(entries) != 4 {
		t.Fatalf("audit: %d entries", len(entries))
	}
}

func TestAlertLifecycleInOrderAndScoped(t *testing.T) {
	r := newRig(t)
	r.rules(levelsRule())
	r.read("bht-gauge", "water_level_m", 790)
	a := r.open1("levels")
	qj, _ := r.tree.ScopeOf("qj")
	ys, _ := r.tree.ScopeOf("ys")
	step := func(scope orgs.Scope, step string, in StepInput) error {
		_, err := r.store.Step(r.ctx, scope, a.ID, step, "duty-1", in)
		return err
	}
	if err := step(ys, StateAcknowledged, StepInput{}); !errors.Is(err, orgs.ErrOutOfScope) {
		t.Fatalf("another county acks: %v", err)
	}
	for _, tc := range []struct {
		step string
		in   StepInput
		kind errclass.Kind // 0: done
	}{
		{StateResolved, StepInput{}, errclass.Conflict}, // not acknowledged yet
		{StateClosed, StepInput{}, errclass.Conflict},
		{StateAcknowledged, StepInput{Note: "值班员已确认"}, 0},
		{StateAcknowledged, StepInput{}, errclass.Conflict},
		{StateDispatched, StepInput{}, errclass.Invalid}, // to whom?
		{StateDispatched, StepInput{OrgID: "ys"}, errclass.OutOfScope},
		{StateDispatched, StepInput{OrgID: "qj", Department: "县水利局防汛办", Note: "请核实库区水位"}, 0},
		{StateClosed, StepInput{}, errclass.Conflict},
		{StateResolved, StepInput{Note: "已泄洪"}, 0},
		{StateResolved, StepInput{}, errclass.Conflict},
		{StateClosed, StepInput{}, 0},
	} {
		err := step(qj, tc.step, tc.in)
		if tc.kind == 0 && err != nil || tc.kind != 0 && errclass.KindOf(err) != tc.kind {
			t.Fatalf("%s %+v: %v", tc.step, tc.in, err)
		}
	}
	full, _ := r.store.Get(r.ctx, qj, a.ID)
	if full.State != StateClosed || full.Dispatch == nil || full.Dispatch.Department != "县水利局防汛办" || len(full.Steps) != 5 || full.Steps[2].Note != "请核实库区水位" {
		t.Fatalf("closed: %+v", full)
	}
	// Resolved while the water is still high: no new alert for the same
	// condition; a worse one raises a new alert.
	r.read("bht-gauge", "water_level_m", 790.5)
	province, _ := r.tree.ScopeOf("yn")
	if as, _ := r.store.List(r.ctx, province, Filter{State: "open"}); len(as) != 0 {
		t.Fatalf("raised again while handled: %+v", as[0])
	}
	r.read("bht-gauge", "water_level_m", 828)
	if b := r.open1("levels"); b.ID == a.ID || b.Severity != Red {
		t.Fatalf("worse: %+v", b)
	}
}

func TestRestartKeepsActiveAlertsWithoutDoubling(t *testing.T) {
	r := newRig(t)
	r.rules(levelsRule())
	r.read("bht-gauge", "water_level_m", 790)
	a := r.open1("levels")

	// Lookout restarts: a new store and engine on the same database.
	r.open()
	r.rules(levelsRule())
	r.read("bht-gauge", "water_level_m", 791) // still high: the same alert
	b := r.open1("levels")
	if b.ID != a.ID || b.Count != 2 || b.Value != 791 || b.DeviceName != "白鹤滩坝前水位计" {
		t.Fatalf("after restart: %+v", b)
	}
	r.open()
	r.rules(levelsRule())
	r.read("bht-gauge", "water_level_m", 780) // back to normal: it clears
	if c := r.open1("levels"); c.ID != a.ID || c.ClearedAt == nil {
		t.Fatalf("cleared after restart: %+v", c)
	}
}

func TestNoDataByTheClock(t *testing.T) {
	r := newRig(t)
	r.rules(&Rule{ID: "silent", Kind: KindNoData, DeviceID: "bht-gauge", AfterS: 600, Severity: Blue, OrgID: "yn"})
	r.engine.tick()
	r.now = r.now.Add(9 * time.Minute)
	r.engine.tick()
	if len(r.actions()) != 0 {
		t.Fatal("raised before ten minutes")
	}
	r.now = r.now.Add(2 * time.Minute)
	r.engine.tick()
	a := r.open1("silent")
	if a.Value != 660 || a.Severity != Blue {
		t.Fatalf("silent: %+v", a)
	}
	r.read("bht-gauge", "battery_v", 3.9) // any metric is a sign of life
	if c := r.open1("silent"); c.ClearedAt == nil {
		t.Fatalf("not cleared: %+v", c)
	}
}

// An alert resolved while its condition held, then superseded by a worse
// one that ran its course: after a restart the old one no longer holds
// the pair, so the condition raises a new alert.
func TestSupersededHandledAlertHoldsNothingAfterRestart(t *testing.T) {
	r := newRig(t)
	r.rules(levelsRule())
	yn, _ := r.tree.ScopeOf("yn")
	step := func(id string, steps ...string) {
		for _, s := range steps {
			if _, err := r.store.Step(r.ctx, yn, id, s, "duty", StepInput{Department: map[bool]string{true: "防汛办"}[s == StateDispatched]}); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
	}
	r.read("bht-gauge", "water_level_m", 786.5) // orange
	a := r.open1("levels")
	step(a.ID, StateAcknowledged, StateResolved) // resolved while still high
	r.now = r.now.Add(time.Minute)
	r.read("bht-gauge", "water_level_m", 828) // worse: a new alert
	b := r.open1("levels")
	r.now = r.now.Add(time.Minute)
	r.read("bht-gauge", "water_level_m", 780) // over
	step(b.ID, StateAcknowledged, StateResolved, StateClosed)

	r.open() // restart
	r.rules(levelsRule())
	r.now = r.now.Add(time.Minute)
	r.read("bht-gauge", "water_level_m", 786.5)
	if c := r.open1("levels"); c.ID == a.ID || c.ID == b.ID || c.Severity != Orange {
		t.Fatalf("after restart: %+v", c)
	}
}

// Two operators take the same step at once: one of them gets 409, and the
// record has the step once.
func TestConcurrentStepsOneWins(t *testing.T) {
	r := newRig(t)
	r.rules(levelsRule())
	r.read("bht-gauge", "water_level_m", 786.5)
	a := r.open1("levels")
	yn, _ := r.tree.ScopeOf("yn")
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.store.Step(r.ctx, yn, a.ID, StateAcknowledged, "duty", StepInput{})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errclass.KindOf(err) != errclass.Conflict:
			t.Fatalf("unexpected: %v", err)
		}
	}
	full, _ := r.store.Get(r.ctx, yn, a.ID)
	acks := 0
	for _, s := range full.Steps {
		if s.Step == StateAcknowledged {
			acks++
		}
	}
	if ok != 1 || acks != 1 || full.State != StateAcknowledged {
		t.Fatalf("%d succeeded, %d acks recorded, state %s", ok, acks, full.State)
	}
}
