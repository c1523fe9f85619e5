package sqldb

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
)

func TestOpenMigratesOnceInWAL(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(dir, "state"), log)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := Version(ctx, db)
	if err != nil || v1 < 1 {
		t.Fatalf("version %d, %v", v1, err)
	}
	if _, err := db.Exec(`INSERT INTO orgs(id, name, kind, path, created_at) VALUES ('a','A','province','a/',0)`); err != nil {
		t.Fatal(err)
	}
	var fk int
	if err := db.QueryRow("PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys = %d, %v", fk, err)
	}
	if _, err := db.Exec(`INSERT INTO orgs(id, parent_id, name, kind, path, created_at) VALUES ('b','missing','B','county','missing/b/',0)`); err == nil {
		t.Fatal("foreign key to a missing parent accepted")
	}
	db.Close()

	// Reopening finds the schema current and the data intact.
	db, err = Open(ctx, filepath.Join(dir, "state"), log)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v2, _ := Version(ctx, db)
	if v2 != v1 {
		t.Fatalf("version moved from %d to %d on reopen", v1, v2)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM orgs`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("orgs after reopen: %d, %v", n, err)
	}
}
