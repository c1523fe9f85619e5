// Package tsdb is the time-series store: telemetry points written in
// batches and read back by device, metric and time range. It has two
// backends, the embedded one and InfluxDB (1.8+ through the 2.x API, or 2.x).
package tsdb

import (
	"context"
	"fmt"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
)

// InfluxParams point at an InfluxDB.
type InfluxParams struct {
	URL    string
	Token  string // "user:password" for 1.8
	Org    string
	Bucket string // "database/retention-policy" for 1.8
}

// Influx is the InfluxDB backend.
type Influx struct {
	p      InfluxParams
	client influxdb2.Client
}

// NewInflux returns the backend; it does not connect until used.
func NewInflux(p InfluxParams) *Influx {
	return &Influx{p: p, client: influxdb2.NewClient(p.URL, p.Token)}
}

// Check reports whether InfluxDB answers and admits our credentials to the
// bucket, with a query that reads nothing.
func (in *Influx) Check(ctx context.Context) error {
	ok, err := in.client.Ping(ctx)
	if err != nil || !ok {
		return fmt.Errorf("influxdb at %s not reachable", in.p.URL)
	}
	q := fmt.Sprintf("from(bucket: %q) |> range(start: -1s) |> limit(n: 1)", in.p.Bucket)
	res, err := in.client.QueryAPI(in.p.Org).Query(ctx, q)
	if err != nil {
		return fmt.Errorf("influxdb at %s refused a query on %s: %w", in.p.URL, in.p.Bucket, err)
	}
	for res.Next() {
	}
	return res.Close()
}

// Close releases the client's connections.
func (in *Influx) Close() { in.client.Close() }
