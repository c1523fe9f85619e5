package sqldb

import (
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"
)

// Checkpointer copies the state database's write-ahead log into the
// database file from a connection of its own, so that the one connection
// that writes (Open) seldom has to. In WAL mode SQLite checkpoints after
// the commit that makes the log long enough, on the writer's connection,
// with an fsync of the log and of the database file in its way: under a
// burst of commands that was a seventh of the journal's CPU
// (devices.BenchmarkJournal) and, when the disk was slow to sync, tens of
// milliseconds in which no command was stored. A passive checkpoint from
// another connection runs beside the writer and never waits for it.
type Checkpointer struct {
	db   *sql.DB
	log  *slog.Logger
	stop chan struct{}
	done chan struct{}
}

// CheckpointEvery is how often a Checkpointer copies the log: a burst of
// a thousand commands writes some 300 pages to it.
const CheckpointEvery = time.Second

// StartCheckpointer checkpoints the state database in dataDir every
// interval until Close.
func StartCheckpointer(dataDir string, every time.Duration, log *slog.Logger) (*Checkpointer, error) {
	db, err := OpenFile(filepath.Join(dataDir, FileName))
	if err != nil {
		return nil, fmt.Errorf("checkpointer: %w", err)
	}
	db.SetMaxOpenConns(1)
	c := &Checkpointer{db: db, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run(every)
	return c, nil
}

func (c *Checkpointer) run(every time.Duration) {
	defer close(c.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			if _, err := c.Checkpoint(); err != nil {
				c.log.Warn("write-ahead log not checkpointed; the writer checkpoints once it is long", "err", err)
			}
		}
	}
}

// Checkpoint copies what it can of the log now, without waiting for the
// writer or readers, and returns how many pages remain in the log that
// are not in the database file yet.
func (c *Checkpointer) Checkpoint() (left int, err error) {
	var busy, logPages, done int
	if err := c.db.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logPages, &done); err != nil {
		return 0, err
	}
	return logPages - done, nil
}

// Close stops the checkpoints. The writer's connection, closed last,
// checkpoints what is left.
func (c *Checkpointer) Close() error {
	close(c.stop)
	<-c.done
	return c.db.Close()
}
