package orgs

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/lookout-cc/lookout/internal/sqldb"
)

// Ids may hold '_' and '-', which LIKE would read as wildcards; the scope's
// SQL must match the subtree exactly, as Contains does.
func TestScopeMatchesSubtreeExactly(t *testing.T) {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tree, err := NewStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.EnsureRoot(ctx, NewOrg{ID: "p", Name: "P", Kind: "province"}); err != nil {
		t.Fatal(err)
	}
	root, _ := tree.ScopeOf("p")
	for _, o := range []NewOrg{
		{ID: "a_b", ParentID: "p", Name: "1", Kind: "county"},
		{ID: "axb", ParentID: "p", Name: "2", Kind: "county"},
		{ID: "a_b-town", ParentID: "a_b", Name: "3", Kind: "township"},
		{ID: "a", ParentID: "p", Name: "4", Kind: "county"},
	} {
		if _, err := tree.Create(ctx, root, o); err != nil {
			t.Fatal(err)
		}
	}
	scope, _ := tree.ScopeOf("a_b")
	cond, args := scope.SQL("id")
	rows, err := db.QueryContext(ctx, "SELECT id FROM orgs WHERE "+cond+" ORDER BY id", args...)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var id string
		rows.Scan(&id)
		got = append(got, id)
	}
	rows.Close()
	if !slices.Equal(got, []string{"a_b", "a_b-town"}) {
		t.Fatalf("SQL scope of a_b selects %v", got)
	}
	for id, want := range map[ID]bool{"a_b": true, "a_b-town": true, "axb": false, "a": false, "p": false, "missing": false} {
		if tree.Contains(scope, id) != want {
			t.Errorf("Contains(a_b, %s) = %v", id, !want)
		}
	}
	var zero Scope
	if tree.Contains(zero, "p") || len(tree.List(zero)) != 0 {
		t.Fatal("the zero scope must contain nothing")
	}
	if _, err := tree.Create(ctx, scope, NewOrg{ID: "x", ParentID: "axb", Name: "X", Kind: "township"}); err != ErrOutOfScope {
		t.Fatalf("create under another county: %v", err)
	}

	// The tree survives a reload from the database.
	again, err := NewStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(again.List(root)); n != 5 {
		t.Fatalf("reloaded tree has %d orgs, want 5", n)
	}
}
