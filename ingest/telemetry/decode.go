// Package telemetry decodes the JSON telemetry devices publish on
// lookout/v1/devices/{id}/telemetry (DESIGN.md, device contract) into
// points, and says why when it refuses a message.
//
// Accepted: a flat object {"water_level_m": 1712.4, "battery_v": 3.9}, or
// {"ts": ..., "values": {...}}; a flat object may carry "ts" too. ts is Unix
// milliseconds or RFC 3339, absent means the time of receipt. Values are
// finite numbers, booleans (stored as 1 and 0) and strings of at most 256
// bytes. An array of such objects is a batch, decoded whole or refused whole.
package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"time"

	"github.com/lookout-cc/lookout/ingest/tsdb"
)

// Limits of the contract.
const (
	MaxPayloadBytes = 64 << 10
	MaxKeys         = 256
	MaxTextBytes    = 256
	// MaxBatch bounds the objects in one array.
	MaxBatch = 1000
)

// Reason is why a message was refused; it is the value of the reason label
// of lookout_ingest_rejected_total.
type Reason string

// The reasons a telemetry message is refused.
const (
	ReasonMalformed   Reason = "malformed"
	ReasonTooLarge    Reason = "too_large"
	ReasonTooManyKeys Reason = "too_many_keys"
	ReasonNested      Reason = "nested"
	ReasonNaNInf      Reason = "nan_inf"
	ReasonBadValue    Reason = "bad_value"
	ReasonBadMetric   Reason = "bad_metric"
	ReasonBadTS       Reason = "bad_ts"
	ReasonEmpty       Reason = "empty"
)

// Rejection is a refused message: the reason and a detail for the log.
type Rejection struct {
	Reason Reason
	Detail string
}

func (r *Rejection) Error() string { return string(r.Reason) + ": " + r.Detail }

func reject(reason Reason, format string, args ...any) *Rejection {
	return &Rejection{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// metricPattern is the shape of a metric name: it becomes an InfluxDB field
// and a URL query value.
var metricPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,63}$`)

// Timestamps outside [minTS, now+maxAhead] are refused: a device with a
// clock at 1970 or in next year would scatter points where no one looks.
var minTS = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

const maxAhead = 24 * time.Hour

// Decode appends the points of payload, published by device at now, to dst.
// On refusal it returns dst unchanged and a *Rejection.
func Decode(device string, payload []byte, now time.Time, dst []tsdb.Point) ([]tsdb.Point, error) {
	if len(payload) > MaxPayloadBytes {
		return dst, reject(ReasonTooLarge, "%d bytes, over %d", len(payload), MaxPayloadBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return dst, reject(ReasonEmpty, "empty payload")
		}
		return dst, reject(ReasonMalformed, "%v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return dst, reject(ReasonMalformed, "data after the JSON value")
	}
	start := len(dst)
	d := decoder{device: device, now: now.UnixMilli(), maxTS: now.Add(maxAhead).UnixMilli()}
	var err error
	switch v := doc.(type) {
	case map[string]any:
		dst, err = d.object(v, dst)
	case []any:
		if len(v) == 0 {
			return dst, reject(ReasonEmpty, "empty batch")
		}
		if len(v) > MaxBatch {
			return dst, reject(ReasonTooManyKeys, "batch of %d objects, over %d", len(v), MaxBatch)
		}
		for i, el := range v {
			obj, ok := el.(map[string]any)
			if !ok {
				err = reject(ReasonNested, "batch element %d is not an object", i)
				break
			}
			if dst, err = d.object(obj, dst); err != nil {
				break
			}
		}
	default:
		err = reject(ReasonMalformed, "payload is not a JSON object or array")
	}
	if err != nil {
		return dst[:start], err
	}
	return dst, nil
}

type decoder struct {
	device string
	now    int64
	maxTS  int64
}

func (d decoder) object(obj map[string]any, dst []tsdb.Point) ([]tsdb.Point, error) {
	if len(obj) > MaxKeys {
		return dst, reject(ReasonTooManyKeys, "%d keys, over %d", len(obj), MaxKeys)
	}
	ts := d.now
	if raw, ok := obj["ts"]; ok {
		var err error
		if ts, err = d.timestamp(raw); err != nil {
			return dst, err
		}
	}
	values, flat := obj, true
	if raw, ok := obj["values"]; ok {
		flat = false
		inner, isObj := raw.(map[string]any)
		if !isObj {
			return dst, reject(ReasonMalformed, `"values" must be an object`)
		}
		for k := range obj {
			if k != "ts" && k != "values" {
				return dst, reject(ReasonMalformed, `unexpected key %q beside "values"`, k)
			}
		}
		if len(inner) > MaxKeys {
			return dst, reject(ReasonTooManyKeys, "%d values, over %d", len(inner), MaxKeys)
		}
		values = inner
	}
	n := 0
	for metric, raw := range values {
		if metric == "ts" {
			if flat {
				continue // the timestamp, read above
			}
			return dst, reject(ReasonBadMetric, `"ts" is reserved for the timestamp`)
		}
		if !metricPattern.MatchString(metric) {
			return dst, reject(ReasonBadMetric, "metric name %q", truncate(metric))
		}
		p := tsdb.Point{Device: d.device, Metric: metric, TS: ts}
		switch v := raw.(type) {
		case json.Number:
			f, err := strconv.ParseFloat(string(v), 64)
			if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return dst, reject(ReasonNaNInf, "%s is not a finite number", metric)
			}
			p.Value = f
		case bool:
			if v {
				p.Value = 1
			}
		case string:
			if len(v) > MaxTextBytes {
				return dst, reject(ReasonBadValue, "%s: text of %d bytes, over %d", metric, len(v), MaxTextBytes)
			}
			p.Text, p.IsText = v, true
		case map[string]any, []any:
			return dst, reject(ReasonNested, "%s holds a nested object or array", metric)
		default: // null
			return dst, reject(ReasonBadValue, "%s is null", metric)
		}
		dst = append(dst, p)
		n++
	}
	if n == 0 {
		return dst, reject(ReasonEmpty, "no values")
	}
	return dst, nil
}

func (d decoder) timestamp(raw any) (int64, error) {
	var ts int64
	switch v := raw.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || f < math.MinInt64 || f > math.MaxInt64 {
			return 0, reject(ReasonBadTS, "ts %s is not Unix milliseconds", v)
		}
		ts = int64(f)
	case string:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return 0, reject(ReasonBadTS, "ts %q is not RFC 3339", truncate(v))
		}
		ts = t.UnixMilli()
	default:
		return 0, reject(ReasonBadTS, "ts must be Unix milliseconds or an RFC 3339 string")
	}
	if ts < minTS || ts > d.maxTS {
		return 0, reject(ReasonBadTS, "ts %s is before 2000 or more than a day ahead", time.UnixMilli(ts).UTC().Format(time.RFC3339))
	}
	return ts, nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
