// Package audit is the append-only, hash-chained audit log: every state
// change (login, user, organisation, site, device, credential, command)
// with who, when, what and the result. Each entry carries the SHA-256 of
// the entry before it, so Verify finds any entry changed or removed after
// the fact; the table itself refuses UPDATE and DELETE.
package audit

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lookout-cc/lookout/internal/orgs"
)

// Entry is one audited step.
type Entry struct {
	Seq      int64          `json:"seq"`
	TS       time.Time      `json:"ts"`
	Actor    string         `json:"actor"`
	OrgID    orgs.ID        `json:"org_id"`
	Action   string         `json:"action"`
	Target   string         `json:"target"`
	Result   string         `json:"result"`
	Detail   map[string]any `json:"detail,omitempty"`
	PrevHash string         `json:"prev_hash"`
	Hash     string         `json:"hash"`
}

// ResultOK is the result of a step that succeeded.
const ResultOK = "ok"

// Log appends to and reads the audit log.
type Log struct {
	db  *sql.DB
	now func() time.Time

	mu   sync.Mutex // serializes appends, so the chain has one order
	last string     // hash of the newest entry
	seq  int64
	// insert is prepared once: InTx runs it in each batch's transaction.
	insert *sql.Stmt
}

// genesis is the "previous hash" of the first entry.
const genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Open reads the chain's head from db.
func Open(ctx context.Context, db *sql.DB) (*Log, error) {
	l := &Log{db: db, now: time.Now, last: genesis}
	err := db.QueryRowContext(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&l.seq, &l.last)
	if err != nil && err != sql.ErrNoRows {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	if l.insert, err = db.PrepareContext(ctx, insertEntry); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return l, nil
}

// hashOf is the SHA-256 over the entry's fields, each length-prefixed so
// that no two different entries share an encoding.
func hashOf(e Entry, detail string) string {
	// Each field as "len:value;", built without fmt: under a burst of
	// commands thousands of entries are hashed at once.
	buf := make([]byte, 0, 256+len(detail))
	var num [20]byte
	field := func(f []byte) {
		buf = strconv.AppendInt(buf, int64(len(f)), 10)
		buf = append(buf, ':')
		buf = append(buf, f...)
		buf = append(buf, ';')
	}
	field(strconv.AppendInt(num[:0], e.Seq, 10))
	field(strconv.AppendInt(num[:0], e.TS.UnixMilli(), 10))
	for _, f := range [...]string{e.Actor, string(e.OrgID), e.Action, e.Target, e.Result, detail, e.PrevHash} {
		buf = strconv.AppendInt(buf, int64(len(f)), 10)
		buf = append(buf, ':')
		buf = append(buf, f...)
		buf = append(buf, ';')
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:])
}

// Record appends an entry. An entry that cannot be written is an error the
// caller must not ignore: a step that cannot be audited should not count
// as done.
func (l *Log) Record(ctx context.Context, actor string, org orgs.ID, action, target, result string, detail map[string]any) error {
	d := "{}"
	if len(detail) > 0 {
		b, err := json.Marshal(detail)
		if err != nil {
			return err
		}
		d = string(b)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := Entry{Seq: l.seq + 1, TS: l.now().Truncate(time.Millisecond), Actor: actor, OrgID: org, Action: action, Target: target,
		Result: result, PrevHash: l.last}
	e.Hash = hashOf(e, d)
	_, err := l.db.ExecContext(ctx, insertEntry, e.Seq, e.TS.UnixMilli(), e.Actor, string(e.OrgID), e.Action, e.Target, e.Result, d, e.PrevHash, e.Hash)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	l.seq, l.last = e.Seq, e.Hash
	return nil
}

// Rec is an entry to append, before it has its place in the chain.
type Rec struct {
	Actor  string
	OrgID  orgs.ID
	Action string
	Target string
	Result string
	Detail map[string]any
}

// InTx runs fn in one transaction and appends the entries it adds in that
// same transaction, so a step and its audit entry are stored together or
// not at all, and many steps share one commit. The chain's head moves only
// when the commit succeeds.
//
// The log's lock is taken before the transaction begins, in the same order
// as Record, so the two cannot wait on each other for the database's one
// writer connection.
func (l *Log) InTx(ctx context.Context, fn func(tx *sql.Tx, add func(Rec)) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var recs []Rec
	if err := fn(tx, func(r Rec) { recs = append(recs, r) }); err != nil {
		return err
	}
	if len(recs) == 0 {
		return tx.Commit()
	}
	seq, last := l.seq, l.last
	ts := l.now().Truncate(time.Millisecond)
	args := make([]any, 0, len(recs)*entryColumns)
	for _, r := range recs {
		d := "{}"
		if len(r.Detail) > 0 {
			b, err := json.Marshal(r.Detail)
			if err != nil {
				return err
			}
			d = string(b)
		}
		e := Entry{Seq: seq + 1, TS: ts, Actor: r.Actor, OrgID: r.OrgID, Action: r.Action, Target: r.Target, Result: r.Result, PrevHash: last}
		e.Hash = hashOf(e, d)
		args = append(args, e.Seq, e.TS.UnixMilli(), e.Actor, string(e.OrgID), e.Action, e.Target, e.Result, d, e.PrevHash, e.Hash)
		seq, last = e.Seq, e.Hash
	}
	// A statement an entry: one INSERT of many rows costs more here, as
	// the SQLite driver matches each value to its parameter by a search
	// over all of them, and SQLite keeps a statement journal for it.
	insert := tx.StmtContext(ctx, l.insert)
	for ; len(args) > 0; args = args[entryColumns:] {
		if _, err := insert.ExecContext(ctx, args[:entryColumns]...); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	l.seq, l.last = seq, last
	return nil
}

const (
	insertEntry = `INSERT INTO audit_log(seq, ts, actor, org_id, action, target, result, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// entryColumns are the values of an entry's row.
	entryColumns = 10
)

// Filter selects entries.
type Filter struct {
	Actor  string
	Action string // an exact action, or a prefix ending in "." (e.g. "device.")
	Target string
	From   time.Time
	To     time.Time
	Before int64 // entries with seq below this (paging); 0: from the newest
	Limit  int
}

// List returns entries inside scope, newest first.
func (l *Log) List(ctx context.Context, scope orgs.Scope, f Filter) ([]Entry, error) {
	cond, args := scope.SQL("org_id")
	q := `SELECT seq, ts, actor, org_id, action, target, result, detail, prev_hash, hash FROM audit_log WHERE ` + cond
	add := func(c string, a any) { q += " AND " + c; args = append(args, a) }
	if f.Actor != "" {
		add("actor = ?", f.Actor)
	}
	if strings.HasSuffix(f.Action, ".") {
		add("substr(action, 1, ?) = ?", len(f.Action))
		args = append(args, f.Action)
	} else if f.Action != "" {
		add("action = ?", f.Action)
	}
	if f.Target != "" {
		add("target = ?", f.Target)
	}
	if !f.From.IsZero() {
		add("ts >= ?", f.From.UnixMilli())
	}
	if !f.To.IsZero() {
		add("ts < ?", f.To.UnixMilli())
	}
	if f.Before > 0 {
		add("seq < ?", f.Before)
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	q += " ORDER BY seq DESC LIMIT ?"
	args = append(args, f.Limit)
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Entry{}
	for rows.Next() {
		e, _, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func scan(rows *sql.Rows) (Entry, string, error) {
	var e Entry
	var ts int64
	var detail string
	if err := rows.Scan(&e.Seq, &ts, &e.Actor, &e.OrgID, &e.Action, &e.Target, &e.Result, &detail, &e.PrevHash, &e.Hash); err != nil {
		return e, "", err
	}
	e.TS = time.UnixMilli(ts).UTC()
	if detail != "{}" {
		_ = json.Unmarshal([]byte(detail), &e.Detail)
	}
	return e, detail, nil
}

// Verify walks the whole chain and returns how many entries it checked, or
// the first entry that does not fit: changed, removed, or out of order.
func Verify(ctx context.Context, db *sql.DB) (int64, error) {
	rows, err := db.QueryContext(ctx, `SELECT seq, ts, actor, org_id, action, target, result, detail, prev_hash, hash FROM audit_log ORDER BY seq`)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	prev, want := genesis, int64(1)
	var n int64
	for rows.Next() {
		e, detail, err := scan(rows)
		if err != nil {
			return n, err
		}
		switch {
		case e.Seq != want:
			return n, fmt.Errorf("entry %d is missing (found %d next)", want, e.Seq)
		case e.PrevHash != prev:
			return n, fmt.Errorf("entry %d does not follow entry %d: its previous hash differs", e.Seq, e.Seq-1)
		case hashOf(e, detail) != e.Hash:
			return n, fmt.Errorf("entry %d was changed: its content does not match its hash", e.Seq)
		}
		prev, want = e.Hash, want+1
		n++
	}
	return n, rows.Err()
}
