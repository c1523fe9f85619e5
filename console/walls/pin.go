package walls

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/lookout-cc/lookout/console/alerts"
	"github.com/lookout-cc/lookout/console/events"
	"github.com/lookout-cc/lookout/internal/audit"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// PinnerParams are what a Pinner works with.
type PinnerParams struct {
	Store *Store
	Orgs  *orgs.Store
	// Events carries the alert events the Pinner follows, and the wall
	// events it publishes.
	Events *events.Bus
	Audit  *audit.Log
	// OpenAlerts returns every open alert (active, acknowledged,
	// dispatched), to reconcile the walls with at the start and after
	// events were missed.
	OpenAlerts func(ctx context.Context) ([]*alerts.Alert, error)
	Log        *slog.Logger
}

// Pinner puts the cameras of alerts on the walls by itself (DESIGN.md:
// correlation of alerts with feeds -> wall). It follows the alert events:
//
//   - An alert raised (or escalated, or firing again) with feeds is pinned
//     on every wall whose organisation is the alert's or above it and
//     whose alert area is not empty: its feeds go into the alert-area
//     tiles in order, as many as fit; a feed already shown in the alert
//     area keeps its place. Each pinned tile keeps what it showed before.
//   - A newer alert takes the area over from older ones, but not from a
//     still-open alert of a higher severity: red stays over orange.
//   - When the alert is resolved or closed, its tiles show what they
//     showed before it.
//   - Other steps (updates, acknowledgement, dispatch, clearing) change
//     nothing, and an alert is pinned once: a repeat or a refire at the
//     same severity does not pin again what an operator moved away.
//
// Each change of a wall is one new version by "system", with an audit
// entry per alert (wall.pin, wall.unpin) stored with it, and a wall event.
//
// The Pinner reads the events on its own goroutine, from a subscription
// with a bounded queue, so the bus never waits for it. When it falls behind
// it resumes from the replay ring; when that cannot serve it (and at the
// start) it reconciles: tiles of alerts no longer open go back, open
// alerts not yet pinned are pinned, least important first. After a restart
// that means every open alert is pinned again, even one an operator had
// moved off the wall.
//
// Lifecycle: NewPinner, Start once, Close once after Start. A closed
// Pinner is not restarted.
type Pinner struct {
	p      PinnerParams
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	sub    *events.Subscription // the first; run owns it and its successors

	// Owned by run.
	pinned map[string]alerts.Severity // open alerts handled, by id: their severity when pinned
	last   string                     // id of the last event handled

	// beforeEvent, when set (tests), runs before each event is handled.
	beforeEvent func()
}

// NewPinner returns a Pinner that has not started.
func NewPinner(p PinnerParams) *Pinner {
	return &Pinner{p: p, done: make(chan struct{}), pinned: map[string]alerts.Severity{}}
}

// Start subscribes to the alert events, so that every alert published
// from now on is seen, and starts the goroutine that handles them (first
// reconciling the walls with the open alerts).
func (p *Pinner) Start() {
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.sub = p.p.Events.Subscribe(isAlert, "")
	go p.run()
}

// Close stops the Pinner and waits for a change under way to finish.
func (p *Pinner) Close() {
	p.cancel()
	<-p.done
}

func isAlert(ev events.Event) bool { return ev.Type == events.TypeAlert }

func (p *Pinner) run() {
	defer close(p.done)
	sub := p.sub
	defer func() { sub.Close() }()
	p.reconcile()
	for {
		select {
		case <-p.ctx.Done():
			return
		case ev, ok := <-sub.C():
			if ok {
				p.handle(ev)
				continue
			}
			if !errors.Is(sub.Err(), events.ErrLagging) {
				return // the bus is closed
			}
			// Behind: the rest from the replay ring, or, when it no
			// longer holds them, from the alerts themselves.
			sub = p.p.Events.Subscribe(isAlert, p.last)
			if p.last == "" || sub.Gap {
				p.p.Log.Warn("wall pinning missed alert events; reconciling the walls")
				p.reconcile()
				continue
			}
			for _, ev := range sub.Missed {
				p.handle(ev)
			}
		}
	}
}

func (p *Pinner) handle(ev events.Event) {
	if p.beforeEvent != nil {
		p.beforeEvent()
	}
	p.last = ev.ID
	var ae alerts.AlertEvent
	if err := json.Unmarshal(ev.Data, &ae); err != nil || ae.Alert == nil {
		p.p.Log.Error("alert event not understood", "event", ev.ID, "err", err)
		return
	}
	a := ae.Alert
	switch ae.Action {
	case "raised", "escalated", "refired":
		if sev, seen := p.pinned[a.ID]; seen && a.Severity.Rank() <= sev.Rank() {
			return // a repeat
		}
		p.pinned[a.ID] = a.Severity
		if len(feedsOf(a)) == 0 {
			return
		}
		p.apply(func(w *Wall, scope orgs.Scope) { p.pinOn(w, scope, a) })
	case alerts.StateResolved, alerts.StateClosed:
		delete(p.pinned, a.ID)
		p.apply(func(w *Wall, _ orgs.Scope) {
			for i := range w.Tiles {
				if w.Tiles[i].AlertID == a.ID {
					unpinTile(&w.Tiles[i])
				}
			}
		})
	}
}

// reconcile brings the walls in line with the open alerts: the tiles of
// alerts no longer open go back; open alerts not pinned yet (or more
// severe than when pinned) are pinned, the least severe and oldest first,
// so that the most important ends on top.
func (p *Pinner) reconcile() {
	open, err := p.p.OpenAlerts(p.ctx)
	if err != nil {
		if p.ctx.Err() == nil {
			p.p.Log.Error("open alerts not read; walls not reconciled", "err", err)
		}
		return
	}
	isOpen := map[string]bool{}
	var toPin []*alerts.Alert
	for _, a := range open {
		isOpen[a.ID] = true
		if sev, seen := p.pinned[a.ID]; !seen || a.Severity.Rank() > sev.Rank() {
			toPin = append(toPin, a)
		}
	}
	for id := range p.pinned {
		if !isOpen[id] {
			delete(p.pinned, id)
		}
	}
	slices.SortStableFunc(toPin, func(a, b *alerts.Alert) int {
		return cmp.Or(cmp.Compare(a.Severity.Rank(), b.Severity.Rank()), a.StartedAt.Compare(b.StartedAt), cmp.Compare(a.ID, b.ID))
	})
	for _, a := range toPin {
		p.pinned[a.ID] = a.Severity
	}
	p.apply(func(w *Wall, scope orgs.Scope) {
		for i := range w.Tiles {
			if id := w.Tiles[i].AlertID; id != "" && !isOpen[id] {
				unpinTile(&w.Tiles[i])
			}
		}
		for _, a := range toPin {
			p.pinOn(w, scope, a)
		}
	})
}

// isOpen reports whether alert id is open, as far as the Pinner knows.
func (p *Pinner) isOpen(id string) bool {
	_, ok := p.pinned[id]
	return ok
}

// rankOf is the severity rank an alert was pinned at, 0 when it is not
// known to be open (its tiles may be taken by any alert).
func (p *Pinner) rankOf(id string) int {
	return p.pinned[id].Rank()
}

// pinOn pins alert a's feeds on w, if w is at or above the alert's
// organisation (scope is w's).
func (p *Pinner) pinOn(w *Wall, scope orgs.Scope, a *alerts.Alert) {
	feeds := feedsOf(a)
	if len(feeds) == 0 || !p.p.Orgs.Contains(scope, a.OrgID) {
		return
	}
	rank := a.Severity.Rank()
	var free []int // the area's tiles a may take, in order
	shown := map[string]bool{}
	for _, i := range w.AlertArea {
		if i >= len(w.Tiles) {
			continue
		}
		t := w.Tiles[i]
		if t.AlertID == "" || t.AlertID == a.ID || p.rankOf(t.AlertID) <= rank {
			free = append(free, i)
		} else if t.Source != nil && t.Source.Kind == SourceCamera {
			shown[t.Source.ID] = true // up for a more severe alert already
		}
	}
	place := map[int]string{}
	// A feed already on a tile of the area stays there.
	for _, i := range free {
		if src := w.Tiles[i].Source; src != nil && src.Kind == SourceCamera && slices.Contains(feeds, src.ID) && !shown[src.ID] {
			place[i], shown[src.ID] = src.ID, true
		}
	}
	// The others fill the rest in order.
	next := 0
	for _, f := range feeds {
		if shown[f] {
			continue
		}
		for next < len(free) && place[free[next]] != "" {
			next++
		}
		if next == len(free) {
			break
		}
		place[free[next]], shown[f] = f, true
	}
	for i := range w.Tiles {
		if w.Tiles[i].AlertID == a.ID && place[i] == "" {
			unpinTile(&w.Tiles[i])
		}
	}
	for i, cam := range place {
		t := &w.Tiles[i]
		if t.AlertID == "" {
			t.Before = t.Source.clone()
		} // else it keeps what it showed before the other alert
		t.AlertID = a.ID
		t.Source = &Source{Kind: SourceCamera, ID: cam}
	}
}

// unpinTile gives a pinned tile back what it showed before the pin.
func unpinTile(t *Tile) {
	t.Source, t.Before, t.AlertID = t.Before, nil, ""
}

// feedsOf returns an alert's cameras, most relevant first, once each.
func feedsOf(a *alerts.Alert) []string {
	var out []string
	for _, f := range a.Feeds {
		if f.CameraID != "" && !slices.Contains(out, f.CameraID) {
			out = append(out, f.CameraID)
		}
	}
	return out
}

// errStale: the wall changed between reading and storing it.
var errStale = errors.New("wall changed meanwhile")

// apply runs change on every wall that has an alert area or a pinned
// tile, and stores each wall it changed as its next version, with its
// audit entries, then announces it. A wall changed meanwhile (by an
// editor) is read again and change made on it anew.
func (p *Pinner) apply(change func(w *Wall, scope orgs.Scope)) {
	ws, err := p.p.Store.pinnable(p.ctx)
	if err != nil {
		if p.ctx.Err() == nil {
			p.p.Log.Error("walls not read for alert pinning", "err", err)
		}
		return
	}
	for _, cur := range ws {
		for attempt := 0; ; attempt++ {
			scope, err := p.p.Orgs.ScopeOf(cur.OrgID)
			if err != nil {
				break
			}
			next := cur.clone()
			change(&next, scope)
			recs := pinRecords(cur, next, p.isOpen)
			if len(recs) == 0 {
				break
			}
			next.Version, next.UpdatedBy = cur.Version+1, Actor
			next.UpdatedAt = p.p.Store.now().Truncate(time.Millisecond).UTC()
			err = p.p.Audit.InTx(p.ctx, func(tx *sql.Tx, add func(audit.Rec)) error {
				ok, err := save(p.ctx, tx, next, cur.Version)
				if err != nil {
					return err
				}
				if !ok {
					return errStale
				}
				for _, r := range recs {
					add(r)
				}
				return nil
			})
			if err == nil {
				p.publish(next)
				break
			}
			if !errors.Is(err, errStale) || attempt == casRetries {
				if p.ctx.Err() == nil {
					p.p.Log.Error("wall not changed for an alert", "wall", cur.ID, "err", err)
				}
				break
			}
			if cur, err = p.p.Store.load(p.ctx, cur.ID); err != nil {
				break // deleted meanwhile
			}
		}
	}
}

func (p *Pinner) publish(w Wall) {
	if _, err := p.p.Events.Publish(events.TypeWall, w.OrgID, w); err != nil && !errors.Is(err, events.ErrClosed) {
		p.p.Log.Error("wall event not published", "wall", w.ID, "err", err)
	}
}

// pinRecords returns the audit entries of the pins that changed from
// before to after: per alert, the tiles it got (wall.pin) or lost
// (wall.unpin: ended, or, while it is still open, displaced by a more
// important alert).
func pinRecords(before, after Wall, open func(alertID string) bool) []audit.Rec {
	got, lost := map[string][]int{}, map[string][]int{}
	for i := range after.Tiles {
		b, a := before.Tiles[i], after.Tiles[i]
		if b.AlertID == a.AlertID {
			if a.AlertID != "" && !a.Source.equal(b.Source) {
				got[a.AlertID] = append(got[a.AlertID], i)
			}
			continue
		}
		if b.AlertID != "" {
			lost[b.AlertID] = append(lost[b.AlertID], i)
		}
		if a.AlertID != "" {
			got[a.AlertID] = append(got[a.AlertID], i)
		}
	}
	var recs []audit.Rec
	for _, id := range sortedKeys(lost) {
		reason := "ended"
		if open(id) {
			reason = "displaced"
		}
		recs = append(recs, audit.Rec{Actor: Actor, OrgID: after.OrgID, Action: "wall.unpin", Target: after.ID, Result: audit.ResultOK,
			Detail: map[string]any{"alert": id, "tiles": lost[id], "reason": reason}})
	}
	for _, id := range sortedKeys(got) {
		var cams []string
		for _, i := range got[id] {
			cams = append(cams, after.Tiles[i].Source.ID)
		}
		recs = append(recs, audit.Rec{Actor: Actor, OrgID: after.OrgID, Action: "wall.pin", Target: after.ID, Result: audit.ResultOK,
			Detail: map[string]any{"alert": id, "tiles": got[id], "cameras": cams}})
	}
	return recs
}

func sortedKeys(m map[string][]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
