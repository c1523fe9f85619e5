package alerts

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lookout-cc/lookout/internal/audit"
	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// Errors of the rule store.
var (
	ErrRuleNotFound = errclass.New(errclass.NotFound, "rule_not_found", "rule not found")
	ErrRuleExists   = errclass.New(errclass.Conflict, "rule_exists", "a rule with this id exists")
	ErrRuleFromFile = errclass.New(errclass.Conflict, "rule_from_file", "the rule comes from a file under configs/; change it there")
)

// Rules keeps the alert rules in the state database and hands every change
// to the engine.
type Rules struct {
	db     *sql.DB
	tree   *orgs.Store
	look   Lookup
	audit  *audit.Log
	engine *Engine
	now    func() time.Time

	mu    sync.Mutex
	rules map[string]*Rule
	// pubMu orders the hand-overs to the engine: each takes the rules as
	// they are when it runs, outside mu, so reading rules never waits for
	// a busy engine.
	pubMu sync.Mutex
}

// NewRules loads the stored rules and gives them to the engine.
func NewRules(ctx context.Context, db *sql.DB, tree *orgs.Store, look Lookup, auditLog *audit.Log, engine *Engine) (*Rules, error) {
	rs := &Rules{db: db, tree: tree, look: look, audit: auditLog, engine: engine, now: time.Now, rules: map[string]*Rule{}}
	rows, err := db.QueryContext(ctx, `SELECT body FROM alert_rules`)
	if err != nil {
		return nil, fmt.Errorf("load rules: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		var r Rule
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			return nil, fmt.Errorf("load rules: %w", err)
		}
		r.normalize()
		rs.rules[r.ID] = &r
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rs.publish()
	return rs, nil
}

// publish hands the engine the current rules; rs.mu not held.
func (rs *Rules) publish() {
	if rs.engine == nil {
		return
	}
	rs.pubMu.Lock()
	defer rs.pubMu.Unlock()
	rs.mu.Lock()
	list := make([]*Rule, 0, len(rs.rules))
	for _, r := range rs.rules {
		list = append(list, r)
	}
	rs.mu.Unlock()
	rs.engine.SetRules(list)
}

// DecodeRule reads a rule from JSON strictly: unknown fields are refused.
func DecodeRule(data []byte) (Rule, error) {
	var r Rule
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Rule{}, err
	}
	if dec.More() {
		return Rule{}, errors.New("more than one JSON value")
	}
	return r, nil
}

// prepare normalizes and validates a rule given by a caller.
func (rs *Rules) prepare(scope orgs.Scope, in Rule, actor, source string) (*Rule, error) {
	r := in
	r.normalize()
	if err := r.validate(rs.tree, scope, rs.look); err != nil {
		return nil, err
	}
	now := rs.now().Truncate(time.Millisecond).UTC()
	r.Source, r.CreatedBy, r.CreatedAt, r.UpdatedAt = source, actor, now, now
	return &r, nil
}

// Create adds a rule inside scope.
func (rs *Rules) Create(ctx context.Context, scope orgs.Scope, actor string, in Rule) (*Rule, error) {
	r, err := rs.prepare(scope, in, actor, "api")
	if err != nil {
		return nil, err
	}
	rs.mu.Lock()
	if _, ok := rs.rules[r.ID]; ok {
		rs.mu.Unlock()
		return nil, ErrRuleExists
	}
	if err := rs.store(ctx, r, actor, "rule.create", true); err != nil {
		rs.mu.Unlock()
		return nil, err
	}
	rs.rules[r.ID] = r
	rs.mu.Unlock()
	rs.publish()
	return r, nil
}

// Update replaces a rule inside scope (its id stays).
func (rs *Rules) Update(ctx context.Context, scope orgs.Scope, actor, id string, in Rule) (*Rule, error) {
	r, err := rs.update(ctx, scope, actor, id, in)
	if err != nil {
		return nil, err
	}
	rs.publish()
	return r, nil
}

func (rs *Rules) update(ctx context.Context, scope orgs.Scope, actor, id string, in Rule) (*Rule, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	old, err := rs.getLocked(scope, id)
	if err != nil {
		return nil, err
	}
	if old.Source != "api" {
		return nil, ErrRuleFromFile
	}
	in.ID = id
	r, err := rs.prepare(scope, in, actor, "api")
	if err != nil {
		return nil, err
	}
	r.CreatedBy, r.CreatedAt = old.CreatedBy, old.CreatedAt
	if err := rs.store(ctx, r, actor, "rule.update", false); err != nil {
		return nil, err
	}
	rs.rules[id] = r
	return r, nil
}

// Delete removes a rule inside scope. Its open alerts stay open until an
// operator closes them.
func (rs *Rules) Delete(ctx context.Context, scope orgs.Scope, actor, id string) (*Rule, error) {
	r, err := rs.delete(ctx, scope, actor, id)
	if err != nil {
		return nil, err
	}
	rs.publish()
	return r, nil
}

func (rs *Rules) delete(ctx context.Context, scope orgs.Scope, actor, id string) (*Rule, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, err := rs.getLocked(scope, id)
	if err != nil {
		return nil, err
	}
	if r.Source != "api" {
		return nil, ErrRuleFromFile
	}
	err = rs.audit.InTx(ctx, func(tx *sql.Tx, add func(audit.Rec)) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM alert_rules WHERE id = ?`, id); err != nil {
			return err
		}
		add(audit.Rec{Actor: actor, OrgID: r.OrgID, Action: "rule.delete", Target: id, Result: "ok"})
		return nil
	})
	if err != nil {
		return nil, err
	}
	delete(rs.rules, id)
	return r, nil
}

func (rs *Rules) store(ctx context.Context, r *Rule, actor, action string, insert bool) error {
	return rs.audit.InTx(ctx, func(tx *sql.Tx, add func(audit.Rec)) error {
		return writeRule(ctx, tx, add, r, actor, action, insert)
	})
}

// writeRule stores a rule and its audit entry in tx.
func writeRule(ctx context.Context, tx *sql.Tx, add func(audit.Rec), r *Rule, actor, action string, insert bool) error {
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if insert {
		_, err = tx.ExecContext(ctx, `INSERT INTO alert_rules(id, org_id, kind, source, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.OrgID, r.Kind, r.Source, string(body), r.CreatedAt.UnixMilli(), r.UpdatedAt.UnixMilli())
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE alert_rules SET org_id = ?, kind = ?, source = ?, body = ?, updated_at = ? WHERE id = ?`,
			r.OrgID, r.Kind, r.Source, string(body), r.UpdatedAt.UnixMilli(), r.ID)
	}
	if err != nil {
		return err
	}
	var detail map[string]any
	_ = json.Unmarshal(body, &detail)
	add(audit.Rec{Actor: actor, OrgID: r.OrgID, Action: action, Target: r.ID, Result: "ok", Detail: detail})
	return nil
}

func (rs *Rules) getLocked(scope orgs.Scope, id string) (*Rule, error) {
	r, ok := rs.rules[id]
	if !ok {
		return nil, ErrRuleNotFound
	}
	if !rs.tree.Contains(scope, r.OrgID) {
		return nil, orgs.ErrOutOfScope
	}
	return r, nil
}

// Get returns a rule inside scope.
func (rs *Rules) Get(scope orgs.Scope, id string) (Rule, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, err := rs.getLocked(scope, id)
	if err != nil {
		return Rule{}, err
	}
	return *r, nil
}

// List returns the rules inside scope, by id.
func (rs *Rules) List(scope orgs.Scope) []Rule {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := []Rule{}
	for _, r := range rs.rules {
		if rs.tree.Contains(scope, r.OrgID) {
			out = append(out, *r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// RuleFile is a YAML file of rules under configs/:
//
//	rules:
//	  - id: reservoir-flood-limit
//	    kind: threshold
//	    ...
type RuleFile struct {
	Name string // shown in errors and in each rule's source
	Data []byte
}

// LoadFiles makes the rules of the files current: each file's rules are
// created or replaced, and rules that came from a file but are in none now
// are removed. A file's rules are checked like the API's, inside scope
// (the root organisation's); any error names the file, the rule and the
// field, and nothing is changed.
func (rs *Rules) LoadFiles(ctx context.Context, scope orgs.Scope, files []RuleFile) (int, error) {
	var loaded []*Rule
	seen := map[string]string{}
	for _, f := range files {
		rules, err := parseRuleFile(f)
		if err != nil {
			return 0, err
		}
		for i, in := range rules {
			r, err := rs.prepare(scope, in, "system", "file:"+f.Name)
			if err != nil {
				return 0, fmt.Errorf("%s: rules[%d] (%s): %w", f.Name, i, in.ID, err)
			}
			if other, dup := seen[r.ID]; dup {
				return 0, fmt.Errorf("%s: rules[%d]: id %q is also in %s", f.Name, i, r.ID, other)
			}
			seen[r.ID] = f.Name
			loaded = append(loaded, r)
		}
	}
	if err := rs.applyFiles(ctx, loaded, seen); err != nil {
		return 0, err
	}
	rs.publish()
	return len(loaded), nil
}

// applyFiles makes the loaded file rules current in one transaction:
// conflicts are found before anything is written, and every change is
// audited with it.
func (rs *Rules) applyFiles(ctx context.Context, loaded []*Rule, seen map[string]string) error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	type change struct {
		r      *Rule
		insert bool
	}
	var changes []change
	for _, r := range loaded {
		old, exists := rs.rules[r.ID]
		if exists && old.Source == "api" {
			return fmt.Errorf("%s: rule %q exists already, made through the API", strings.TrimPrefix(r.Source, "file:"), r.ID)
		}
		if exists && sameBody(old, r) {
			continue // unchanged: its state and time stay
		}
		if exists {
			r.CreatedAt = old.CreatedAt
		}
		changes = append(changes, change{r, !exists})
	}
	var gone []*Rule
	for id, r := range rs.rules {
		if strings.HasPrefix(r.Source, "file:") && seen[id] == "" {
			gone = append(gone, r)
		}
	}
	if len(changes) == 0 && len(gone) == 0 {
		return nil
	}
	err := rs.audit.InTx(ctx, func(tx *sql.Tx, add func(audit.Rec)) error {
		for _, c := range changes {
			if err := writeRule(ctx, tx, add, c.r, "system", "rule.load", c.insert); err != nil {
				return err
			}
		}
		for _, r := range gone {
			if _, err := tx.ExecContext(ctx, `DELETE FROM alert_rules WHERE id = ?`, r.ID); err != nil {
				return err
			}
			add(audit.Rec{Actor: "system", OrgID: r.OrgID, Action: "rule.unload", Target: r.ID, Result: "ok", Detail: map[string]any{"source": r.Source}})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range changes {
		rs.rules[c.r.ID] = c.r
	}
	for _, r := range gone {
		delete(rs.rules, r.ID)
	}
	return nil
}

// sameBody compares two rules apart from their times.
func sameBody(a, b *Rule) bool {
	x, y := *a, *b
	x.CreatedAt, x.UpdatedAt, y.CreatedAt, y.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	bx, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	return bytes.Equal(bx, by)
}

// parseRuleFile reads a rule file strictly: YAML to JSON, then the same
// strict decoding as the API, so a typo in a key fails at start naming the
// rule and the key.
func parseRuleFile(f RuleFile) ([]Rule, error) {
	var doc struct {
		Rules []map[string]any `yaml:"rules"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(f.Data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name, err)
	}
	out := make([]Rule, 0, len(doc.Rules))
	for i, m := range doc.Rules {
		where := fmt.Sprintf("%s: rules[%d]", f.Name, i)
		if id, ok := m["id"].(string); ok {
			where += " (" + id + ")"
		}
		b, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		r, err := DecodeRule(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		out = append(out, r)
	}
	return out, nil
}
