package alerts

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/lookout-cc/lookout/devices"
	"github.com/lookout-cc/lookout/internal/audit"
	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// Alert states, in the order an alert goes through them.
const (
	StateActive       = "active"
	StateAcknowledged = "acknowledged"
	StateDispatched   = "dispatched"
	StateResolved     = "resolved"
	StateClosed       = "closed"
)

// States lists the alert states in lifecycle order.
var States = []string{StateActive, StateAcknowledged, StateDispatched, StateResolved, StateClosed}

// open reports whether an alert in this state is still being handled: a
// repeat of its condition updates it rather than raising another.
func open(state string) bool {
	return state == StateActive || state == StateAcknowledged || state == StateDispatched
}

// Alert is one alert: a rule's condition on one device, from when it was
// raised until it is closed.
type Alert struct {
	ID         string         `json:"id"`
	RuleID     string         `json:"rule_id"`
	RuleName   string         `json:"rule_name"`
	Kind       string         `json:"kind"`
	DeviceID   devices.ID     `json:"device_id"`
	DeviceName string         `json:"device_name,omitempty"`
	SiteID     devices.SiteID `json:"site_id"`
	OrgID      orgs.ID        `json:"org_id"`
	Metric     string         `json:"metric,omitempty"`
	Severity   Severity       `json:"severity"`
	State      string         `json:"state"`
	StartedAt  time.Time      `json:"started_at"`
	UpdatedAt  time.Time      `json:"updated_at"`
	// ClearedAt is set while the condition is back to normal.
	ClearedAt *time.Time `json:"cleared_at"`
	// Value is the latest reading (for a rate rule, the rate per hour; for
	// no_data, the seconds of silence); Peak the most extreme one; Bound
	// the threshold it was raised against; Count the readings that held
	// the condition.
	Value    float64     `json:"value"`
	Peak     float64     `json:"peak"`
	Bound    float64     `json:"bound"`
	Count    int         `json:"count"`
	Position *[2]float64 `json:"position,omitempty"`
	// Feeds are the cameras that show it, the most relevant first.
	Feeds    []Feed    `json:"feeds"`
	Dispatch *Dispatch `json:"dispatch,omitempty"`
	// Clips are the ids of the video clips saved for it: the moments
	// before it from the cameras that show it (GET /api/v1/clips/{id}).
	Clips []string     `json:"clips"`
	Steps []StepRecord `json:"steps,omitempty"`

	up bool // peak is the highest reading; else the lowest
}

// Feed is a camera that shows an alert.
type Feed struct {
	CameraID  string         `json:"camera_id"`
	SiteID    devices.SiteID `json:"site_id"`
	DistanceM float64        `json:"distance_m"`
}

// Dispatch is to whom an alert was handed: an organisation, a department
// (free text, such as 县水利局防汛办), or both.
type Dispatch struct {
	OrgID      orgs.ID `json:"org_id,omitempty"`
	Department string  `json:"department,omitempty"`
}

// StepRecord is one step of an alert's life.
type StepRecord struct {
	Step     string    `json:"step"`
	Actor    string    `json:"actor"`
	Note     string    `json:"note,omitempty"`
	Severity Severity  `json:"severity"`
	At       time.Time `json:"at"`
}

type pairKey struct {
	rule   string
	device devices.ID
}

// handled is an alert resolved or closed while its condition still held:
// the condition does not raise a new alert until it clears (or rises above
// the handled severity).
type handled struct {
	alertID  string
	severity Severity
}

// Errors of the alert store.
var (
	ErrAlertNotFound = errclass.New(errclass.NotFound, "alert_not_found", "alert not found")
	ErrAlertState    = errclass.New(errclass.Conflict, "alert_state", "the alert is not in a state that allows this step")
)

// Store keeps alerts: the open ones in memory (for the engine, on every
// reading) and every one in the state database. Repeats update memory at
// once and the database within a second; every other step is stored, with
// its audit entry, before it is announced.
type Store struct {
	db    *sql.DB
	audit *audit.Log
	tree  *orgs.Store
	log   *slog.Logger
	now   func() time.Time
	// OnEvent receives every change of an alert, for the events stream:
	// typ "alert", the alert's organisation, and {"action", "alert"}.
	OnEvent func(typ string, org orgs.ID, data any)

	mu        sync.Mutex
	open      map[pairKey]*Alert
	byID      map[string]*Alert
	handled   map[pairKey]handled
	dirty     map[string]bool
	lastEvent map[string]time.Time
}

// updateEvery is how often a repeat of an open alert is announced at most
// (a rise in severity, a clear or a lifecycle step is announced at once).
const updateEvery = 5 * time.Second

// NewStore loads the open alerts, and those handled while their condition
// held, so that a restart neither loses nor doubles them.
func NewStore(ctx context.Context, db *sql.DB, auditLog *audit.Log, tree *orgs.Store, log *slog.Logger) (*Store, error) {
	s := &Store{db: db, audit: auditLog, tree: tree, log: log, now: time.Now, open: map[pairKey]*Alert{}, byID: map[string]*Alert{},
		handled: map[pairKey]handled{}, dirty: map[string]bool{}, lastEvent: map[string]time.Time{}}
	// Only the newest alert of each (rule, device) decides: open, or
	// handled while its condition held, or neither.
	rows, err := db.QueryContext(ctx, `SELECT `+alertColumns+` FROM alerts a
		WHERE (cleared_at IS NULL OR state IN ('active', 'acknowledged', 'dispatched'))
		AND started_at = (SELECT max(started_at) FROM alerts b WHERE b.rule_id = a.rule_id AND b.device_id = a.device_id)
		ORDER BY started_at`)
	if err != nil {
		return nil, fmt.Errorf("load alerts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, fmt.Errorf("load alerts: %w", err)
		}
		k := pairKey{a.RuleID, a.DeviceID}
		if open(a.State) {
			s.open[k], s.byID[a.ID] = a, a
			delete(s.handled, k)
		} else {
			s.handled[k] = handled{a.ID, a.Severity}
		}
	}
	return s, rows.Err()
}

const alertColumns = `id, rule_id, rule_name, kind, device_id, device_name, site_id, org_id, metric, severity, state, started_at, updated_at,
	cleared_at, value, peak, bound, count, position, feeds, dispatch, clips`

func scanAlert(row interface{ Scan(...any) error }) (*Alert, error) {
	var a Alert
	var started, updated int64
	var cleared sql.NullInt64
	var position, feeds, dispatch, clipIDs string
	if err := row.Scan(&a.ID, &a.RuleID, &a.RuleName, &a.Kind, &a.DeviceID, &a.DeviceName, &a.SiteID, &a.OrgID, &a.Metric, &a.Severity, &a.State,
		&started, &updated, &cleared, &a.Value, &a.Peak, &a.Bound, &a.Count, &position, &feeds, &dispatch, &clipIDs); err != nil {
		return nil, err
	}
	a.StartedAt, a.UpdatedAt = time.UnixMilli(started).UTC(), time.UnixMilli(updated).UTC()
	if cleared.Valid {
		t := time.UnixMilli(cleared.Int64).UTC()
		a.ClearedAt = &t
	}
	if position != "" {
		a.Position = new([2]float64)
		_ = json.Unmarshal([]byte(position), a.Position)
	}
	_ = json.Unmarshal([]byte(feeds), &a.Feeds)
	a.Clips = []string{}
	_ = json.Unmarshal([]byte(clipIDs), &a.Clips)
	if dispatch != "" {
		a.Dispatch = new(Dispatch)
		_ = json.Unmarshal([]byte(dispatch), a.Dispatch)
	}
	a.up = a.Peak >= a.Bound
	return &a, nil
}

func newAlertID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "alr_" + hex.EncodeToString(b)
}

// firing reports whether the pair has an alert whose condition holds (open
// and not cleared, or handled while it held): the engine starts such a
// pair as firing, so that a normal reading clears it.
func (s *Store) firing(k pairKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.open[k]; ok {
		return a.ClearedAt == nil
	}
	_, ok := s.handled[k]
	return ok
}

// forgetRule drops what is held for a rule that is gone: its handled
// alerts no longer stop new ones of a rule that cannot raise any.
func (s *Store) forgetRule(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.handled {
		if k.rule == id {
			delete(s.handled, k)
		}
	}
}

// raise takes a reading that holds a rule's condition on a device: a new
// alert, or a repeat (value, peak, count) of the open one, which may rise
// in severity or fire again after it had cleared.
func (s *Store) raise(ctx context.Context, r *Rule, d devices.Device, v verdict, feeds func() []Feed) {
	now := s.now().Truncate(time.Millisecond).UTC()
	k := pairKey{r.ID, d.ID}
	s.mu.Lock()
	a, ok := s.open[k]
	if !ok {
		if h, was := s.handled[k]; was && v.severity.Rank() <= h.severity.Rank() {
			s.mu.Unlock()
			return // handled already, and no worse now
		}
		s.mu.Unlock()
		s.create(ctx, r, d, v, feeds(), now)
		return
	}
	a.Value, a.UpdatedAt = v.value, now
	a.Count++
	if (a.up && v.value > a.Peak) || (!a.up && v.value < a.Peak) {
		a.Peak = v.value
	}
	if v.position != nil {
		a.Position = v.position
	}
	step := ""
	switch {
	case v.severity.Rank() > a.Severity.Rank():
		a.Severity, a.Bound, step = v.severity, v.bound, "escalated"
		if a.ClearedAt != nil {
			a.ClearedAt = nil
		}
	case a.ClearedAt != nil:
		a.ClearedAt, step = nil, "refired"
	}
	if step == "" {
		s.dirty[a.ID] = true
		announce := now.Sub(s.lastEvent[a.ID]) >= updateEvery
		if announce {
			s.lastEvent[a.ID] = now
		}
		snapshot := a.copy()
		s.mu.Unlock()
		if announce {
			s.emit("updated", snapshot)
		}
		return
	}
	snapshot := a.copy()
	delete(s.dirty, a.ID)
	s.mu.Unlock()
	s.storeStep(ctx, snapshot, step)
}

// observe notes the latest reading of an alert that stays raised (between
// its bound and its clear bound).
func (s *Store) observe(k pairKey, v verdict) {
	now := s.now().Truncate(time.Millisecond).UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.open[k]
	if !ok || a.ClearedAt != nil {
		return
	}
	a.Value, a.UpdatedAt = v.value, now
	if v.position != nil {
		a.Position = v.position
	}
	s.dirty[a.ID] = true
}

// clear marks the pair's alert as back to normal (it stays open until an
// operator resolves it), or ends the hold of a handled one.
func (s *Store) clear(ctx context.Context, k pairKey, v verdict) {
	now := s.now().Truncate(time.Millisecond).UTC()
	s.mu.Lock()
	if h, ok := s.handled[k]; ok {
		// Resolved (or closed) while its condition held: the condition is
		// over now, a step of its record like any other.
		delete(s.handled, k)
		s.mu.Unlock()
		a, err := s.get(ctx, h.alertID)
		if err != nil {
			s.log.Error("alert clear not stored", "alert", h.alertID, "err", err)
			return
		}
		a.ClearedAt, a.UpdatedAt = &now, now
		s.storeStep(ctx, a, "cleared")
		return
	}
	a, ok := s.open[k]
	if !ok || a.ClearedAt != nil {
		s.mu.Unlock()
		return
	}
	a.ClearedAt, a.UpdatedAt = &now, now
	if v.kind == verdictClear && (v.value != 0 || v.position != nil) {
		a.Value = v.value
	}
	if v.position != nil {
		a.Position = v.position
	}
	snapshot := a.copy()
	delete(s.dirty, a.ID)
	s.mu.Unlock()
	s.storeStep(ctx, snapshot, "cleared")
}

func (a *Alert) copy() *Alert {
	c := *a
	c.Feeds = append([]Feed(nil), a.Feeds...)
	c.Clips = append([]string{}, a.Clips...)
	return &c
}

// AttachClip records a clip saved for an alert (the moments before it),
// and announces the alert with it.
func (s *Store) AttachClip(ctx context.Context, alertID, clipID string) error {
	s.mu.Lock()
	var snapshot *Alert
	if a, ok := s.byID[alertID]; ok {
		a.Clips = append(a.Clips, clipID)
		snapshot = a.copy()
	}
	s.mu.Unlock()
	if snapshot == nil {
		var err error
		if snapshot, err = s.get(ctx, alertID); err != nil {
			return err
		}
		snapshot.Clips = append(snapshot.Clips, clipID)
	}
	// json_insert appends to what is stored, so that two clips saved at
	// once both stay.
	if _, err := s.db.ExecContext(ctx, `UPDATE alerts SET clips = json_insert(clips, '$[#]', ?) WHERE id = ?`, clipID, alertID); err != nil {
		return err
	}
	s.emit("clip", snapshot)
	return nil
}

// create stores a new alert with its feeds and announces it.
func (s *Store) create(ctx context.Context, r *Rule, d devices.Device, v verdict, feeds []Feed, now time.Time) {
	a := &Alert{ID: newAlertID(), RuleID: r.ID, RuleName: r.Name, Kind: r.Kind, DeviceID: d.ID, DeviceName: d.Name, SiteID: d.SiteID,
		OrgID: d.OrgID, Metric: r.Metric, Severity: v.severity, State: StateActive, StartedAt: now, UpdatedAt: now,
		Value: v.value, Peak: v.value, Bound: v.bound, Count: 1, Position: v.position, Feeds: feeds, Clips: []string{}}
	a.up = v.value >= v.bound
	if a.Feeds == nil {
		a.Feeds = []Feed{}
	}
	err := s.audit.InTx(ctx, func(tx *sql.Tx, add func(audit.Rec)) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO alerts(`+alertColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, '', '[]')`,
			a.ID, a.RuleID, a.RuleName, a.Kind, a.DeviceID, a.DeviceName, a.SiteID, a.OrgID, a.Metric, a.Severity, a.State, now.UnixMilli(), now.UnixMilli(),
			a.Value, a.Peak, a.Bound, a.Count, encodePosition(a.Position), encodeJSON(a.Feeds)); err != nil {
			return err
		}
		if err := insertStep(ctx, tx, a.ID, "raised", "system", "", a.Severity, now); err != nil {
			return err
		}
		add(audit.Rec{Actor: "system", OrgID: a.OrgID, Action: "alert.raise", Target: a.ID, Result: string(a.Severity),
			Detail: map[string]any{"rule": a.RuleID, "device": a.DeviceID, "value": a.Value, "bound": a.Bound}})
		return nil
	})
	if err != nil {
		s.log.Error("alert not stored", "rule", r.ID, "device", d.ID, "err", err)
		return
	}
	k := pairKey{r.ID, d.ID}
	s.mu.Lock()
	s.open[k], s.byID[a.ID] = a, a
	delete(s.handled, k)
	s.lastEvent[a.ID] = now
	snapshot := a.copy()
	s.mu.Unlock()
	s.emit("raised", snapshot)
}

func encodePosition(p *[2]float64) string {
	if p == nil {
		return ""
	}
	return encodeJSON(p)
}

func encodeJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func insertStep(ctx context.Context, tx *sql.Tx, id, step, actor, note string, sev Severity, at time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO alert_steps(alert_id, step, actor, note, severity, at) VALUES (?, ?, ?, ?, ?, ?)`,
		id, step, actor, note, sev, at.UnixMilli())
	return err
}

// storeStep stores a step of the engine's (escalated, refired, cleared)
// with the alert's condition as it is after it, the step row and its audit
// entry in one transaction, then announces it. The engine's goroutine is
// the only writer of an alert's condition, so its writes reach the
// database in order; an operator's step writes the lifecycle fields only.
func (s *Store) storeStep(ctx context.Context, a *Alert, step string) {
	err := s.audit.InTx(ctx, func(tx *sql.Tx, add func(audit.Rec)) error {
		if err := updateCondition(ctx, tx, a); err != nil {
			return err
		}
		return s.stepRecord(ctx, tx, add, a, step, "system", "")
	})
	if err != nil {
		s.log.Error("alert step not stored", "alert", a.ID, "step", step, "err", err)
		return
	}
	s.emit(step, a)
}

// stepRecord adds a step's row and audit entry in tx.
func (s *Store) stepRecord(ctx context.Context, tx *sql.Tx, add func(audit.Rec), a *Alert, step, actor, note string) error {
	if err := insertStep(ctx, tx, a.ID, step, actor, note, a.Severity, a.UpdatedAt); err != nil {
		return err
	}
	detail := map[string]any{"rule": a.RuleID, "device": a.DeviceID, "severity": a.Severity, "state": a.State}
	if note != "" {
		detail["note"] = note
	}
	if step == StateDispatched && a.Dispatch != nil {
		detail["dispatch"] = a.Dispatch
	}
	add(audit.Rec{Actor: actor, OrgID: a.OrgID, Action: "alert." + stepAction[step], Target: a.ID, Result: a.State, Detail: detail})
	return nil
}

// stepAction names each step's audit action.
var stepAction = map[string]string{"raised": "raise", "escalated": "escalate", "cleared": "clear", "refired": "refire",
	StateAcknowledged: "ack", StateDispatched: "dispatch", StateResolved: "resolve", StateClosed: "close"}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// updateCondition writes what the engine owns: severity, bound, whether
// the condition is over, and the readings.
func updateCondition(ctx context.Context, db execer, a *Alert) error {
	var cleared any
	if a.ClearedAt != nil {
		cleared = a.ClearedAt.UnixMilli()
	}
	_, err := db.ExecContext(ctx, `UPDATE alerts SET severity = ?, bound = ?, cleared_at = ?, value = ?, peak = ?, count = ?, position = ?,
		updated_at = max(updated_at, ?) WHERE id = ?`,
		a.Severity, a.Bound, cleared, a.Value, a.Peak, a.Count, encodePosition(a.Position), a.UpdatedAt.UnixMilli(), a.ID)
	return err
}

// flush stores the repeats of open alerts noted since the last flush.
func (s *Store) flush(ctx context.Context) {
	s.mu.Lock()
	if len(s.dirty) == 0 {
		s.mu.Unlock()
		return
	}
	var as []*Alert
	for id := range s.dirty {
		if a, ok := s.byID[id]; ok {
			as = append(as, a.copy())
		}
	}
	clear(s.dirty)
	s.mu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		s.log.Error("alert repeats not stored", "err", err)
		return
	}
	defer func() { _ = tx.Rollback() }()
	for _, a := range as {
		if err := updateCondition(ctx, tx, a); err != nil {
			s.log.Error("alert repeats not stored", "err", err)
			return
		}
	}
	if err := tx.Commit(); err != nil {
		s.log.Error("alert repeats not stored", "err", err)
	}
}

func (s *Store) emit(action string, a *Alert) {
	if s.OnEvent != nil {
		s.OnEvent("alert", a.OrgID, AlertEvent{Action: action, Alert: a})
	}
}

// AlertEvent is an alert's change on the events stream.
type AlertEvent struct {
	Action string `json:"action"` // raised, updated, escalated, cleared, refired, acknowledged, dispatched, resolved, closed
	Alert  *Alert `json:"alert"`
}

// StepInput is an operator's step on an alert.
type StepInput struct {
	Note string `json:"note"`
	// For dispatch: the organisation (inside the caller's scope) and/or
	// the department the alert is handed to.
	OrgID      orgs.ID `json:"org_id"`
	Department string  `json:"department"`
}

// stepFrom lists the states each operator step may be taken from: an
// alert is acknowledged before anything else, dispatching is optional,
// and only a resolved alert is closed.
var stepFrom = map[string][]string{
	StateAcknowledged: {StateActive},
	StateDispatched:   {StateAcknowledged},
	StateResolved:     {StateAcknowledged, StateDispatched},
	StateClosed:       {StateResolved},
}

// Step takes an operator's step on an alert inside scope: acknowledged,
// dispatched, resolved or closed. A step out of order is ErrAlertState.
func (s *Store) Step(ctx context.Context, scope orgs.Scope, id, step, actor string, in StepInput) (*Alert, error) {
	from, ok := stepFrom[step]
	if !ok {
		return nil, errclass.Invalidf("step", "must be acknowledged, dispatched, resolved or closed")
	}
	in.Note = strings.TrimSpace(in.Note)
	if len(in.Note) > 2000 {
		return nil, errclass.Invalidf("note", "at most 2000 bytes")
	}
	var dispatch *Dispatch
	if step == StateDispatched {
		in.Department = strings.TrimSpace(in.Department)
		if in.OrgID == "" && in.Department == "" {
			return nil, errclass.Invalidf("org_id", "give the organisation or the department the alert is dispatched to")
		}
		if len(in.Department) > 200 {
			return nil, errclass.Invalidf("department", "at most 200 bytes")
		}
		if in.OrgID != "" {
			if err := s.tree.CheckInScope(scope, in.OrgID, "org_id"); err != nil {
				return nil, err
			}
		}
		dispatch = &Dispatch{OrgID: in.OrgID, Department: in.Department}
	} else if in.OrgID != "" || in.Department != "" {
		return nil, errclass.Invalidf("org_id", "only a dispatch names an organisation or department")
	}
	now := s.now().Truncate(time.Millisecond).UTC()
	// The alert as it is now: open ones in memory, the others stored.
	s.mu.Lock()
	var cur *Alert
	if a, ok := s.byID[id]; ok {
		cur = a.copy()
	}
	s.mu.Unlock()
	if cur == nil {
		var err error
		if cur, err = s.get(ctx, id); err != nil {
			return nil, err
		}
	}
	if !s.tree.Contains(scope, cur.OrgID) {
		return nil, orgs.ErrOutOfScope
	}
	if !contains(from, cur.State) {
		return nil, stateErr(cur.State, step)
	}
	next := cur.copy()
	next.State, next.UpdatedAt = step, now
	if dispatch != nil {
		next.Dispatch = dispatch
	}
	// Stored first, on the condition that nobody took a step meanwhile:
	// of two operators acting at once, one gets 409.
	err := s.audit.InTx(ctx, func(tx *sql.Tx, add func(audit.Rec)) error {
		res, err := tx.ExecContext(ctx, `UPDATE alerts SET state = ?, dispatch = ?, updated_at = max(updated_at, ?) WHERE id = ? AND state = ?`,
			next.State, encodeDispatch(next.Dispatch), now.UnixMilli(), id, cur.State)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errStateChanged
		}
		return s.stepRecord(ctx, tx, add, next, step, actor, in.Note)
	})
	if errors.Is(err, errStateChanged) {
		stored, gerr := s.get(ctx, id)
		if gerr != nil {
			return nil, gerr
		}
		return nil, stateErr(stored.State, step)
	}
	if err != nil {
		return nil, err
	}
	// Then memory: the lifecycle fields only, since the engine may have
	// moved the condition meanwhile.
	s.mu.Lock()
	if a, ok := s.byID[id]; ok {
		a.State, a.Dispatch = next.State, next.Dispatch
		a.UpdatedAt = maxTime(a.UpdatedAt, now)
		next = a.copy()
		if !open(step) {
			// Resolved: no longer open. If its condition still holds,
			// it raises no new alert until it clears or worsens.
			k := pairKey{a.RuleID, a.DeviceID}
			delete(s.open, k)
			delete(s.byID, id)
			delete(s.dirty, id)
			delete(s.lastEvent, id)
			if a.ClearedAt == nil {
				s.handled[k] = handled{id, a.Severity}
			}
		}
	}
	s.mu.Unlock()
	s.emit(step, next)
	return next, nil
}

// errStateChanged: another step came first.
var errStateChanged = errors.New("alert state changed")

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func encodeDispatch(d *Dispatch) string {
	if d == nil {
		return ""
	}
	return encodeJSON(d)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func stateErr(state, step string) error {
	return &errclass.Error{Kind: errclass.Conflict, Code: ErrAlertState.Code,
		Message: fmt.Sprintf("the alert is %s; %s follows %s", state, step, strings.Join(stepFrom[step], " or "))}
}

// get reads an alert from the database.
func (s *Store) get(ctx context.Context, id string) (*Alert, error) {
	a, err := scanAlert(s.db.QueryRowContext(ctx, `SELECT `+alertColumns+` FROM alerts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrAlertNotFound
	}
	return a, err
}

// Get returns an alert inside scope, with its steps.
func (s *Store) Get(ctx context.Context, scope orgs.Scope, id string) (*Alert, error) {
	s.mu.Lock()
	a, ok := s.byID[id]
	var snapshot *Alert
	if ok {
		snapshot = a.copy()
	}
	s.mu.Unlock()
	if !ok {
		var err error
		if snapshot, err = s.get(ctx, id); err != nil {
			return nil, err
		}
	}
	if !s.tree.Contains(scope, snapshot.OrgID) {
		return nil, orgs.ErrOutOfScope
	}
	rows, err := s.db.QueryContext(ctx, `SELECT step, actor, note, severity, at FROM alert_steps WHERE alert_id = ? ORDER BY at, rowid`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	snapshot.Steps = []StepRecord{}
	for rows.Next() {
		var st StepRecord
		var at int64
		if err := rows.Scan(&st.Step, &st.Actor, &st.Note, &st.Severity, &at); err != nil {
			return nil, err
		}
		st.At = time.UnixMilli(at).UTC()
		snapshot.Steps = append(snapshot.Steps, st)
	}
	return snapshot, rows.Err()
}

// Filter selects alerts.
type Filter struct {
	State    string
	Severity Severity
	SiteID   devices.SiteID
	DeviceID devices.ID
	RuleID   string
	Limit    int
}

// List returns alerts inside scope, newest first.
func (s *Store) List(ctx context.Context, scope orgs.Scope, f Filter) ([]*Alert, error) {
	if f.State != "" && !contains(States, f.State) && f.State != "open" {
		return nil, errclass.Invalidf("state", "must be open or one of %s", strings.Join(States, ", "))
	}
	if f.Severity != "" && f.Severity.Rank() == 0 {
		return nil, errclass.Invalidf("severity", "must be one of blue, yellow, orange, red")
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 200
	}
	cond, args := scope.SQL("org_id")
	q := `SELECT ` + alertColumns + ` FROM alerts WHERE ` + cond
	add := func(c string, a any) { q += " AND " + c; args = append(args, a) }
	switch f.State {
	case "":
	case "open":
		q += " AND state IN ('active', 'acknowledged', 'dispatched')"
	default:
		add("state = ?", f.State)
	}
	if f.Severity != "" {
		add("severity = ?", f.Severity)
	}
	if f.SiteID != "" {
		add("site_id = ?", f.SiteID)
	}
	if f.DeviceID != "" {
		add("device_id = ?", f.DeviceID)
	}
	if f.RuleID != "" {
		add("rule_id = ?", f.RuleID)
	}
	q += " ORDER BY started_at DESC, id LIMIT ?"
	args = append(args, f.Limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*Alert{}
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// The database is behind memory by the repeats of the last second.
	s.mu.Lock()
	for i, a := range out {
		if m, ok := s.byID[a.ID]; ok {
			out[i] = m.copy()
		}
	}
	s.mu.Unlock()
	return out, nil
}
