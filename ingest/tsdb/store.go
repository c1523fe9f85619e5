package tsdb

import (
	"context"
	"time"

	"github.com/lookout-cc/lookout/internal/errclass"
)

// Store is a time-series backend. Every backend passes the conformance
// suite in tsdbtest.
type Store interface {
	// Write stores points. Writing a point again for the same device,
	// metric and time replaces it, so a replay after a failure stores each
	// point exactly once. A *PermanentError means the store refused the
	// points themselves and a retry would fail again.
	Write(ctx context.Context, points []Point) error
	// Query returns the numeric samples of one metric of one device in
	// [From, To), oldest first; with Step, the mean of each step-long
	// bucket, buckets aligned to the Unix epoch and stamped with their start.
	Query(ctx context.Context, q Query) ([]Sample, error)
	// Latest returns the newest point of each metric of a device.
	Latest(ctx context.Context, device string) ([]Point, error)
	// Check reports whether the store answers.
	Check(ctx context.Context) error
	Close() error
}

// Query selects samples.
type Query struct {
	Device string
	Metric string
	From   time.Time
	To     time.Time
	Step   time.Duration // 0: every point
}

// Sample is one value of a queried metric.
type Sample struct {
	TS    int64   `json:"ts"` // Unix milliseconds
	Value float64 `json:"value"`
}

// MaxSamples bounds what one query returns; a wider query must downsample.
const MaxSamples = 100_000

// ErrTooManySamples is returned when a query would return more than
// MaxSamples.
var ErrTooManySamples = errclass.New(errclass.Invalid, "too_many_samples", "the range holds more than 100000 samples; set step to downsample")

// PermanentError wraps a write the store refused for the points' own sake
// (a type conflict, a malformed point): retrying it cannot succeed.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "store refused points: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }
