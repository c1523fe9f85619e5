// Package rooms keeps the meeting rooms: what each is, who owns it (an
// organisation, scoped by the tier tree like every resource) and whether it
// is locked. The SFU holds who is in them; join tokens (console/auth) admit
// one identity to one room.
package rooms

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// Room is a meeting room.
type Room struct {
	ID              string    `json:"id"`
	Name            string    `json:"name"`
	OrgID           orgs.ID   `json:"org_id"`
	MaxParticipants int       `json:"max_participants"`
	Locked          bool      `json:"locked"`
	CreatedBy       string    `json:"created_by"`
	CreatedAt       time.Time `json:"created_at"`
}

// NewRoom is what a caller gives to create a room.
type NewRoom struct {
	ID              string  `json:"id"`
	Name            string  `json:"name"`
	OrgID           orgs.ID `json:"org_id"`
	MaxParticipants int     `json:"max_participants"`
	// Hearing says the room is a petition hearing's (console/hearings
	// makes it); never from a request.
	Hearing bool `json:"-"`
}

// HearingPrefix begins the id of a petition hearing's room, and only of
// one: such a room is reached through the hearings' API and the
// resident's link alone. The meeting rooms' API, the walls and the WHEP
// taps answer as if it did not exist (a hearing's video is personal data
// of the petitioner, for the roles that may see it).
const HearingPrefix = "hrg_"

// IsHearing says whether id is a hearing's room.
func IsHearing(id string) bool { return strings.HasPrefix(id, HearingPrefix) }

// Limits of a room.
const (
	DefaultMaxParticipants = 50
	MaxParticipants        = 500
)

// Errors of the room store.
var (
	ErrRoomNotFound = errclass.New(errclass.NotFound, "room_not_found", "room not found")
	ErrRoomExists   = errclass.New(errclass.Conflict, "room_exists", "a room with this id exists")
)

// Store keeps rooms in the state database.
type Store struct {
	db   *sql.DB
	tree *orgs.Store
	now  func() time.Time
}

// NewStore makes a store.
func NewStore(db *sql.DB, tree *orgs.Store) *Store {
	return &Store{db: db, tree: tree, now: time.Now}
}

const columns = `id, name, org_id, max_participants, locked, created_by, created_at`

func scan(row interface{ Scan(...any) error }) (Room, error) {
	var r Room
	var created int64
	err := row.Scan(&r.ID, &r.Name, &r.OrgID, &r.MaxParticipants, &r.Locked, &r.CreatedBy, &created)
	r.CreatedAt = time.UnixMilli(created).UTC()
	return r, err
}

// Create adds a room inside scope; its organisation defaults to the
// caller's.
func (s *Store) Create(ctx context.Context, scope orgs.Scope, actor string, in NewRoom) (Room, error) {
	if !orgs.IDPattern.MatchString(in.ID) {
		return Room{}, errclass.Invalidf("id", "must be 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit")
	}
	if IsHearing(in.ID) != in.Hearing {
		return Room{}, errclass.Invalidf("id", "the prefix %s is the hearings' rooms'", HearingPrefix)
	}
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len(in.Name) > 200 {
		return Room{}, errclass.Invalidf("name", "must be 1-200 characters")
	}
	if in.MaxParticipants == 0 {
		in.MaxParticipants = DefaultMaxParticipants
	}
	if in.MaxParticipants < 2 || in.MaxParticipants > MaxParticipants {
		return Room{}, errclass.Invalidf("max_participants", "must be 2 to %d", MaxParticipants)
	}
	if in.OrgID == "" {
		in.OrgID = scope.Root()
	}
	if err := s.tree.CheckInScope(scope, in.OrgID, "org_id"); err != nil {
		return Room{}, err
	}
	r := Room{ID: in.ID, Name: in.Name, OrgID: in.OrgID, MaxParticipants: in.MaxParticipants, CreatedBy: actor,
		CreatedAt: s.now().Truncate(time.Millisecond).UTC()}
	res, err := s.db.ExecContext(ctx, `INSERT INTO rooms(`+columns+`) VALUES (?, ?, ?, ?, 0, ?, ?) ON CONFLICT(id) DO NOTHING`,
		r.ID, r.Name, r.OrgID, r.MaxParticipants, r.CreatedBy, r.CreatedAt.UnixMilli())
	if err != nil {
		return Room{}, fmt.Errorf("create room: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Room{}, ErrRoomExists
	}
	return r, nil
}

// Get returns a room inside scope.
func (s *Store) Get(ctx context.Context, scope orgs.Scope, id string) (Room, error) {
	r, err := scan(s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM rooms WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Room{}, ErrRoomNotFound
	}
	if err != nil {
		return Room{}, err
	}
	if !s.tree.Contains(scope, r.OrgID) {
		return Room{}, orgs.ErrOutOfScope
	}
	return r, nil
}

// List returns the rooms inside scope, by id.
func (s *Store) List(ctx context.Context, scope orgs.Scope) ([]Room, error) {
	cond, args := scope.SQL("org_id")
	rows, err := s.db.QueryContext(ctx, `SELECT `+columns+` FROM rooms WHERE `+cond+` ORDER BY id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Room{}
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// SetLocked locks or unlocks a room inside scope: a locked room admits no
// one new.
func (s *Store) SetLocked(ctx context.Context, scope orgs.Scope, id string, locked bool) (Room, error) {
	r, err := s.Get(ctx, scope, id)
	if err != nil {
		return Room{}, err
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE rooms SET locked = ? WHERE id = ?`, locked, id); err != nil {
		return Room{}, err
	}
	r.Locked = locked
	return r, nil
}

// Delete removes a room inside scope.
func (s *Store) Delete(ctx context.Context, scope orgs.Scope, id string) (Room, error) {
	r, err := s.Get(ctx, scope, id)
	if err != nil {
		return Room{}, err
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM rooms WHERE id = ?`, id); err != nil {
		return Room{}, err
	}
	return r, nil
}

// InOrg reads and locks rooms within an organisation's scope, for the SFU,
// which knows the organisation from the join token.
type InOrg struct {
	Store *Store
}

// Room returns room id if it is inside org's scope.
func (o InOrg) Room(ctx context.Context, org orgs.ID, id string) (Room, error) {
	scope, err := o.Store.tree.ScopeOf(org)
	if err != nil {
		return Room{}, err
	}
	return o.Store.Get(ctx, scope, id)
}

// SetLocked locks or unlocks room id inside org's scope.
func (o InOrg) SetLocked(ctx context.Context, org orgs.ID, id string, locked bool) error {
	scope, err := o.Store.tree.ScopeOf(org)
	if err != nil {
		return err
	}
	_, err = o.Store.SetLocked(ctx, scope, id, locked)
	return err
}
