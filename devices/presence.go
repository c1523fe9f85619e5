package devices

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// Presence is whether a device is connected, as its retained status topic
// and Last Will say (DESIGN.md): "online" or "offline"; "unknown" before it
// has said either; "stale" when it says it is online but has sent nothing
// for longer than its kind's staleness limit (StaleAfter).
type Presence struct {
	db  *sql.DB
	now func() time.Time

	mu       sync.RWMutex
	state    map[ID]presenceState
	lastSeen map[ID]time.Time
	// OnChange is called after a device's state changes (outside the lock).
	OnChange func(id ID, state string, at time.Time)
}

type presenceState struct {
	state string
	since time.Time
}

// Presence states.
const (
	StateOnline  = "online"
	StateOffline = "offline"
	StateUnknown = "unknown"
	StateStale   = "stale"
)

// StaleAfter is how long a device of each kind may stay silent while online
// before it is stale: gauges report every few minutes, a lamp controller
// every minute, an AIS receiver hears boats all the time.
var StaleAfter = map[string]time.Duration{
	"water_level":  15 * time.Minute,
	"streetlight":  10 * time.Minute,
	"vessel":       30 * time.Minute,
	"ais_receiver": 5 * time.Minute,
	"generic":      15 * time.Minute,
}

// Seen records that a device sent something now. A stale device that
// speaks again is online again.
func (p *Presence) Seen(ctx context.Context, id ID) {
	now := p.now()
	p.mu.Lock()
	p.lastSeen[id] = now
	stale := p.state[id].state == StateStale
	p.mu.Unlock()
	if stale {
		_ = p.Set(ctx, id, StateOnline)
	}
}

// Sweep marks stale every online device silent for longer than its kind's
// limit; kindOf gives a device's kind. Call it periodically.
func (p *Presence) Sweep(ctx context.Context, kindOf func(ID) (string, bool)) {
	now := p.now()
	var stale []ID
	p.mu.RLock()
	for id, st := range p.state {
		if st.state != StateOnline {
			continue
		}
		kind, ok := kindOf(id)
		limit, known := StaleAfter[kind]
		if !ok || !known {
			continue
		}
		last, seen := p.lastSeen[id]
		if !seen || last.Before(st.since) {
			last = st.since // online since then, silent since then
		}
		if now.Sub(last) > limit {
			stale = append(stale, id)
		}
	}
	p.mu.RUnlock()
	for _, id := range stale {
		_ = p.Set(ctx, id, StateStale)
	}
}

// NewPresence loads each device's last known state.
func NewPresence(ctx context.Context, db *sql.DB) (*Presence, error) {
	p := &Presence{db: db, now: time.Now, state: map[ID]presenceState{}, lastSeen: map[ID]time.Time{}}
	// The last row of each device (two steps can share a millisecond).
	rows, err := db.QueryContext(ctx, `SELECT device_id, state, at FROM presence
		WHERE rowid IN (SELECT max(rowid) FROM presence GROUP BY device_id)`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id ID
		var st string
		var at int64
		if err := rows.Scan(&id, &st, &at); err != nil {
			return nil, err
		}
		p.state[id] = presenceState{state: st, since: time.UnixMilli(at)}
	}
	return p, rows.Err()
}

// Set records a device's state as its status topic says it; a repeat of
// the current state changes nothing.
func (p *Presence) Set(ctx context.Context, id ID, state string) error {
	now := p.now().Truncate(time.Millisecond)
	p.mu.Lock()
	cur, ok := p.state[id]
	if ok && cur.state == state {
		p.mu.Unlock()
		return nil
	}
	p.state[id] = presenceState{state: state, since: now}
	p.mu.Unlock()
	if _, err := p.db.ExecContext(ctx, `INSERT INTO presence(device_id, state, at) VALUES (?, ?, ?)`, id, state, now.UnixMilli()); err != nil {
		return err
	}
	if p.OnChange != nil {
		p.OnChange(id, state, now)
	}
	return nil
}

// Get returns a device's state and since when.
func (p *Presence) Get(id ID) (string, time.Time) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	s, ok := p.state[id]
	if !ok {
		return StateUnknown, time.Time{}
	}
	return s.state, s.since
}

// Online reports whether the device is connected.
func (p *Presence) Online(id ID) bool {
	st, _ := p.Get(id)
	return st == StateOnline
}
