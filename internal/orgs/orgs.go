// Package orgs holds the organisation tree (province -> prefecture -> county,
// deeper levels allowed) and Scope, the one mechanism every resource uses to
// limit a user to their own organisation's subtree.
//
// It lives in internal/ because devices/, console/ and sfu/ all scope their
// resources by it.
package orgs

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lookout-cc/lookout/internal/errclass"
)

// ID identifies an organisation. It is chosen at creation and never changes.
type ID string

// Kinds an organisation may be.
var Kinds = []string{"national", "province", "prefecture", "county", "township", "department"}

// Org is one organisation.
type Org struct {
	ID        ID        `json:"id"`
	ParentID  ID        `json:"parent_id,omitempty"`
	Name      string    `json:"name"`
	Kind      string    `json:"kind"`
	CreatedAt time.Time `json:"created_at"`
	path      string
}

// Errors returned by Store.
var (
	ErrNotFound   = errclass.New(errclass.NotFound, "org_not_found", "organisation not found")
	ErrExists     = errclass.New(errclass.Conflict, "org_exists", "an organisation with this id exists")
	ErrOutOfScope = errclass.New(errclass.OutOfScope, "out_of_scope", "outside your organisation's subtree")
)

// IDPattern is the shape of an organisation id (and of every other id a user
// chooses): it appears in URLs, MQTT topics and the tree path unescaped.
var IDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Scope is a subtree of the organisation tree: the part a user may see and
// change. The zero Scope contains nothing.
type Scope struct {
	root ID
	path string
}

// Root is the organisation at the top of the scope.
func (s Scope) Root() ID { return s.root }

// SQL returns a condition that keeps rows whose column (an org id) lies in
// the scope, and its arguments, for a WHERE clause.
func (s Scope) SQL(column string) (string, []any) {
	if s.path == "" {
		return "0", nil
	}
	return column + " IN (SELECT id FROM orgs WHERE substr(path, 1, ?) = ?)", []any{len(s.path), s.path}
}

// Store keeps the organisation tree in SQLite and a copy in memory, so that
// scope checks on every request need no query. Organisations are few (one per
// office), so the copy is small.
type Store struct {
	db  *sql.DB
	now func() time.Time

	mu   sync.RWMutex
	byID map[ID]Org
}

// NewStore loads the tree from db.
func NewStore(ctx context.Context, db *sql.DB) (*Store, error) {
	s := &Store{db: db, now: time.Now, byID: map[ID]Org{}}
	rows, err := db.QueryContext(ctx, `SELECT id, COALESCE(parent_id, ''), name, kind, path, created_at FROM orgs`)
	if err != nil {
		return nil, fmt.Errorf("load orgs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var o Org
		var created int64
		if err := rows.Scan(&o.ID, &o.ParentID, &o.Name, &o.Kind, &o.path, &created); err != nil {
			return nil, fmt.Errorf("load orgs: %w", err)
		}
		o.CreatedAt = time.UnixMilli(created)
		s.byID[o.ID] = o
	}
	return s, rows.Err()
}

// NewOrg is what a caller gives to create an organisation.
type NewOrg struct {
	ID       ID     `json:"id"`
	ParentID ID     `json:"parent_id"`
	Name     string `json:"name"`
	Kind     string `json:"kind"`
}

func (n NewOrg) validate(root bool) error {
	if !IDPattern.MatchString(string(n.ID)) {
		return errclass.Invalidf("id", "must be 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit")
	}
	if !root && n.ParentID == "" {
		return errclass.Invalidf("parent_id", "is required")
	}
	if name := strings.TrimSpace(n.Name); name == "" || len(name) > 200 {
		return errclass.Invalidf("name", "must be 1-200 characters")
	}
	if !slices.Contains(Kinds, n.Kind) {
		return errclass.Invalidf("kind", "must be one of %s", strings.Join(Kinds, ", "))
	}
	return nil
}

// EnsureRoot creates the root organisation unless one exists. It returns the
// root, which may differ from seed when the data directory was made with
// another configuration.
func (s *Store) EnsureRoot(ctx context.Context, seed NewOrg) (Org, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.byID {
		if o.ParentID == "" {
			return o, nil
		}
	}
	if err := seed.validate(true); err != nil {
		return Org{}, err
	}
	return s.insertLocked(ctx, seed, "")
}

// Create adds an organisation under a parent inside scope.
func (s *Store) Create(ctx context.Context, scope Scope, in NewOrg) (Org, error) {
	if err := in.validate(false); err != nil {
		return Org{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	parent, ok := s.byID[in.ParentID]
	if !ok {
		return Org{}, &errclass.Error{Kind: errclass.Invalid, Code: "invalid_field", Field: "parent_id", Message: "no such organisation"}
	}
	if !s.containsLocked(scope, parent.ID) {
		return Org{}, ErrOutOfScope
	}
	if _, dup := s.byID[in.ID]; dup {
		return Org{}, ErrExists
	}
	return s.insertLocked(ctx, in, parent.path)
}

func (s *Store) insertLocked(ctx context.Context, in NewOrg, parentPath string) (Org, error) {
	o := Org{ID: in.ID, ParentID: in.ParentID, Name: strings.TrimSpace(in.Name), Kind: in.Kind,
		CreatedAt: s.now().Truncate(time.Millisecond), path: parentPath + string(in.ID) + "/"}
	var parent any
	if o.ParentID != "" {
		parent = string(o.ParentID)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO orgs(id, parent_id, name, kind, path, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		string(o.ID), parent, o.Name, o.Kind, o.path, o.CreatedAt.UnixMilli())
	if err != nil {
		return Org{}, fmt.Errorf("insert org: %w", err)
	}
	s.byID[o.ID] = o
	return o, nil
}

// Get returns the organisation id if it lies in scope.
func (s *Store) Get(scope Scope, id ID) (Org, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	o, ok := s.byID[id]
	if !ok {
		return Org{}, ErrNotFound
	}
	if !s.containsLocked(scope, id) {
		return Org{}, ErrOutOfScope
	}
	return o, nil
}

// List returns the organisations in scope, parents before children.
func (s *Store) List(scope Scope) []Org {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Org
	for _, o := range s.byID {
		if scope.path != "" && strings.HasPrefix(o.path, scope.path) {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b Org) int { return strings.Compare(a.path, b.path) })
	return out
}

// RootID is the organisation at the top of the tree ("" before EnsureRoot).
func (s *Store) RootID() ID {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, o := range s.byID {
		if o.ParentID == "" {
			return o.ID
		}
	}
	return ""
}

// ScopeOf returns the scope rooted at organisation id.
func (s *Store) ScopeOf(id ID) (Scope, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	o, ok := s.byID[id]
	if !ok {
		return Scope{}, ErrNotFound
	}
	return Scope{root: o.ID, path: o.path}, nil
}

// Contains reports whether organisation id lies in scope.
func (s *Store) Contains(scope Scope, id ID) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.containsLocked(scope, id)
}

func (s *Store) containsLocked(scope Scope, id ID) bool {
	o, ok := s.byID[id]
	return ok && scope.path != "" && strings.HasPrefix(o.path, scope.path)
}

// CheckInScope returns nil when organisation id exists and lies in scope,
// ErrNotFound or ErrOutOfScope otherwise. field names the input it came from.
func (s *Store) CheckInScope(scope Scope, id ID, field string) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.byID[id]; !ok {
		return &errclass.Error{Kind: errclass.Invalid, Code: "invalid_field", Field: field, Message: "no such organisation"}
	}
	if !s.containsLocked(scope, id) {
		return ErrOutOfScope
	}
	return nil
}
