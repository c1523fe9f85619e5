package tsdb_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/ingest/tsdb"
	"github.com/lookout-cc/lookout/internal/testpeers"
)

// BenchmarkEmbeddedWrite writes batches of 5000 points over 1000 series,
// as the ingest pipeline does; points/s is the figure that matters.
func BenchmarkEmbeddedWrite(b *testing.B) {
	s, err := tsdb.OpenEmbedded(context.Background(), b.TempDir(), 90*24*time.Hour, discard())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const batch = 5000
	ps := make([]tsdb.Point, batch)
	ts := time.Now().Add(-time.Hour).UnixMilli()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for j := range ps {
			ps[j] = tsdb.Point{Device: fmt.Sprintf("dev-%d", j%1000), Metric: "water_level_m", TS: ts + int64(i*batch+j), Value: float64(j)}
		}
		if err := s.Write(context.Background(), ps); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "points/s")
}

// BenchmarkInfluxWrite writes batches of 5000 points over 1000 series into
// a real influxd 1.8.10, as the ingest pipeline does.
func BenchmarkInfluxWrite(b *testing.B) {
	db := testpeers.StartInfluxDB(b)
	s := tsdb.NewInflux(tsdb.InfluxParams{URL: db.URL, Token: db.Token, Org: db.Org, Bucket: db.Bucket})
	defer s.Close()
	const batch = 5000
	ps := make([]tsdb.Point, batch)
	ts := time.Now().Add(-time.Hour).UnixMilli()
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("dev-%d", i)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for j := range ps {
			ps[j] = tsdb.Point{Device: names[j%1000], Metric: "water_level_m", TS: ts + int64(i*batch+j), Value: float64(j)}
		}
		if err := s.Write(context.Background(), ps); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "points/s")
}
