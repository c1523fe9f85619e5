package telemetry

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/ingest/tsdb"
)

var now = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

func sorted(ps []tsdb.Point) []tsdb.Point {
	slices.SortFunc(ps, func(a, b tsdb.Point) int {
		if a.TS != b.TS {
			return int(a.TS - b.TS)
		}
		return strings.Compare(a.Metric, b.Metric)
	})
	return ps
}

func TestDecodeAccepts(t *testing.T) {
	nowMS := now.UnixMilli()
	tests := []struct {
		name    string
		payload string
		want    []tsdb.Point
	}{
		{"flat", `{"water_level_m": 1712.4, "battery_v": 3.9}`, []tsdb.Point{
			{Device: "g", Metric: "battery_v", TS: nowMS, Value: 3.9}, {Device: "g", Metric: "water_level_m", TS: nowMS, Value: 1712.4}}},
		{"ts and values, unix ms", `{"ts": 1763800000000, "values": {"water_level_m": 1712.5}}`, []tsdb.Point{
			{Device: "g", Metric: "water_level_m", TS: 1763800000000, Value: 1712.5}}},
		{"ts RFC 3339", `{"ts": "2026-11-23T07:59:00+08:00", "values": {"level": 1}}`, []tsdb.Point{
			{Device: "g", Metric: "level", TS: time.Date(2026, 11, 23, 7, 59, 0, 0, time.FixedZone("", 8*3600)).UnixMilli(), Value: 1}}},
		{"flat with ts", `{"ts": 1763800000000, "power_w": 86}`, []tsdb.Point{{Device: "g", Metric: "power_w", TS: 1763800000000, Value: 86}}},
		{"booleans and text", `{"on": true, "fault": false, "state": "过热"}`, []tsdb.Point{
			{Device: "g", Metric: "fault", TS: nowMS}, {Device: "g", Metric: "on", TS: nowMS, Value: 1},
			{Device: "g", Metric: "state", TS: nowMS, Text: "过热", IsText: true}}},
		{"batch", `[{"ts": 1763800000000, "values": {"l": 1}}, {"ts": 1763800001000, "l": 2}]`, []tsdb.Point{
			{Device: "g", Metric: "l", TS: 1763800000000, Value: 1}, {Device: "g", Metric: "l", TS: 1763800001000, Value: 2}}},
		{"negative and exponent", `{"t": -3.5e1}`, []tsdb.Point{{Device: "g", Metric: "t", TS: nowMS, Value: -35}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode("g", []byte(tt.payload), now, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(sorted(got), sorted(tt.want)) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	many := "{"
	for i := 0; i < MaxKeys+1; i++ {
		if i > 0 {
			many += ","
		}
		many += `"k` + strings.Repeat("x", i%5) + string(rune('a'+i%26)) + strings.Repeat("0", i/26) + `":1`
	}
	many += "}"
	tests := []struct {
		name    string
		payload string
		reason  Reason
	}{
		{"not json", `water_level=1`, ReasonMalformed},
		{"truncated", `{"a": 1`, ReasonMalformed},
		{"trailing", `{"a": 1} {"b": 2}`, ReasonMalformed},
		{"scalar", `42`, ReasonMalformed},
		{"empty", ``, ReasonEmpty},
		{"empty object", `{}`, ReasonEmpty},
		{"only ts", `{"ts": 1763800000000}`, ReasonEmpty},
		{"empty batch", `[]`, ReasonEmpty},
		{"overflow is infinity", `{"a": 1e999}`, ReasonNaNInf},
		{"nested object", `{"a": {"b": 1}}`, ReasonNested},
		{"nested array", `{"a": [1, 2]}`, ReasonNested},
		{"batch of arrays", `[[{"a": 1}]]`, ReasonNested},
		{"null", `{"a": null}`, ReasonBadValue},
		{"long text", `{"a": "` + strings.Repeat("x", MaxTextBytes+1) + `"}`, ReasonBadValue},
		{"bad metric", `{"a b": 1}`, ReasonBadMetric},
		{"metric too long", `{"` + strings.Repeat("m", 65) + `": 1}`, ReasonBadMetric},
		{"ts in values", `{"values": {"ts": 1}}`, ReasonBadMetric},
		{"ts not a time", `{"ts": "yesterday", "a": 1}`, ReasonBadTS},
		{"ts before 2000", `{"ts": 0, "a": 1}`, ReasonBadTS},
		{"ts in seconds", `{"ts": 1763800000, "a": 1}`, ReasonBadTS},
		{"ts next year", `{"ts": "2027-11-23T00:00:00Z", "a": 1}`, ReasonBadTS},
		{"ts bool", `{"ts": true, "a": 1}`, ReasonBadTS},
		{"values not object", `{"values": 3}`, ReasonMalformed},
		{"extra key beside values", `{"values": {"a": 1}, "b": 2}`, ReasonMalformed},
		{"too many keys", many, ReasonTooManyKeys},
		{"too large", `{"a": "` + strings.Repeat("x", MaxPayloadBytes) + `"}`, ReasonTooLarge},
		{"one bad element spoils the batch", `[{"a": 1}, {"a": null}]`, ReasonBadValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prior := []tsdb.Point{{Device: "other", Metric: "x"}}
			got, err := Decode("g", []byte(tt.payload), now, prior)
			var rej *Rejection
			if !errors.As(err, &rej) || rej.Reason != tt.reason {
				t.Fatalf("got %v, want reason %s", err, tt.reason)
			}
			if len(got) != 1 || got[0].Device != "other" {
				t.Fatalf("refusal changed dst: %+v", got)
			}
		})
	}
}

func BenchmarkDecodeFlat(b *testing.B) {
	payload := []byte(`{"water_level_m": 1712.4, "battery_v": 3.9, "temp_c": 18.5}`)
	buf := make([]tsdb.Point, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = Decode("gauge-1", payload, now, buf[:0])
	}
}
