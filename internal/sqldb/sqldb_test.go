package sqldb

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"testing"
	"testing/fstest"
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

// Migration 15 replaces the index of commands by device with the newest
// command of each name per device, filled from the commands already kept.
func TestCommandLatestFilledFromHistory(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := OpenFile(filepath.Join(t.TempDir(), FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	before := fstest.MapFS{}
	files, _ := fs.ReadDir(sub, ".")
	for _, f := range files {
		if f.Name() < "00015" {
			b, _ := fs.ReadFile(sub, f.Name())
			before[f.Name()] = &fstest.MapFile{Data: b}
		}
	}
	if err := MigrateFS(ctx, db, before, log); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id, device, name string
		at               int64
	}{
		{"cmd_1", "lamp-1", "set_brightness", 100},
		{"cmd_2", "lamp-1", "set_brightness", 300},
		{"cmd_3", "lamp-1", "set_brightness", 200},
		{"cmd_4", "lamp-1", "set_power", 50},
		{"cmd_5", "lamp-2", "set_brightness", 10},
	} {
		if _, err := db.Exec(`INSERT INTO commands(id, device_id, org_id, name, params, state, queue, timeout_ms, created_by, created_at, expires_at)
			VALUES (?, ?, 'qj', ?, '{}', 'acked', 0, 1000, 'u', ?, ?)`, c.id, c.device, c.name, c.at, c.at+1000); err != nil {
			t.Fatal(err)
		}
	}
	if err := Migrate(ctx, db, log); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	rows, err := db.Query(`SELECT device_id || '/' || name, command_id FROM command_latest`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		got[k] = v
	}
	want := map[string]string{"lamp-1/set_brightness": "cmd_2", "lamp-1/set_power": "cmd_4", "lamp-2/set_brightness": "cmd_5"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("command_latest %v, want %v", got, want)
	}
}
