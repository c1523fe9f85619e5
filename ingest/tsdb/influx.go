package tsdb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"
)

// InfluxParams point at an InfluxDB.
type InfluxParams struct {
	URL    string
	Token  string // "user:password" for 1.8
	Org    string
	Bucket string // "database/retention-policy" for 1.8
}

// Influx is the InfluxDB backend (1.8 through its 2.x API, or 2.x).
//
// Points go to measurement "telemetry", tagged with the device; each metric
// is a field. Text readings go to the field "{metric}__text", so that a
// metric that is sometimes a number and sometimes text never makes a field
// type conflict, which InfluxDB would refuse for good.
//
// Writes use the blocking API under Lookout's own batching: the client's
// non-blocking API drops points on errors (influxdb-client-go issues #295
// and #405), where the ingest path must spool them.
type Influx struct {
	p      InfluxParams
	client influxdb2.Client
	write  api.WriteAPIBlocking
	query  api.QueryAPI
}

const (
	measurement = "telemetry"
	textSuffix  = "__text"
)

// NewInflux returns the backend; it does not connect until used.
func NewInflux(p InfluxParams) *Influx {
	opts := influxdb2.DefaultOptions().SetPrecision(time.Millisecond).SetHTTPRequestTimeout(30)
	c := influxdb2.NewClientWithOptions(p.URL, p.Token, opts)
	return &Influx{p: p, client: c, write: c.WriteAPIBlocking(p.Org, p.Bucket), query: c.QueryAPI(p.Org)}
}

// Write implements Store, in one request of line protocol.
func (in *Influx) Write(ctx context.Context, points []Point) error {
	if len(points) == 0 {
		return nil
	}
	var b strings.Builder
	b.Grow(len(points) * 64)
	for i, p := range points {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(measurement)
		b.WriteString(",device=")
		writeEscaped(&b, p.Device)
		b.WriteByte(' ')
		if p.IsText {
			writeEscaped(&b, p.Metric+textSuffix)
			b.WriteString(`="`)
			b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(p.Text))
			b.WriteByte('"')
		} else {
			writeEscaped(&b, p.Metric)
			b.WriteByte('=')
			b.WriteString(strconv.FormatFloat(p.Value, 'g', -1, 64))
		}
		b.WriteByte(' ')
		b.WriteString(strconv.FormatInt(p.TS, 10))
	}
	err := in.write.WriteRecord(ctx, b.String())
	if err == nil {
		return nil
	}
	var he *influxhttp.Error
	if errors.As(err, &he) && he.StatusCode >= 400 && he.StatusCode < 500 &&
		he.StatusCode != http.StatusUnauthorized && he.StatusCode != http.StatusForbidden &&
		he.StatusCode != http.StatusNotFound && he.StatusCode != http.StatusTooManyRequests && he.StatusCode != http.StatusRequestTimeout {
		return &PermanentError{Err: err}
	}
	return err
}

// writeEscaped writes a tag value or field key in line protocol.
func writeEscaped(b *strings.Builder, s string) {
	for _, r := range s {
		if r == ',' || r == '=' || r == ' ' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
}

func fluxTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Query implements Store with Flux.
func (in *Influx) Query(ctx context.Context, q Query) ([]Sample, error) {
	flux := fmt.Sprintf(`from(bucket: %q)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %q and r.device == %q and r._field == %q)`,
		// InfluxDB 1.8's storage reads include the stop instant; points are
		// in milliseconds, so stopping 1 ns early gives [From, To) on both
		// 1.8 and 2.x.
		in.p.Bucket, fluxTime(q.From), fluxTime(q.To.Add(-time.Nanosecond)), measurement, q.Device, q.Metric)
	if q.Step > 0 {
		flux += fmt.Sprintf("\n  |> aggregateWindow(every: %dms, fn: mean, createEmpty: false, timeSrc: \"_start\")", q.Step.Milliseconds())
	}
	flux += fmt.Sprintf("\n  |> keep(columns: [\"_time\", \"_value\"])\n  |> limit(n: %d)", MaxSamples+1)
	res, err := in.query.Query(ctx, flux)
	if err != nil {
		return nil, err
	}
	defer res.Close()
	out := []Sample{}
	for res.Next() {
		r := res.Record()
		v, ok := toFloat(r.Value())
		if !ok {
			continue
		}
		out = append(out, Sample{TS: r.Time().UnixMilli(), Value: v})
	}
	if res.Err() != nil {
		return nil, res.Err()
	}
	if len(out) > MaxSamples {
		return nil, ErrTooManySamples
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TS < out[j].TS })
	return out, nil
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, !math.IsNaN(x)
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// latestWindow is how far back Latest looks: a device silent for longer has
// no latest values worth showing as current.
const latestWindow = 400 * 24 * time.Hour

// Latest implements Store.
func (in *Influx) Latest(ctx context.Context, device string) ([]Point, error) {
	flux := fmt.Sprintf(`from(bucket: %q)
  |> range(start: -%dh)
  |> filter(fn: (r) => r._measurement == %q and r.device == %q)
  |> last()`, in.p.Bucket, int(latestWindow.Hours()), measurement, device)
	res, err := in.query.Query(ctx, flux)
	if err != nil {
		return nil, err
	}
	defer res.Close()
	byMetric := map[string]Point{}
	for res.Next() {
		r := res.Record()
		p := Point{Device: device, Metric: r.Field(), TS: r.Time().UnixMilli()}
		if m, ok := strings.CutSuffix(p.Metric, textSuffix); ok {
			p.Metric, p.IsText = m, true
			p.Text, _ = r.Value().(string)
		} else if p.Value, ok = toFloat(r.Value()); !ok {
			continue
		}
		if old, seen := byMetric[p.Metric]; !seen || p.TS > old.TS {
			byMetric[p.Metric] = p
		}
	}
	if res.Err() != nil {
		return nil, res.Err()
	}
	out := make([]Point, 0, len(byMetric))
	for _, p := range byMetric {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Metric < out[j].Metric })
	return out, nil
}

// Check reports whether InfluxDB answers and admits our credentials to the
// bucket, with a query that reads nothing.
func (in *Influx) Check(ctx context.Context) error {
	ok, err := in.client.Ping(ctx)
	if err != nil || !ok {
		return fmt.Errorf("influxdb at %s not reachable", in.p.URL)
	}
	res, err := in.query.Query(ctx, fmt.Sprintf("from(bucket: %q) |> range(start: -1s) |> limit(n: 1)", in.p.Bucket))
	if err != nil {
		return fmt.Errorf("influxdb at %s refused a query on %s: %w", in.p.URL, in.p.Bucket, err)
	}
	for res.Next() {
	}
	return res.Close()
}

// Close releases the client's connections.
func (in *Influx) Close() error {
	in.client.Close()
	return nil
}
