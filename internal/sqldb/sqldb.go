// Package sqldb opens Lookout's relational state store, SQLite through the
// pure-Go modernc driver in WAL mode, and brings its schema up to date with
// the versioned migrations under migrations/ before anything else uses it.
//
// The same schema serves every domain package; each of them receives the
// *sql.DB and keeps its own queries.
package sqldb

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// FileName is the state database's file inside the data directory.
const FileName = "lookout.db"

// Open opens (creating when missing) the state database in dataDir and
// applies every pending migration. The directory is created with mode 0700:
// it holds password hashes and signing keys.
func Open(ctx context.Context, dataDir string, log *slog.Logger) (*sql.DB, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	// The writer checkpoints the write-ahead log only once it is far
	// larger than a Checkpointer lets it grow: should none run, the log
	// is still bounded.
	db, err := openFile(filepath.Join(dataDir, FileName), "wal_autocheckpoint(10000)")
	if err != nil {
		return nil, err
	}
	// One connection: the state database's writes are small and many
	// (commands, their steps, audit entries); several connections writing
	// at once make SQLite's busy handler sleep and back off, which under a
	// burst of commands cost seconds. Reads of state are short too.
	db.SetMaxOpenConns(1)
	if err := Migrate(ctx, db, log); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// OpenFile opens the SQLite file at path with the settings every Lookout
// database uses: WAL (readers never wait for the writer), a busy timeout
// (writers queue instead of failing), foreign keys enforced, and immediate
// write transactions (no deadlock when two readers upgrade to writers),
// and statement journals in memory rather than in temporary files.
func OpenFile(path string) (*sql.DB, error) {
	return openFile(path)
}

func openFile(path string, pragmas ...string) (*sql.DB, error) {
	q := url.Values{}
	for _, p := range append([]string{"journal_mode(WAL)", "busy_timeout(5000)", "foreign_keys(1)", "synchronous(NORMAL)", "temp_store(MEMORY)"}, pragmas...) {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		db.Close()
		return nil, fmt.Errorf("open %s: journal mode is %q, want wal (%v)", path, mode, err)
	}
	return db, nil
}

// Migrate applies the state database's pending migrations.
func Migrate(ctx context.Context, db *sql.DB, log *slog.Logger) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	return MigrateFS(ctx, db, sub, log)
}

// MigrateFS applies the pending migrations of fsys (goose SQL files) in
// version order, each in its own transaction, and records them in the
// goose_db_version table. Other SQLite files of Lookout (the embedded
// time-series store) bring their own migrations through it.
func MigrateFS(ctx context.Context, db *sql.DB, fsys fs.FS, log *slog.Logger) error {
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate state database: %w", err)
	}
	for _, r := range results {
		log.Info("schema migrated", "version", r.Source.Version, "file", r.Source.Path, "took", r.Duration)
	}
	return nil
}

// Version returns the schema version the database is at.
func Version(ctx context.Context, db *sql.DB) (int64, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return 0, err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, sub, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return 0, err
	}
	return p.GetDBVersion(ctx)
}
