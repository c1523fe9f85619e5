package sqldb

import (
	"context"
	"log/slog"
	"testing"
)

// Rows writes any number of rows in order, through its four sizes, and
// refuses values that are not whole rows.
func TestRowsWritesEveryRowInOrder(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE t(seq INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	rows, err := PrepareRows(ctx, db, 2, func(n int) string { return `INSERT INTO t(seq, v) VALUES ` + Repeat("(?, ?)", ", ", n) })
	if err != nil {
		t.Fatal(err)
	}
	next := 0
	for _, n := range []int{0, 1, 3, 64, 85, 200} {
		args := make([]any, 0, 2*n)
		for range n {
			next++
			args = append(args, next, "v")
		}
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if err := rows.Exec(ctx, tx, args); err != nil {
			t.Fatalf("%d rows: %v", n, err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	var count, max int
	if err := db.QueryRow(`SELECT count(*), max(seq) FROM t`).Scan(&count, &max); err != nil || count != next || max != next {
		t.Fatalf("%d rows up to %d, want %d: %v", count, max, next, err)
	}
	tx, _ := db.Begin()
	defer tx.Rollback()
	if err := rows.Exec(ctx, tx, []any{1, "a", 2}); err == nil {
		t.Fatal("a row and a half written")
	}
}
