// Package petitions keeps the petitions (信访) resettled residents raise
// about compensation or housing, from their receipt to their close, for
// the hearing officers who hear them by video (console/hearings, later).
//
// The petitioner's name, phone and ID number are personal data: stored
// encrypted (Sealer), answered whole only to roles that need them
// (auth.PermPetitionsPII) and masked everywhere else, lists and the audit
// log included. Its attachments (photos, scans: attachments.go) are
// personal data too: their names and content are sealed the same way.
// Each petition belongs to an organisation, scoped by the tier tree like
// every resource, and every step is kept with who, when and a note.
//
// States: received -> scheduled -> heard -> resolved -> closed; withdrawn
// from any state before resolved.
package petitions

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// States of a petition.
const (
	StateReceived  = "received"
	StateScheduled = "scheduled"
	StateHeard     = "heard"
	StateResolved  = "resolved"
	StateClosed    = "closed"
	StateWithdrawn = "withdrawn"
)

// from lists the states each step may be taken from.
var from = map[string][]string{
	StateScheduled: {StateReceived, StateHeard}, // heard again: a follow-up hearing
	StateHeard:     {StateScheduled},
	StateResolved:  {StateHeard},
	StateClosed:    {StateResolved, StateWithdrawn},
	StateWithdrawn: {StateReceived, StateScheduled, StateHeard},
}

// Petitioner is who raised the petition: personal data.
type Petitioner struct {
	Name     string `json:"name"`
	Phone    string `json:"phone"`
	IDNumber string `json:"id_number"`
	// Masked says the fields are masked (张**, 138****5678,
	// 5306**********1234): the caller may not read them whole.
	Masked bool `json:"masked"`
}

// Step is one step of a petition's life.
type Step struct {
	Step  string    `json:"step"`
	Actor string    `json:"actor"`
	Note  string    `json:"note,omitempty"`
	At    time.Time `json:"at"`
}

// Petition is one petition.
type Petition struct {
	ID          string     `json:"id"`
	OrgID       orgs.ID    `json:"org_id"`
	SiteID      string     `json:"site_id,omitempty"`
	Petitioner  Petitioner `json:"petitioner"`
	Subject     string     `json:"subject"`
	Description string     `json:"description"`
	State       string     `json:"state"`
	CreatedBy   string     `json:"created_by"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	// Steps are oldest first; only in Get.
	Steps []Step `json:"steps,omitempty"`
}

// NewPetition is what an officer records.
type NewPetition struct {
	OrgID       orgs.ID    `json:"org_id"`
	SiteID      string     `json:"site_id"`
	Petitioner  Petitioner `json:"petitioner"`
	Subject     string     `json:"subject"`
	Description string     `json:"description"`
	Note        string     `json:"note"`
}

// Errors of the store.
var (
	ErrNotFound    = errclass.New(errclass.NotFound, "petition_not_found", "petition not found")
	ErrInvalidStep = errclass.New(errclass.Conflict, "invalid_step", "the petition's state does not allow this step")
)

// Sites finds sites, to check the one a petition concerns.
type Sites interface {
	SiteOrg(ctx context.Context, scope orgs.Scope, id string) (orgs.ID, error)
}

// Store keeps petitions in the state database.
type Store struct {
	db    *sql.DB
	tree  *orgs.Store
	seal  *Sealer
	sites Sites
	now   func() time.Time
}

// NewStore makes a store; seal encrypts the personal data, sites checks
// the site a petition concerns (nil: not checked).
func NewStore(db *sql.DB, tree *orgs.Store, seal *Sealer, sites Sites) *Store {
	return &Store{db: db, tree: tree, seal: seal, sites: sites, now: time.Now}
}

func newID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "pet_" + hex.EncodeToString(b)
}

// text checks a free-text field: trimmed, 1 (or 0) to max characters.
func text(field, v string, required bool, max int) (string, error) {
	v = strings.TrimSpace(v)
	if (required && v == "") || utf8.RuneCountInString(v) > max || !utf8.ValidString(v) {
		if required {
			return "", errclass.Invalidf(field, "must be 1 to %d characters", max)
		}
		return "", errclass.Invalidf(field, "must be at most %d characters", max)
	}
	return v, nil
}

// Create records a petition in scope, state received.
func (s *Store) Create(ctx context.Context, scope orgs.Scope, actor string, in NewPetition) (Petition, error) {
	var err error
	p := Petition{ID: newID(), State: StateReceived, CreatedBy: actor}
	if p.Petitioner.Name, err = text("petitioner.name", in.Petitioner.Name, true, 50); err != nil {
		return Petition{}, err
	}
	p.Petitioner.Phone = strings.TrimSpace(in.Petitioner.Phone)
	if !ValidPhone(p.Petitioner.Phone) {
		return Petition{}, errclass.Invalidf("petitioner.phone", "must be 7 to 20 digits, + first for an international number")
	}
	p.Petitioner.IDNumber = strings.ToUpper(strings.TrimSpace(in.Petitioner.IDNumber))
	if !ValidIDNumber(p.Petitioner.IDNumber) {
		return Petition{}, errclass.Invalidf("petitioner.id_number", "must be an 18-character resident ID number with a valid check character")
	}
	if p.Subject, err = text("subject", in.Subject, true, 200); err != nil {
		return Petition{}, err
	}
	if p.Description, err = text("description", in.Description, true, 10000); err != nil {
		return Petition{}, err
	}
	note, err := text("note", in.Note, false, 2000)
	if err != nil {
		return Petition{}, err
	}
	p.OrgID = in.OrgID
	if p.OrgID == "" {
		p.OrgID = scope.Root()
	}
	if err := s.tree.CheckInScope(scope, p.OrgID, "org_id"); err != nil {
		return Petition{}, err
	}
	if in.SiteID != "" {
		if s.sites != nil {
			// The site is one the handling organisation oversees.
			handler, err := s.tree.ScopeOf(p.OrgID)
			if err != nil {
				return Petition{}, err
			}
			org, err := s.sites.SiteOrg(ctx, scope, in.SiteID)
			if err != nil || !s.tree.Contains(handler, org) {
				return Petition{}, errclass.Invalidf("site_id", "no such site in the organisation that handles the petition")
			}
		}
		p.SiteID = in.SiteID
	}
	now := s.now().Truncate(time.Millisecond).UTC()
	p.CreatedAt, p.UpdatedAt = now, now
	who := p.Petitioner
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Petition{}, err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `INSERT INTO petitions(id, org_id, site_id, name_enc, phone_enc, id_no_enc, name_masked, phone_masked, id_no_masked,
		subject, description, state, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.OrgID, p.SiteID, s.seal.Seal(p.ID, who.Name), s.seal.Seal(p.ID, who.Phone), s.seal.Seal(p.ID, who.IDNumber),
		MaskName(who.Name), MaskPhone(who.Phone), MaskIDNumber(who.IDNumber),
		p.Subject, p.Description, p.State, actor, now.UnixMilli(), now.UnixMilli()); err != nil {
		return Petition{}, fmt.Errorf("create petition: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO petition_steps(petition_id, seq, step, actor, note, at) VALUES (?, 1, ?, ?, ?, ?)`,
		p.ID, StateReceived, actor, note, now.UnixMilli()); err != nil {
		return Petition{}, err
	}
	if err := tx.Commit(); err != nil {
		return Petition{}, err
	}
	p.Steps = []Step{{Step: StateReceived, Actor: actor, Note: note, At: now}}
	return p, nil
}

const columns = `id, org_id, site_id, name_enc, phone_enc, id_no_enc, name_masked, phone_masked, id_no_masked, subject, description, state, created_by, created_at, updated_at`

// scan reads a row; whole says whether to open the personal data.
func (s *Store) scan(row interface{ Scan(...any) error }, whole bool) (Petition, error) {
	var p Petition
	var nameEnc, phoneEnc, idEnc []byte
	var created, updated int64
	if err := row.Scan(&p.ID, &p.OrgID, &p.SiteID, &nameEnc, &phoneEnc, &idEnc, &p.Petitioner.Name, &p.Petitioner.Phone, &p.Petitioner.IDNumber,
		&p.Subject, &p.Description, &p.State, &p.CreatedBy, &created, &updated); err != nil {
		return Petition{}, err
	}
	p.CreatedAt, p.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	p.Petitioner.Masked = true
	if whole {
		var err error
		who := Petitioner{}
		if who.Name, err = s.seal.Open(p.ID, nameEnc); err != nil {
			return Petition{}, err
		}
		if who.Phone, err = s.seal.Open(p.ID, phoneEnc); err != nil {
			return Petition{}, err
		}
		if who.IDNumber, err = s.seal.Open(p.ID, idEnc); err != nil {
			return Petition{}, err
		}
		p.Petitioner = who
	}
	return p, nil
}

// Get returns a petition in scope with its steps; whole opens the
// petitioner's personal data, masked otherwise.
func (s *Store) Get(ctx context.Context, scope orgs.Scope, id string, whole bool) (Petition, error) {
	p, err := s.scan(s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM petitions WHERE id = ?`, id), whole)
	if errors.Is(err, sql.ErrNoRows) {
		return Petition{}, ErrNotFound
	}
	if err != nil {
		return Petition{}, err
	}
	if !s.tree.Contains(scope, p.OrgID) {
		return Petition{}, orgs.ErrOutOfScope
	}
	rows, err := s.db.QueryContext(ctx, `SELECT step, actor, note, at FROM petition_steps WHERE petition_id = ? ORDER BY seq`, id)
	if err != nil {
		return Petition{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var st Step
		var at int64
		if err := rows.Scan(&st.Step, &st.Actor, &st.Note, &at); err != nil {
			return Petition{}, err
		}
		st.At = time.UnixMilli(at).UTC()
		p.Steps = append(p.Steps, st)
	}
	return p, rows.Err()
}

// Filter narrows List.
type Filter struct {
	State string
	Limit int // default 200, at most 1000
}

// List returns the petitions in scope, newest first, the personal data
// masked.
func (s *Store) List(ctx context.Context, scope orgs.Scope, f Filter) ([]Petition, error) {
	if f.Limit <= 0 {
		f.Limit = 200
	}
	if f.Limit > 1000 {
		return nil, errclass.Invalidf("limit", "must be 1 to 1000")
	}
	if f.State != "" {
		if _, ok := from[f.State]; !ok && f.State != StateReceived {
			return nil, errclass.Invalidf("state", "must be received, scheduled, heard, resolved, closed or withdrawn")
		}
	}
	cond, args := scope.SQL("org_id")
	q := `SELECT ` + columns + ` FROM petitions WHERE ` + cond
	if f.State != "" {
		q += ` AND state = ?`
		args = append(args, f.State)
	}
	q += ` ORDER BY created_at DESC, id LIMIT ?`
	args = append(args, f.Limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Petition{}
	for rows.Next() {
		p, err := s.scan(rows, false)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Step moves a petition in scope to state to, with a note; ErrInvalidStep
// when its state does not allow it. It returns the petition, masked.
func (s *Store) Step(ctx context.Context, scope orgs.Scope, actor, id, to, note string) (Petition, error) {
	allowed, ok := from[to]
	if !ok {
		return Petition{}, errclass.Invalidf("step", "must be scheduled, heard, resolved, closed or withdrawn")
	}
	note, err := text("note", note, false, 2000)
	if err != nil {
		return Petition{}, err
	}
	p, err := s.Get(ctx, scope, id, false)
	if err != nil {
		return Petition{}, err
	}
	now := s.now().Truncate(time.Millisecond).UTC()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Petition{}, err
	}
	defer func() { _ = tx.Rollback() }()
	// The state is checked and changed in one statement: two officers
	// taking a step at once cannot both take it.
	states := make([]any, 0, len(allowed)+3)
	states = append(states, to, now.UnixMilli(), id)
	marks := make([]string, len(allowed))
	for i, st := range allowed {
		states = append(states, st)
		marks[i] = "?"
	}
	res, err := tx.ExecContext(ctx, `UPDATE petitions SET state = ?, updated_at = ? WHERE id = ? AND state IN (`+strings.Join(marks, ",")+`)`, states...)
	if err != nil {
		return Petition{}, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Petition{}, ErrInvalidStep
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO petition_steps(petition_id, seq, step, actor, note, at)
		VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM petition_steps WHERE petition_id = ?), ?, ?, ?, ?)`,
		id, id, to, actor, note, now.UnixMilli()); err != nil {
		return Petition{}, err
	}
	if err := tx.Commit(); err != nil {
		return Petition{}, err
	}
	p.State, p.UpdatedAt = to, now
	p.Steps = append(p.Steps, Step{Step: to, Actor: actor, Note: note, At: now})
	return p, nil
}
