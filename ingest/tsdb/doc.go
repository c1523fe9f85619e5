// Package tsdb is the time-series store: telemetry points written in
// batches and read back by device, metric and time range, optionally
// downsampled. It has two backends behind one interface, Store: the
// embedded one (SQLite, the default) and InfluxDB (1.8+ through the 2.x
// API, or 2.x). Both pass the conformance suite in tsdbtest.
package tsdb
