package alerts

import (
	"context"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookout-cc/lookout/devices"
	"github.com/lookout-cc/lookout/ingest/tsdb"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// FeedCamera is a camera as correlation sees it.
type FeedCamera struct {
	ID     string
	SiteID devices.SiteID
	OrgID  orgs.ID
	Lat    float64
	Lon    float64
}

// CameraFinder finds the cameras that may show an alert.
type CameraFinder interface {
	CamerasOfSite(site devices.SiteID) []FeedCamera
	CamerasNear(lat, lon, radiusM float64) []FeedCamera
}

// History gives the recent readings of a metric, to refill a rate rule's
// window after a restart.
type History interface {
	Query(ctx context.Context, q tsdb.Query) ([]tsdb.Sample, error)
}

// EngineParams configure the engine.
type EngineParams struct {
	Store   *Store
	Devices Lookup
	Orgs    *orgs.Store
	// Cameras finds feeds; nil: alerts carry none.
	Cameras CameraFinder
	// FeedRadiusM: cameras within this distance of the device show its
	// alerts (after the cameras of its own site); 0: its site's only.
	FeedRadiusM float64
	// MaxFeeds caps the feeds of one alert. Default 16.
	MaxFeeds int
	History  History
	Log      *slog.Logger
	Metrics  prometheus.Registerer
	Now      func() time.Time
}

// Engine evaluates the rules on the live stream of points, as they arrive.
// One goroutine owns the rules' indexes and every (rule, device) state, so
// evaluation takes no lock; the ingest pipeline hands it points with
// Observe, and a one-second tick runs what depends on time alone (no data,
// for_s, geofence debounce) and stores the repeats of open alerts.
//
// Lifecycle: NewEngine, Start, Close.
type Engine struct {
	p     EngineParams
	in    chan []tsdb.Point
	ctl   chan func()
	stop  chan struct{}
	done  chan struct{}
	start int64
	// refills are the rate windows being read from the store.
	refills sync.WaitGroup

	// The engine goroutine's own.
	rules      map[string]*Rule
	scopes     map[string]orgs.Scope
	byDevice   map[devices.ID][]*Rule
	bySite     map[devices.SiteID][]*Rule
	byKind     map[string][]*Rule
	timed      []*Rule // no_data rules
	pairs      map[pairKey]*pair
	ticking    map[pairKey]*pair // pairs with something due on the tick
	siteLevels map[devices.SiteID]*devices.Levels

	points   prometheus.Counter
	raised   *prometheus.CounterVec
	evalTime prometheus.Histogram
}

// NewEngine makes an engine with no rules.
func NewEngine(p EngineParams) (*Engine, error) {
	if p.MaxFeeds == 0 {
		p.MaxFeeds = 16
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	e := &Engine{p: p, in: make(chan []tsdb.Point, 4096), ctl: make(chan func()), stop: make(chan struct{}), done: make(chan struct{}),
		start: p.Now().UnixMilli(), rules: map[string]*Rule{}, pairs: map[pairKey]*pair{}, ticking: map[pairKey]*pair{},
		siteLevels: map[devices.SiteID]*devices.Levels{}}
	e.index()
	e.points = prometheus.NewCounter(prometheus.CounterOpts{Name: "lookout_alert_points_total", Help: "Telemetry points the alert rules have seen."})
	e.raised = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_alerts_raised_total", Help: "Alert conditions raised (new alerts, escalations, refires), by severity."}, []string{"severity"})
	e.evalTime = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lookout_alert_eval_seconds", Help: "Time to evaluate one message's points against the rules.",
		Buckets: []float64{1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1}})
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lookout_alert_queue_messages", Help: "Messages waiting for the alert engine."},
		func() float64 { return float64(len(e.in)) })
	if p.Metrics != nil {
		for _, c := range []prometheus.Collector{e.points, e.raised, e.evalTime, queue} {
			if err := p.Metrics.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return e, nil
}

// Start runs the engine.
func (e *Engine) Start() { go e.run() }

// Close stops the engine and stores the repeats noted so far.
func (e *Engine) Close() {
	close(e.stop)
	<-e.done
	e.refills.Wait()
	e.p.Store.flush(context.Background())
}

// Observe hands the engine the points of one message. It waits while the
// engine's queue is full, which slows ingestion down rather than dropping
// a reading that may raise an alert.
func (e *Engine) Observe(points []tsdb.Point) {
	if len(points) == 0 {
		return
	}
	select {
	case e.in <- points:
	case <-e.stop:
	}
}

// do runs f on the engine's goroutine and waits for it.
func (e *Engine) do(f func()) {
	done := make(chan struct{})
	select {
	case e.ctl <- func() { f(); close(done) }:
		<-done
	case <-e.stop:
	}
}

// SetRules replaces the rules. The state of a rule that did not change is
// kept; a changed rule starts afresh (its open alerts are kept, and a
// normal reading clears them).
func (e *Engine) SetRules(rules []*Rule) {
	e.do(func() { e.setRules(rules) })
}

func (e *Engine) setRules(rules []*Rule) {
	next := make(map[string]*Rule, len(rules))
	for _, r := range rules {
		next[r.ID] = r
	}
	for k := range e.pairs {
		old, was := e.rules[k.rule]
		now, is := next[k.rule]
		if !was || !is || !old.UpdatedAt.Equal(now.UpdatedAt) {
			delete(e.pairs, k)
			delete(e.ticking, k)
		}
	}
	for id := range e.rules {
		if _, kept := next[id]; !kept {
			e.p.Store.forgetRule(id)
		}
	}
	e.rules = next
	e.index()
}

// DeviceChanged drops the state of a device that was changed or deleted
// (moved to another site, say): its rules start afresh with it (an alert
// it has stays, and a normal reading clears it).
func (e *Engine) DeviceChanged(id devices.ID) {
	e.do(func() {
		for k := range e.pairs {
			if k.device == id {
				delete(e.pairs, k)
				delete(e.ticking, k)
			}
		}
	})
}

// SiteChanged re-reads a site's characteristic levels (its threshold
// rules resolve against them).
func (e *Engine) SiteChanged(site devices.SiteID) {
	e.do(func() {
		delete(e.siteLevels, site)
		for k, p := range e.pairs {
			if d, ok := e.p.Devices.Lookup(k.device); ok && d.SiteID == site && p.thrReady {
				p.thrReady, p.thrErr = false, false
			}
		}
	})
}

func (e *Engine) index() {
	e.scopes = map[string]orgs.Scope{}
	e.byDevice, e.bySite, e.byKind = map[devices.ID][]*Rule{}, map[devices.SiteID][]*Rule{}, map[string][]*Rule{}
	e.timed = nil
	ids := make([]string, 0, len(e.rules))
	for id := range e.rules {
		ids = append(ids, id)
	}
	sort.Strings(ids) // evaluation in a stable order
	for _, id := range ids {
		r := e.rules[id]
		if r.Disabled {
			continue
		}
		if e.p.Orgs != nil {
			if sc, err := e.p.Orgs.ScopeOf(r.OrgID); err == nil {
				e.scopes[r.ID] = sc
			}
		}
		switch {
		case r.DeviceID != "":
			e.byDevice[r.DeviceID] = append(e.byDevice[r.DeviceID], r)
		case r.SiteID != "":
			e.bySite[r.SiteID] = append(e.bySite[r.SiteID], r)
		default:
			e.byKind[r.DeviceKind] = append(e.byKind[r.DeviceKind], r)
		}
		if r.Kind == KindNoData {
			e.timed = append(e.timed, r)
		}
	}
}

func (e *Engine) run() {
	defer close(e.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case ps := <-e.in:
			e.evaluate(ps)
		case f := <-e.ctl:
			f()
		case <-tick.C:
			e.tick()
		case <-e.stop:
			return
		}
	}
}

// applies says whether a rule watches a device.
func (e *Engine) applies(r *Rule, d devices.Device) bool {
	if d.Disabled || (r.DeviceKind != "" && d.Kind != r.DeviceKind) {
		return false
	}
	sc, ok := e.scopes[r.ID]
	return ok && e.p.Orgs.Contains(sc, d.OrgID)
}

func (e *Engine) evaluate(ps []tsdb.Point) {
	began := time.Now()
	e.points.Add(float64(len(ps)))
	var d devices.Device
	known := false
	var rules []*Rule
	now := e.p.Now().UnixMilli()
	for i := range ps {
		pt := &ps[i]
		if !known || string(d.ID) != pt.Device {
			if d, known = e.p.Devices.Lookup(devices.ID(pt.Device)); !known {
				continue
			}
			rules = append(append(append(rules[:0], e.byDevice[d.ID]...), e.bySite[d.SiteID]...), e.byKind[d.Kind]...)
			rules = append(rules, e.byKind[""]...)
		}
		for _, r := range rules {
			if !e.applies(r, d) {
				continue
			}
			e.evalPoint(r, d, pt, now)
		}
	}
	e.evalTime.Observe(time.Since(began).Seconds())
}

func (e *Engine) evalPoint(r *Rule, d devices.Device, pt *tsdb.Point, now int64) {
	var v verdict
	k := pairKey{r.ID, d.ID}
	switch r.Kind {
	case KindThreshold:
		if pt.IsText || pt.Metric != r.Metric {
			return
		}
		p := e.pair(r, d)
		if p.thrErr {
			return
		}
		v = r.evalThreshold(p, pt.Value, pt.TS, now)
		if r.ForS > 0 && p.isPending {
			e.ticking[k] = p
		}
	case KindRate:
		if pt.IsText || pt.Metric != r.Metric {
			return
		}
		v = r.evalRate(e.pair(r, d), pt.Value, pt.TS)
	case KindNoData:
		if r.Metric != "" && pt.Metric != r.Metric {
			return
		}
		v = r.seenNoData(e.pair(r, d), now)
	case KindGeofence:
		if pt.IsText || (pt.Metric != GeofenceMetrics[0] && pt.Metric != GeofenceMetrics[1]) {
			return
		}
		p := e.pair(r, d)
		v = r.evalGeofence(p, pt.Metric, pt.Value, pt.TS, now)
		if p.candidate != p.inside {
			e.ticking[k] = p
		}
	}
	e.apply(r, d, v)
}

// pair returns the state of a rule on a device, made on first use: it
// starts as firing when the device has an alert of the rule whose
// condition held (from before a restart), and a rate rule's window is
// refilled from the store.
func (e *Engine) pair(r *Rule, d devices.Device) *pair {
	k := pairKey{r.ID, d.ID}
	p, ok := e.pairs[k]
	if !ok {
		p = newPair()
		p.firing = e.p.Store.firing(k)
		// Silence counts from when Lookout started watching: its start,
		// the rule's last change, or the device's creation.
		p.lastSeen = max(e.start, r.UpdatedAt.UnixMilli(), d.CreatedAt.UnixMilli())
		if r.Kind == KindRate && e.p.History != nil {
			e.refill(r, d, p)
		}
		e.pairs[k] = p
	}
	if r.Kind == KindThreshold && !p.thrReady {
		p.thrReady = true
		thr, err := r.compileThreshold(e.levels(d.SiteID))
		p.thr, p.thrErr = thr, err != nil
	}
	return p
}

// refill loads a rate window's readings from the store, off the engine's
// goroutine (the store may be slow or down); they are merged in front of
// whatever has arrived live meanwhile.
func (e *Engine) refill(r *Rule, d devices.Device, p *pair) {
	to := e.p.Now()
	q := tsdb.Query{Device: string(d.ID), Metric: r.Metric, From: to.Add(-time.Duration(r.WindowS) * time.Second), To: to}
	e.refills.Add(1)
	go func() {
		defer e.refills.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		samples, err := e.p.History.Query(ctx, q)
		if err != nil {
			e.p.Log.Warn("rate window not refilled from the store", "rule", r.ID, "device", d.ID, "err", err)
			return
		}
		select {
		case e.ctl <- func() {
			if e.pairs[pairKey{r.ID, d.ID}] != p {
				return // the rule changed meanwhile
			}
			live := p.window
			p.window = nil
			firing := p.firing
			for _, s := range samples {
				if len(live) == 0 || s.TS < live[0].ts {
					r.evalRate(p, s.Value, s.TS)
				}
			}
			for _, s := range live {
				r.evalRate(p, s.v, s.ts)
			}
			p.firing = firing // refilling decides nothing
		}:
		case <-e.stop:
		}
	}()
}

func (e *Engine) levels(site devices.SiteID) *devices.Levels {
	l, ok := e.siteLevels[site]
	if !ok {
		if s, found := e.p.Devices.SiteByID(site); found {
			l = s.Levels
		}
		e.siteLevels[site] = l
	}
	return l
}

// tick runs what is due by time alone, then stores the repeats.
func (e *Engine) tick() {
	now := e.p.Now().UnixMilli()
	for _, r := range e.timed {
		for _, d := range e.watched(r) {
			e.apply(r, d, r.tickNoData(e.pair(r, d), now))
		}
	}
	for k, p := range e.ticking {
		r, ok := e.rules[k.rule]
		d, known := e.p.Devices.Lookup(k.device)
		if !ok || !known {
			delete(e.ticking, k)
			continue
		}
		var v verdict
		switch r.Kind {
		case KindThreshold:
			v = r.tickThreshold(p, now)
			if !p.isPending || p.firing {
				delete(e.ticking, k)
			}
		case KindGeofence:
			v = r.tickGeofence(p, now)
			if p.candidate == p.inside {
				delete(e.ticking, k)
			}
		}
		e.apply(r, d, v)
	}
	e.p.Store.flush(context.Background())
}

// watched lists the devices a rule watches now.
func (e *Engine) watched(r *Rule) []devices.Device {
	var ds []devices.Device
	switch {
	case r.DeviceID != "":
		if d, ok := e.p.Devices.Lookup(r.DeviceID); ok {
			ds = []devices.Device{d}
		}
	case r.SiteID != "":
		ds = e.p.Devices.SiteDevices(r.SiteID)
	default:
		ds = e.p.Devices.DevicesOfKind(r.DeviceKind)
	}
	out := ds[:0:0]
	for _, d := range ds {
		if e.applies(r, d) {
			out = append(out, d)
		}
	}
	return out
}

func (e *Engine) apply(r *Rule, d devices.Device, v verdict) {
	ctx := context.Background()
	switch v.kind {
	case verdictRaise:
		e.raised.WithLabelValues(string(v.severity)).Inc()
		e.p.Store.raise(ctx, r, d, v, func() []Feed { return e.feeds(r, d, v) })
	case verdictObserve:
		e.p.Store.observe(pairKey{r.ID, d.ID}, v)
	case verdictClear:
		e.p.Store.clear(ctx, pairKey{r.ID, d.ID}, v)
	}
}

// feeds lists the cameras that show an alert: those of the device's site
// (for a geofence naming a port, the port's), nearest first, then those
// within the feed radius, nearest first; only cameras of the alert's
// organisation subtree, so nobody is shown a camera they may not open.
func (e *Engine) feeds(r *Rule, d devices.Device, v verdict) []Feed {
	if e.p.Cameras == nil {
		return []Feed{}
	}
	lat, lon := d.Lat, d.Lon
	if v.position != nil {
		lat, lon = v.position[0], v.position[1]
	}
	site := d.SiteID
	if r.Kind == KindGeofence && r.SiteID != "" {
		site = r.SiteID
	}
	scope, err := e.p.Orgs.ScopeOf(d.OrgID)
	if err != nil {
		return []Feed{}
	}
	out := []Feed{}
	seen := map[string]bool{}
	addAll := func(cams []FeedCamera, within float64) {
		fs := make([]Feed, 0, len(cams))
		for _, c := range cams {
			if seen[c.ID] || !e.p.Orgs.Contains(scope, c.OrgID) {
				continue
			}
			dist := devices.DistanceM(lat, lon, c.Lat, c.Lon)
			if within > 0 && dist > within {
				continue
			}
			seen[c.ID] = true
			fs = append(fs, Feed{CameraID: c.ID, SiteID: c.SiteID, DistanceM: math.Round(dist)})
		}
		sort.SliceStable(fs, func(i, j int) bool { return fs[i].DistanceM < fs[j].DistanceM })
		out = append(out, fs...)
	}
	addAll(e.p.Cameras.CamerasOfSite(site), 0)
	if e.p.FeedRadiusM > 0 {
		addAll(e.p.Cameras.CamerasNear(lat, lon, e.p.FeedRadiusM), e.p.FeedRadiusM)
	}
	if len(out) > e.p.MaxFeeds {
		out = out[:e.p.MaxFeeds]
	}
	return out
}
