package sqldb

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The writer leaves the write-ahead log to the Checkpointer: thousands of
// pages written stay in the log until a checkpoint from the other
// connection copies every one of them into the database file, and the
// data reads back whole after both are closed.
func TestCheckpointerCopiesTheWritersLog(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	db, err := Open(ctx, dir, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE filler(n INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 3000)
	for i := range 20 {
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		for j := range 100 { // a page each
			if _, err := tx.Exec(`INSERT INTO filler(n, v) VALUES (?, ?)`, i*100+j, pad); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	wal, err := os.Stat(filepath.Join(dir, FileName+"-wal"))
	if err != nil {
		t.Fatal(err)
	}
	if wal.Size() < 2000*4096 {
		t.Fatalf("write-ahead log of %d bytes: the writer checkpointed 2,000 pages itself", wal.Size())
	}
	c, err := StartCheckpointer(dir, time.Hour, log) // no tick: the test checkpoints
	if err != nil {
		t.Fatal(err)
	}
	left, err := c.Checkpoint()
	if err != nil || left != 0 {
		t.Fatalf("%d pages left in the log: %v", left, err)
	}
	main, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil || main.Size() < 2000*4096 {
		t.Fatalf("database file of %d bytes after the checkpoint: %v", main.Size(), err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(ctx, dir, log)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM filler WHERE v = ?`, pad).Scan(&n); err != nil || n != 2000 {
		t.Fatalf("%d rows after reopening, want 2000: %v", n, err)
	}
}
