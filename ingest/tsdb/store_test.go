package tsdb_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/ingest/tsdb"
	"github.com/lookout-cc/lookout/ingest/tsdb/tsdbtest"
	"github.com/lookout-cc/lookout/internal/testpeers"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestEmbeddedConformance(t *testing.T) {
	tsdbtest.Run(t, func(t *testing.T) tsdb.Store {
		s, err := tsdb.OpenEmbedded(context.Background(), t.TempDir(), 90*24*time.Hour, discard())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// One real influxd 1.8.10 serves every subtest, each in a database of its own.
func TestInfluxDBConformance(t *testing.T) {
	db := testpeers.StartInfluxDB(t)
	var n atomic.Int64
	tsdbtest.Run(t, func(t *testing.T) tsdb.Store {
		name := fmt.Sprintf("conf%d", n.Add(1))
		createDatabase(t, db, name)
		s := tsdb.NewInflux(tsdb.InfluxParams{URL: db.URL, Token: db.Token, Org: db.Org, Bucket: name + "/autogen"})
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func createDatabase(t *testing.T, db *testpeers.InfluxDB, name string) {
	t.Helper()
	user, pass, _ := strings.Cut(db.Token, ":")
	req, _ := http.NewRequest("POST", db.URL+"/query", strings.NewReader(url.Values{"q": {"CREATE DATABASE " + name}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("create database: %v %v", err, resp)
	}
	resp.Body.Close()
	// Under load influxd may answer the creation before its write path
	// knows the database: wait until a write to it is taken.
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest("POST", db.URL+"/write?db="+name, strings.NewReader("_ready v=1"))
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("database %s not writable within 10 s: %v %v", name, err, resp)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestEmbeddedRetentionAndReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := tsdb.OpenEmbedded(ctx, dir, 90*24*time.Hour, discard())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	old := now.Add(-100 * 24 * time.Hour).UnixMilli()
	var ps []tsdb.Point
	for i := 0; i < 12_000; i++ { // more than one retention chunk
		ps = append(ps, tsdb.Point{Device: "g", Metric: "m", TS: old + int64(i), Value: 1})
	}
	ps = append(ps, tsdb.Point{Device: "g", Metric: "m", TS: now.UnixMilli(), Value: 2})
	if err := s.Write(ctx, ps); err != nil {
		t.Fatal(err)
	}
	// The store's own retention pass, which runs at open, may take some
	// of them first: what counts is that none is left.
	n, err := s.DeleteOlderThan(ctx, now.Add(-90*24*time.Hour))
	if err != nil || n > 12_000 {
		t.Fatalf("deleted %d, %v", n, err)
	}
	if left, err := s.Query(ctx, tsdb.Query{Device: "g", Metric: "m", From: time.UnixMilli(old), To: now.Add(-90 * 24 * time.Hour)}); err != nil || len(left) != 0 {
		t.Fatalf("%d old points left after retention, %v", len(left), err)
	}
	s.Close()
	s, err = tsdb.OpenEmbedded(ctx, dir, 90*24*time.Hour, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Query(ctx, tsdb.Query{Device: "g", Metric: "m", From: now.Add(-200 * 24 * time.Hour), To: now.Add(time.Second)})
	if err != nil || len(got) != 1 || got[0].Value != 2 {
		t.Fatalf("after retention and reopen: %v %v", got, err)
	}
	// New points of the same series after reopening reuse it.
	if err := s.Write(ctx, []tsdb.Point{{Device: "g", Metric: "m", TS: now.UnixMilli() + 1, Value: 3}}); err != nil {
		t.Fatal(err)
	}
}
