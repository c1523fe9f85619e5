package sqldb

import (
	"context"
	"database/sql"
	"fmt"
)

// Rows is a statement that writes many rows at once (a multi-row INSERT,
// an UPDATE ... FROM (VALUES ...)), prepared for 64, 16, 4 and 1 rows. A
// burst of command steps and their audit entries writes thousands of rows
// a second through the one writer connection, and one statement per row
// spent most of a row's cost in the statement itself (binding, stepping,
// database/sql's bookkeeping); Exec takes the rows in as few statements
// as the four sizes allow.
type Rows struct {
	cols  int
	stmts map[int]*sql.Stmt
}

// rowSizes are the prepared sizes, largest first: 64 rows of 16 columns
// are 1,024 parameters, far under SQLite's limit.
var rowSizes = []int{64, 16, 4, 1}

// PrepareRows prepares the statement of n rows, as query(n) writes it, for
// each size; cols is the values a row takes.
func PrepareRows(ctx context.Context, db *sql.DB, cols int, query func(n int) string) (*Rows, error) {
	r := &Rows{cols: cols, stmts: make(map[int]*sql.Stmt, len(rowSizes))}
	for _, n := range rowSizes {
		s, err := db.PrepareContext(ctx, query(n))
		if err != nil {
			return nil, fmt.Errorf("prepare %d rows: %w", n, err)
		}
		r.stmts[n] = s
	}
	return r, nil
}

// Exec writes the rows whose values args holds, cols a row, in order, in
// tx.
func (r *Rows) Exec(ctx context.Context, tx *sql.Tx, args []any) error {
	if len(args)%r.cols != 0 {
		return fmt.Errorf("rows: %d values are not rows of %d", len(args), r.cols)
	}
	for len(args) > 0 {
		left, n := len(args)/r.cols, 1
		for _, size := range rowSizes {
			if size <= left {
				n = size
				break
			}
		}
		if _, err := tx.StmtContext(ctx, r.stmts[n]).ExecContext(ctx, args[:n*r.cols]...); err != nil {
			return err
		}
		args = args[n*r.cols:]
	}
	return nil
}

// Repeat is "sep" joined n times after first: the placeholders of n rows,
// as Repeat("(?, ?)", ", ", 3) is "(?, ?), (?, ?), (?, ?)".
func Repeat(row, sep string, n int) string {
	out := row
	for range n - 1 {
		out += sep + row
	}
	return out
}
