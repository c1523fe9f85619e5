// Package users keeps the console's user accounts: who they are, which
// organisation they belong to, their role, and their password hash. Every
// read and change is limited to the caller's organisation subtree.
package users

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/lookout-cc/lookout/console/auth"
	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// User is a console account. It never carries the password hash outward.
type User struct {
	ID          string    `json:"id"`
	DisplayName string    `json:"display_name"`
	OrgID       orgs.ID   `json:"org_id"`
	Role        auth.Role `json:"role"`
	Disabled    bool      `json:"disabled"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Errors returned by Store.
var (
	ErrNotFound       = errclass.New(errclass.NotFound, "user_not_found", "user not found")
	ErrExists         = errclass.New(errclass.Conflict, "user_exists", "a user with this name exists")
	ErrBadCredentials = errclass.New(errclass.Unauthenticated, "bad_credentials", "wrong user name or password")
	ErrSelfLockout    = errclass.New(errclass.Conflict, "self_lockout", "you cannot disable yourself or change your own role or organisation")
)

// Store keeps users in the state database.
type Store struct {
	db   *sql.DB
	orgs *orgs.Store
	now  func() time.Time
	// hashSlots bounds concurrent argon2id runs (19 MiB each), so a burst
	// of logins cannot take the server's memory.
	hashSlots chan struct{}
	dummyHash string

	// cache holds users as Lookup read them: every API request looks its
	// caller up, and must not wait for the database's one writer while a
	// burst of commands is being stored. Every change of a user drops its
	// entry; gen tells a read that raced a change not to cache what it read.
	mu    sync.Mutex
	cache map[string]User
	gen   uint64
}

// NewStore returns a user store over db, scoped by the organisation tree.
func NewStore(db *sql.DB, tree *orgs.Store) (*Store, error) {
	dummy, err := auth.HashPassword(auth.RandomPassword())
	if err != nil {
		return nil, err
	}
	return &Store{db: db, orgs: tree, now: time.Now, hashSlots: make(chan struct{}, runtime.NumCPU()), dummyHash: dummy, cache: map[string]User{}}, nil
}

// NewUser is what a caller gives to create a user.
type NewUser struct {
	ID          string    `json:"id"`
	DisplayName string    `json:"display_name"`
	OrgID       orgs.ID   `json:"org_id"`
	Role        auth.Role `json:"role"`
	Password    string    `json:"password"`
}

// Patch changes some fields of a user; nil fields stay as they are.
type Patch struct {
	DisplayName *string    `json:"display_name"`
	OrgID       *orgs.ID   `json:"org_id"`
	Role        *auth.Role `json:"role"`
	Password    *string    `json:"password"`
	Disabled    *bool      `json:"disabled"`
}

func checkDisplayName(n string) error {
	if n = strings.TrimSpace(n); n == "" || len(n) > 200 {
		return errclass.Invalidf("display_name", "must be 1-200 characters")
	}
	return nil
}

func checkRole(r auth.Role) error {
	if !r.Valid() {
		roles := make([]string, len(auth.Roles))
		for i, r := range auth.Roles {
			roles[i] = string(r)
		}
		return errclass.Invalidf("role", "must be one of %s", strings.Join(roles, ", "))
	}
	return nil
}

func (s *Store) hash(ctx context.Context, password string) (string, error) {
	select {
	case s.hashSlots <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-s.hashSlots }()
	return auth.HashPassword(password)
}

func (s *Store) verify(ctx context.Context, hash, password string) (bool, error) {
	select {
	case s.hashSlots <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-s.hashSlots }()
	return auth.VerifyPassword(hash, password)
}

// Create adds a user in an organisation inside scope.
func (s *Store) Create(ctx context.Context, scope orgs.Scope, in NewUser) (User, error) {
	if !orgs.IDPattern.MatchString(in.ID) {
		return User{}, errclass.Invalidf("id", "must be 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit")
	}
	if in.DisplayName == "" {
		in.DisplayName = in.ID
	}
	if err := checkDisplayName(in.DisplayName); err != nil {
		return User{}, err
	}
	if err := checkRole(in.Role); err != nil {
		return User{}, err
	}
	if err := s.orgs.CheckInScope(scope, in.OrgID, "org_id"); err != nil {
		return User{}, err
	}
	if err := auth.CheckPassword(in.Password); err != nil {
		return User{}, err
	}
	hash, err := s.hash(ctx, in.Password)
	if err != nil {
		return User{}, err
	}
	now := s.now().Truncate(time.Millisecond)
	u := User{ID: in.ID, DisplayName: strings.TrimSpace(in.DisplayName), OrgID: in.OrgID, Role: in.Role, CreatedAt: now, UpdatedAt: now}
	res, err := s.db.ExecContext(ctx, `INSERT INTO users(id, display_name, org_id, role, password_hash, disabled, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, 0, ?, ?) ON CONFLICT(id) DO NOTHING`,
		u.ID, u.DisplayName, string(u.OrgID), string(u.Role), hash, now.UnixMilli(), now.UnixMilli())
	if err != nil {
		return User{}, fmt.Errorf("insert user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return User{}, ErrExists
	}
	return u, nil
}

const userColumns = `id, display_name, org_id, role, disabled, created_at, updated_at`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var created, updated int64
	err := row.Scan(&u.ID, &u.DisplayName, &u.OrgID, &u.Role, &u.Disabled, &created, &updated)
	u.CreatedAt, u.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	return u, err
}

// Lookup returns a user by id regardless of scope: for the authentication
// of requests, never for answering them.
func (s *Store) Lookup(ctx context.Context, id string) (User, error) {
	s.mu.Lock()
	u, ok := s.cache[id]
	gen := s.gen
	s.mu.Unlock()
	if ok {
		return u, nil
	}
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, err
	}
	s.mu.Lock()
	if s.gen == gen && len(s.cache) < maxCachedUsers {
		s.cache[id] = u
	}
	s.mu.Unlock()
	return u, nil
}

// maxCachedUsers bounds the cache; beyond it lookups read the database.
const maxCachedUsers = 10_000

// forget drops a changed user from the cache.
func (s *Store) forget(id string) {
	s.mu.Lock()
	delete(s.cache, id)
	s.gen++
	s.mu.Unlock()
}

// Get returns a user inside scope.
func (s *Store) Get(ctx context.Context, scope orgs.Scope, id string) (User, error) {
	u, err := s.Lookup(ctx, id)
	if err != nil {
		return User{}, err
	}
	if !s.orgs.Contains(scope, u.OrgID) {
		return User{}, orgs.ErrOutOfScope
	}
	return u, nil
}

// List returns the users inside scope, optionally of one organisation only.
func (s *Store) List(ctx context.Context, scope orgs.Scope, orgID orgs.ID) ([]User, error) {
	cond, args := scope.SQL("org_id")
	q := `SELECT ` + userColumns + ` FROM users WHERE ` + cond
	if orgID != "" {
		q += ` AND org_id = ?`
		args = append(args, string(orgID))
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY org_id, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// Update applies a patch to a user inside scope. actor is the user making
// the change: they may not lock themselves out.
func (s *Store) Update(ctx context.Context, scope orgs.Scope, actor, id string, p Patch) (User, error) {
	u, err := s.Get(ctx, scope, id)
	if err != nil {
		return User{}, err
	}
	if id == actor && ((p.Disabled != nil && *p.Disabled) || (p.Role != nil && *p.Role != u.Role) || (p.OrgID != nil && *p.OrgID != u.OrgID)) {
		return User{}, ErrSelfLockout
	}
	var hash string
	if p.DisplayName != nil {
		if err := checkDisplayName(*p.DisplayName); err != nil {
			return User{}, err
		}
		u.DisplayName = strings.TrimSpace(*p.DisplayName)
	}
	if p.Role != nil {
		if err := checkRole(*p.Role); err != nil {
			return User{}, err
		}
		u.Role = *p.Role
	}
	if p.OrgID != nil {
		if err := s.orgs.CheckInScope(scope, *p.OrgID, "org_id"); err != nil {
			return User{}, err
		}
		u.OrgID = *p.OrgID
	}
	if p.Disabled != nil {
		u.Disabled = *p.Disabled
	}
	if p.Password != nil {
		if err := auth.CheckPassword(*p.Password); err != nil {
			return User{}, err
		}
		if hash, err = s.hash(ctx, *p.Password); err != nil {
			return User{}, err
		}
	}
	u.UpdatedAt = s.now().Truncate(time.Millisecond)
	_, err = s.db.ExecContext(ctx, `UPDATE users SET display_name = ?, org_id = ?, role = ?, disabled = ?,
		password_hash = CASE WHEN ? = '' THEN password_hash ELSE ? END, updated_at = ? WHERE id = ?`,
		u.DisplayName, string(u.OrgID), string(u.Role), u.Disabled, hash, hash, u.UpdatedAt.UnixMilli(), u.ID)
	s.forget(u.ID) // also when the update failed: the row may have changed
	if err != nil {
		return User{}, fmt.Errorf("update user: %w", err)
	}
	return u, nil
}

// Authenticate checks a user name and password. Unknown users, disabled
// users and wrong passwords all give ErrBadCredentials, after the same work,
// so the answer and its timing say nothing about which it was.
func (s *Store) Authenticate(ctx context.Context, id, password string) (User, error) {
	var hash string
	row := s.db.QueryRowContext(ctx, `SELECT `+userColumns+`, password_hash FROM users WHERE id = ?`, id)
	var u User
	var created, updated int64
	err := row.Scan(&u.ID, &u.DisplayName, &u.OrgID, &u.Role, &u.Disabled, &created, &updated, &hash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		hash = s.dummyHash
	case err != nil:
		return User{}, err
	}
	ok, verr := s.verify(ctx, hash, password)
	if err != nil || !ok || u.Disabled {
		if verr != nil && !errors.Is(err, sql.ErrNoRows) {
			return User{}, fmt.Errorf("verify password of %s: %w", id, verr)
		}
		return User{}, ErrBadCredentials
	}
	u.CreatedAt, u.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	return u, nil
}

// EnsureAdmin creates the first administrator in organisation org unless the
// user exists. When password is empty it makes a random one. It returns the
// password it set, or "" when the user already existed.
func (s *Store) EnsureAdmin(ctx context.Context, id string, org orgs.ID, password string) (string, error) {
	if _, err := s.Lookup(ctx, id); err == nil {
		return "", nil
	} else if !errors.Is(err, ErrNotFound) {
		return "", err
	}
	if password == "" {
		password = auth.RandomPassword()
	}
	scope, err := s.orgs.ScopeOf(org)
	if err != nil {
		return "", err
	}
	if _, err := s.Create(ctx, scope, NewUser{ID: id, DisplayName: "Administrator", OrgID: org, Role: auth.RoleAdmin, Password: password}); err != nil {
		return "", fmt.Errorf("create first admin: %w", err)
	}
	return password, nil
}
