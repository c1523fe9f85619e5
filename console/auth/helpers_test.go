package auth

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"testing"

	"github.com/lookout-cc/lookout/internal/sqldb"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func mustDB(t *testing.T) *sql.DB { return mustDBF(t) }

func mustDBF(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), t.TempDir(), discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
