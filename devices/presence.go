package devices

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// Presence is whether a device is connected, as its retained status topic
// and Last Will say (DESIGN.md): "online" or "offline"; "unknown" before it
// has said either.
type Presence struct {
	db  *sql.DB
	now func() time.Time

	mu    sync.RWMutex
	state map[ID]presenceState
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
)

// NewPresence loads each device's last known state.
func NewPresence(ctx context.Context, db *sql.DB) (*Presence, error) {
	p := &Presence{db: db, now: time.Now, state: map[ID]presenceState{}}
	rows, err := db.QueryContext(ctx, `SELECT device_id, state, at FROM presence p
		WHERE at = (SELECT max(at) FROM presence WHERE device_id = p.device_id)`)
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
