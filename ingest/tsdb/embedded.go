package tsdb

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lookout-cc/lookout/internal/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// EmbeddedFile is the embedded store's file in the data directory, beside
// the state database: a file of its own, so that the write load of
// telemetry never waits on, or holds up, the state database's writer.
const EmbeddedFile = "telemetry.db"

// Embedded is the default backend: SQLite in WAL mode.
//
// Lifecycle: OpenEmbedded, then Close once; retention runs in the background
// in between.
type Embedded struct {
	db        *sql.DB
	log       *slog.Logger
	retention time.Duration
	now       func() time.Time

	mu     sync.Mutex // guards series and serializes writes
	series map[seriesKey]int64
	added  []seriesKey // series made by the transaction under way
	rows   []row       // reused by Write
	// insertFull is prepared once: parsing a 200-row INSERT for every
	// chunk cost more than executing it.
	insertFull *sql.Stmt

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type seriesKey struct{ device, metric string }

// OpenEmbedded opens (creating) the store in dataDir and starts retention,
// which deletes points older than retention every hour.
func OpenEmbedded(ctx context.Context, dataDir string, retention time.Duration, log *slog.Logger) (*Embedded, error) {
	db, err := sqldb.OpenFile(filepath.Join(dataDir, EmbeddedFile))
	if err != nil {
		return nil, err
	}
	sub, _ := fs.Sub(migrations, "migrations")
	if err := sqldb.MigrateFS(ctx, db, sub, log); err != nil {
		db.Close()
		return nil, fmt.Errorf("telemetry store: %w", err)
	}
	e := &Embedded{db: db, log: log, retention: retention, now: time.Now, series: map[seriesKey]int64{}}
	rows, err := db.QueryContext(ctx, `SELECT id, device, metric FROM series`)
	if err != nil {
		db.Close()
		return nil, err
	}
	for rows.Next() {
		var id int64
		var k seriesKey
		if err := rows.Scan(&id, &k.device, &k.metric); err != nil {
			rows.Close()
			db.Close()
			return nil, err
		}
		e.series[k] = id
	}
	rows.Close()
	if e.insertFull, err = db.PrepareContext(ctx, insertSQL(insertChunk)); err != nil {
		db.Close()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.wg.Add(1)
	go e.retain(runCtx)
	return e, nil
}

// insertChunk is how many points one INSERT statement carries: fewer
// statements per batch is most of the write speed.
const insertChunk = 200

// Write stores points in one transaction.
func (e *Embedded) Write(ctx context.Context, points []Point) (err error) {
	if len(points) == 0 {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.added = e.added[:0]
	defer func() {
		if err != nil {
			// The series this transaction made are not in the file.
			for _, k := range e.added {
				delete(e.series, k)
			}
		}
	}()
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Rows in key order: each series' new points go in together, which
	// splits fewer B-tree pages than points interleaved across series.
	rows := e.rows[:0]
	for _, p := range points {
		id, err := e.seriesID(ctx, tx, p.Device, p.Metric)
		if err != nil {
			return err
		}
		rows = append(rows, row{series: id, p: p})
	}
	slices.SortFunc(rows, func(a, b row) int {
		if a.series != b.series {
			return cmp.Compare(a.series, b.series)
		}
		return cmp.Compare(a.p.TS, b.p.TS)
	})
	e.rows = rows
	full := tx.StmtContext(ctx, e.insertFull)
	defer full.Close()
	args := make([]any, 0, 4*insertChunk)
	for start := 0; start < len(rows); start += insertChunk {
		chunk := rows[start:min(start+insertChunk, len(rows))]
		args = args[:0]
		for _, r := range chunk {
			if r.p.IsText {
				args = append(args, r.series, r.p.TS, nil, r.p.Text)
			} else {
				args = append(args, r.series, r.p.TS, r.p.Value, nil)
			}
		}
		if len(chunk) == insertChunk {
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, insertSQL(len(chunk)), args...)
		}
		if err != nil {
			return fmt.Errorf("insert points: %w", err)
		}
	}
	return tx.Commit()
}

type row struct {
	series int64
	p      Point
}

// insertSQL is a statement inserting n points; a point already stored for
// the same series and time is replaced.
func insertSQL(n int) string {
	var sb strings.Builder
	sb.WriteString("INSERT INTO points(series, ts, value, text) VALUES ")
	for i := 0; i < n; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString("(?,?,?,?)")
	}
	sb.WriteString(" ON CONFLICT(series, ts) DO UPDATE SET value = excluded.value, text = excluded.text")
	return sb.String()
}

func (e *Embedded) seriesID(ctx context.Context, tx *sql.Tx, device, metric string) (int64, error) {
	k := seriesKey{device, metric}
	if id, ok := e.series[k]; ok {
		return id, nil
	}
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO series(device, metric) VALUES (?, ?)
		ON CONFLICT(device, metric) DO UPDATE SET device = excluded.device RETURNING id`, device, metric).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("series %s/%s: %w", device, metric, err)
	}
	e.series[k] = id
	e.added = append(e.added, k)
	return id, nil
}

// Query implements Store.
func (e *Embedded) Query(ctx context.Context, q Query) ([]Sample, error) {
	var rows *sql.Rows
	var err error
	const series = `(SELECT id FROM series WHERE device = ? AND metric = ?)`
	if q.Step > 0 {
		step := q.Step.Milliseconds()
		rows, err = e.db.QueryContext(ctx, `SELECT (ts / ?) * ? AS bucket, avg(value) FROM points
			WHERE series = `+series+` AND ts >= ? AND ts < ? AND value IS NOT NULL
			GROUP BY bucket ORDER BY bucket LIMIT ?`,
			step, step, q.Device, q.Metric, q.From.UnixMilli(), q.To.UnixMilli(), MaxSamples+1)
	} else {
		rows, err = e.db.QueryContext(ctx, `SELECT ts, value FROM points
			WHERE series = `+series+` AND ts >= ? AND ts < ? AND value IS NOT NULL ORDER BY ts LIMIT ?`,
			q.Device, q.Metric, q.From.UnixMilli(), q.To.UnixMilli(), MaxSamples+1)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Sample{}
	for rows.Next() {
		var s Sample
		if err := rows.Scan(&s.TS, &s.Value); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if len(out) > MaxSamples {
		return nil, ErrTooManySamples
	}
	return out, rows.Err()
}

// Latest implements Store.
func (e *Embedded) Latest(ctx context.Context, device string) ([]Point, error) {
	rows, err := e.db.QueryContext(ctx, `SELECT s.metric, p.ts, p.value, p.text FROM series s
		JOIN points p ON p.series = s.id AND p.ts = (SELECT max(ts) FROM points WHERE series = s.id)
		WHERE s.device = ? ORDER BY s.metric`, device)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Point{}
	for rows.Next() {
		p := Point{Device: device}
		var value sql.NullFloat64
		var text sql.NullString
		if err := rows.Scan(&p.Metric, &p.TS, &value, &text); err != nil {
			return nil, err
		}
		p.Value, p.Text, p.IsText = value.Float64, text.String, text.Valid
		out = append(out, p)
	}
	return out, rows.Err()
}

// Check implements Store.
func (e *Embedded) Check(ctx context.Context) error { return e.db.PingContext(ctx) }

// Close stops retention and closes the file.
func (e *Embedded) Close() error {
	e.cancel()
	e.wg.Wait()
	e.insertFull.Close()
	return e.db.Close()
}

// retentionChunk bounds one delete, so that retention never holds the
// writer for long.
const retentionChunk = 5000

func (e *Embedded) retain(ctx context.Context) {
	defer e.wg.Done()
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		if n, err := e.DeleteOlderThan(ctx, e.now().Add(-e.retention)); err != nil {
			if ctx.Err() == nil {
				e.log.Warn("telemetry retention failed", "err", err)
			}
		} else if n > 0 {
			e.log.Info("telemetry retention", "deleted_points", n, "older_than", e.retention)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// DeleteOlderThan deletes points before cutoff, series by series in small
// chunks, and returns how many it deleted.
func (e *Embedded) DeleteOlderThan(ctx context.Context, cutoff time.Time) (int64, error) {
	e.mu.Lock()
	ids := make([]int64, 0, len(e.series))
	for _, id := range e.series {
		ids = append(ids, id)
	}
	e.mu.Unlock()
	var total int64
	for _, id := range ids {
		for {
			if err := ctx.Err(); err != nil {
				return total, err
			}
			e.mu.Lock()
			res, err := e.db.ExecContext(ctx, `DELETE FROM points WHERE series = ? AND ts IN
				(SELECT ts FROM points WHERE series = ? AND ts < ? ORDER BY ts LIMIT ?)`, id, id, cutoff.UnixMilli(), retentionChunk)
			e.mu.Unlock()
			if err != nil {
				return total, err
			}
			n, _ := res.RowsAffected()
			total += n
			if n < retentionChunk {
				break
			}
		}
	}
	return total, nil
}
