// Package orgstest builds, for tests, a state database in a temporary
// directory with the organisation tree the packages' tests share:
// 云南省 (yn) > 昭通市 (zt) > {巧家县 (qj), 永善县 (ys)}.
package orgstest

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"testing"

	"github.com/lookout-cc/lookout/internal/orgs"
	"github.com/lookout-cc/lookout/internal/sqldb"
)

// Tree opens the database (closed when the test ends) in a new temporary
// directory, which it returns too, and makes the tree.
func Tree(t testing.TB) (db *sql.DB, tree *orgs.Store, dir string) {
	t.Helper()
	ctx := context.Background()
	dir = t.TempDir()
	db, err := sqldb.Open(ctx, dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if tree, err = orgs.NewStore(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := tree.EnsureRoot(ctx, orgs.NewOrg{ID: "yn", Name: "云南省", Kind: "province"}); err != nil {
		t.Fatal(err)
	}
	root, _ := tree.ScopeOf("yn")
	for _, o := range []orgs.NewOrg{
		{ID: "zt", ParentID: "yn", Name: "昭通市", Kind: "prefecture"},
		{ID: "qj", ParentID: "zt", Name: "巧家县", Kind: "county"},
		{ID: "ys", ParentID: "zt", Name: "永善县", Kind: "county"},
	} {
		if _, err := tree.Create(ctx, root, o); err != nil {
			t.Fatal(err)
		}
	}
	return db, tree, dir
}
