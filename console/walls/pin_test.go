package walls

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/console/alerts"
	"github.com/lookout-cc/lookout/console/events"
	"github.com/lookout-cc/lookout/internal/audit"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// pinEnv is a Pinner over a real event bus, with the open alerts a test
// says.
type pinEnv struct {
	*testEnv
	bus    *events.Bus
	pinner *Pinner
	mu     sync.Mutex
	open   []*alerts.Alert
}

func newPinEnv(t *testing.T, bp events.Params) *pinEnv {
	e := &pinEnv{testEnv: newTestEnv(t), bus: events.NewBus(bp)}
	t.Cleanup(e.bus.Close)
	e.pinner = NewPinner(PinnerParams{Store: e.store, Orgs: e.tree, Events: e.bus, Audit: e.audit, Log: e.log,
		OpenAlerts: func(context.Context) ([]*alerts.Alert, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			return append([]*alerts.Alert(nil), e.open...), nil
		}})
	return e
}

func (e *pinEnv) start() {
	e.pinner.Start()
	e.t.Cleanup(e.pinner.Close)
}

func (e *pinEnv) setOpen(as ...*alerts.Alert) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.open = as
}

// alert is an alert of org at severity, raised at the minute given, with
// its feeds.
func alert(id string, org orgs.ID, sev alerts.Severity, minute int, feeds ...string) *alerts.Alert {
	a := &alerts.Alert{ID: id, RuleID: "r", DeviceID: "d", OrgID: org, Severity: sev, State: alerts.StateActive,
		StartedAt: time.Date(2025, 7, 1, 8, minute, 0, 0, time.UTC), Feeds: []alerts.Feed{}}
	for _, f := range feeds {
		a.Feeds = append(a.Feeds, alerts.Feed{CameraID: f})
	}
	return a
}

// publish announces a step of a as the alert store does.
func (e *pinEnv) publish(action string, a *alerts.Alert) {
	e.t.Helper()
	c := *a
	if action == alerts.StateResolved || action == alerts.StateClosed || action == alerts.StateAcknowledged {
		c.State = action
	}
	if _, err := e.bus.Publish(events.TypeAlert, a.OrgID, alerts.AlertEvent{Action: action, Alert: &c}); err != nil {
		e.t.Fatal(err)
	}
}

// waitShows waits until wall id shows want (see shows).
func (e *pinEnv) waitShows(id, want string) Wall {
	e.t.Helper()
	var w Wall
	waitFor(e.t, 5*time.Second, id+" showing "+want, func() bool {
		w = e.mustGet(id)
		return shows(w) == want
	})
	return w
}

// pinAudit lists the system's wall.pin and wall.unpin entries, oldest
// first, as "action wall alert tiles [reason]".
func (e *pinEnv) pinAudit() []string {
	e.t.Helper()
	es, err := e.audit.List(e.ctx, e.scope("yn"), audit.Filter{Action: "wall.", Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for i := len(es) - 1; i >= 0; i-- {
		en := es[i]
		if en.Actor != Actor {
			e.t.Fatalf("a pin audited as %s", en.Actor)
		}
		line := en.Action + " " + en.Target + " " + en.Detail["alert"].(string) + " " + jsonOf(en.Detail["tiles"])
		if r, ok := en.Detail["reason"]; ok {
			line += " " + r.(string)
		}
		out = append(out, line)
	}
	return out
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// An alert's feeds are pinned on the alert area of the walls at or above
// its organisation, once; a newer alert of the same severity takes the
// area over, a red one too, a yellow one does not; each alert's end gives
// the tiles back what they showed before.
func TestPinnerPinsAndRestores(t *testing.T) {
	e := newPinEnv(t, events.Params{})
	yn, qj := e.scope("yn"), e.scope("qj")
	e.mustCreate("prov", "yn", "1+5", 0, 1)
	e.mustCreate("qj", "qj", "4", 0)
	e.mustCreate("ys", "ys", "4", 0)
	e.mustCreate("noarea", "yn", "4")
	for _, st := range []struct {
		wall  string
		scope orgs.Scope
		index int
		cam   string
	}{{"prov", yn, 1, "bht-gate"}, {"prov", yn, 2, "xld-dam"}, {"qj", qj, 0, "bht-gate"}, {"ys", yn, 1, "xld-dam"}, {"noarea", yn, 0, "bht-gate"}} {
		if _, err := e.store.SetTile(e.ctx, st.scope, "op", st.wall, st.index, TileInput{Source: camera(st.cam)}); err != nil {
			t.Fatal(err)
		}
	}
	provBefore, ysBefore, noareaBefore := e.mustGet("prov"), e.mustGet("ys"), e.mustGet("noarea")
	walls := e.bus.Subscribe(func(ev events.Event) bool { return ev.Type == events.TypeWall }, "")
	defer walls.Close()
	e.start()

	// Raised: bht-gate is in the area already and stays where it is;
	// bht-dam takes the first free tile of the area.
	a1 := alert("a1", "qj", alerts.Orange, 0, "bht-dam", "bht-gate")
	e.publish("raised", a1)
	prov := e.waitShows("prov", "bht-dam@a1 bht-gate@a1 xld-dam - - -")
	if prov.Version != provBefore.Version+1 || prov.UpdatedBy != Actor || prov.Tiles[0].Before != nil || !prov.Tiles[1].Before.equal(camera("bht-gate")) {
		t.Fatalf("prov after a1: %+v", prov)
	}
	qjWall := e.waitShows("qj", "bht-gate@a1 - - -")
	// Each change is announced with the whole wall.
	got := map[string]Wall{}
	for len(got) < 2 {
		select {
		case ev := <-walls.C():
			var w Wall
			if err := json.Unmarshal(ev.Data, &w); err != nil {
				t.Fatal(err)
			}
			if ev.OrgID != w.OrgID {
				t.Fatalf("event of org %s for a wall of %s", ev.OrgID, w.OrgID)
			}
			got[w.ID] = w
		case <-time.After(5 * time.Second):
			t.Fatalf("wall events: %v", got)
		}
	}
	if jsonOf(got["prov"]) != jsonOf(prov) || jsonOf(got["qj"]) != jsonOf(qjWall) {
		t.Fatalf("events %v, walls %+v %+v", got, prov, qjWall)
	}

	// Repeats, refires at the same severity and other steps pin nothing
	// again, even after an operator moved a pinned tile. A later change
	// elsewhere shows they were handled.
	if _, err := e.store.SetTile(e.ctx, qj, "op", "qj", 0, TileInput{Source: camera("bht-dam")}); err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"raised", "updated", "refired", "cleared", "acknowledged", "clip"} {
		e.publish(action, a1)
	}
	e.publish("raised", alert("ys1", "ys", alerts.Blue, 1, "xld-gate"))
	e.waitShows("ys", "xld-gate@ys1 xld-dam - -")
	if w := e.mustGet("prov"); w.Version != prov.Version {
		t.Fatalf("prov re-pinned: %q version %d", shows(w), w.Version)
	}
	if w := e.mustGet("qj"); shows(w) != "bht-dam - - -" {
		t.Fatalf("qj re-pinned: %q", shows(w))
	}

	// A newer alert of the same severity takes the area over, as far as
	// its feeds go.
	a2 := alert("a2", "qj", alerts.Orange, 2, "bht-gate")
	e.publish("raised", a2)
	e.waitShows("prov", "bht-dam@a1 bht-gate@a2 xld-dam - - -")
	e.waitShows("qj", "bht-gate@a2 - - -")
	// Red takes it from orange.
	red := alert("red", "qj", alerts.Red, 3, "xld-gate", "bht-dam")
	e.publish("raised", red)
	e.waitShows("prov", "bht-dam@red xld-gate@red xld-dam - - -")
	e.waitShows("qj", "xld-gate@red - - -")
	// Yellow does not take it from red, though it is newer.
	e.publish("raised", alert("yellow", "qj", alerts.Yellow, 4, "bht-gate"))
	e.publish("raised", alert("ys2", "ys", alerts.Blue, 5, "xld-dam")) // ys: a tile for it
	e.waitShows("ys", "xld-dam@ys2 xld-dam - -")
	e.waitShows("prov", "bht-dam@red xld-gate@red xld-dam - - -")
	e.waitShows("qj", "xld-gate@red - - -")

	// Resolved: the tiles show what they showed before any alert (the
	// yellow alert is not brought up in red's place).
	e.publish(alerts.StateResolved, red)
	e.waitShows("prov", "- bht-gate xld-dam - - -")
	qjWall = e.waitShows("qj", "bht-dam - - -") // the operator's choice of before the red alert
	if qjWall.Tiles[0].Before != nil || qjWall.UpdatedBy != Actor {
		t.Fatalf("qj restored: %+v", qjWall)
	}
	e.publish(alerts.StateClosed, a1)
	e.publish(alerts.StateResolved, alert("ys1", "ys", alerts.Blue, 1, "xld-gate"))
	e.waitShows("ys", "xld-dam@ys2 xld-dam - -")

	// The neighbour's wall had only its own alerts; the wall without an
	// alert area none.
	if w := e.mustGet("noarea"); jsonOf(w) != jsonOf(noareaBefore) {
		t.Fatalf("wall without an alert area changed: %+v", w)
	}
	e.publish(alerts.StateClosed, alert("ys2", "ys", alerts.Blue, 5, "xld-dam"))
	if w := e.waitShows("ys", "- xld-dam - -"); w.Version != ysBefore.Version+3 {
		t.Fatalf("ys: version %d, from %d", w.Version, ysBefore.Version)
	}

	want := []string{
		"wall.pin prov a1 [0,1]",
		"wall.pin qj a1 [0]",
		"wall.pin ys ys1 [0]",
		"wall.unpin prov a1 [1] displaced", "wall.pin prov a2 [1]",
		"wall.pin qj a2 [0]", // the operator had taken tile 0 from a1
		"wall.unpin prov a1 [0] displaced", "wall.unpin prov a2 [1] displaced", "wall.pin prov red [0,1]",
		"wall.unpin qj a2 [0] displaced", "wall.pin qj red [0]",
		"wall.unpin ys ys1 [0] displaced", "wall.pin ys ys2 [0]",
		"wall.unpin prov red [0,1] ended",
		"wall.unpin qj red [0] ended",
		"wall.unpin ys ys2 [0] ended",
	}
	if got := e.pinAudit(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// At the start, and when it missed events (its queue overflowed and the
// replay ring no longer holds them), the Pinner reconciles the walls with
// the open alerts: tiles of alerts that ended go back, open alerts not yet
// pinned are pinned, the most important on top.
func TestPinnerReconcilesAfterMissedEvents(t *testing.T) {
	e := newPinEnv(t, events.Params{SubscriberQueue: 2, ReplaySize: 2})
	yn := e.scope("yn")
	e.mustCreate("prov", "yn", "4", 0, 1)
	if _, err := e.store.SetTile(e.ctx, yn, "op", "prov", 1, TileInput{Source: camera("xld-dam")}); err != nil {
		t.Fatal(err)
	}
	// Open when the Pinner starts: two alerts, the older one red.
	old := alert("old", "qj", alerts.Red, 0, "bht-dam")
	newer := alert("newer", "ys", alerts.Yellow, 1, "xld-gate", "xld-dam")
	e.setOpen(newer, old)
	gate := make(chan struct{})
	var once sync.Once
	blocked := make(chan struct{})
	e.pinner.beforeEvent = func() {
		once.Do(func() {
			close(blocked)
			<-gate
		})
	}
	e.start()
	e.waitShows("prov", "bht-dam@old xld-dam@newer - -")

	// The Pinner is held on an event while more come than its queue
	// holds, and more than the ring keeps: red ends, another arrives.
	e.publish("updated", old)
	<-blocked
	for range 3 {
		e.publish("updated", newer)
	}
	red2 := alert("red2", "qj", alerts.Red, 5, "bht-gate")
	e.setOpen(newer, red2)
	e.publish(alerts.StateResolved, old)
	e.publish("raised", red2)
	close(gate)
	e.waitShows("prov", "bht-gate@red2 xld-dam@newer - -")
	if got := strings.Join(e.pinAudit(), "\n"); got != strings.Join([]string{
		"wall.pin prov newer [1]", "wall.pin prov old [0]", // the start: yellow first, red on top
		"wall.unpin prov old [0] ended", "wall.pin prov red2 [0]",
	}, "\n") {
		t.Fatalf("audit:\n%s", got)
	}
	// It follows the events again.
	e.publish(alerts.StateClosed, newer)
	e.waitShows("prov", "bht-gate@red2 xld-dam - -")
	if w := e.mustGet("prov"); w.Tiles[1].Before != nil || w.Tiles[0].Before != nil {
		t.Fatalf("restored: %+v", w.Tiles)
	}
}

// A wall changed by an editor between the Pinner's reading and storing is
// read again, and the pin made on the editor's wall.
func TestPinnerRetriesOnAnEditorsChange(t *testing.T) {
	e := newPinEnv(t, events.Params{})
	yn := e.scope("yn")
	e.mustCreate("prov", "yn", "4", 0)
	w := e.mustGet("prov")
	// Not started: apply is driven by hand, and the editor's change lands
	// after the Pinner read the wall.
	p := e.pinner
	p.ctx = context.Background()
	a := alert("a", "qj", alerts.Orange, 0, "bht-dam")
	p.pinned[a.ID] = a.Severity
	tries := 0
	p.apply(func(next *Wall, scope orgs.Scope) {
		if tries++; tries == 1 {
			if _, err := e.store.SetTile(e.ctx, yn, "op", "prov", 2, TileInput{Source: camera("xld-dam")}); err != nil {
				t.Fatal(err)
			}
		}
		p.pinOn(next, scope, a)
	})
	got := e.mustGet("prov")
	if tries != 2 || shows(got) != "bht-dam@a - xld-dam -" || got.Version != w.Version+2 {
		t.Fatalf("after the race: %d tries, %q version %d", tries, shows(got), got.Version)
	}
	if got := e.pinAudit(); strings.Join(got, ",") != "wall.pin prov a [0]" {
		t.Fatalf("audit: %v", got)
	}
}
