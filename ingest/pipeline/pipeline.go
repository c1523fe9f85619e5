// Package pipeline carries telemetry from MQTT messages into the
// time-series store: it checks the topic and the device, decodes the
// payload, batches points, writes them, and puts whatever the store cannot
// take into the spool, replaying it in order once the store answers again.
//
// A bad message is counted by reason and logged at most once per device per
// minute; it never holds up the good ones around it.
package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lookout-cc/lookout/devices"
	"github.com/lookout-cc/lookout/ingest/spool"
	"github.com/lookout-cc/lookout/ingest/telemetry"
	"github.com/lookout-cc/lookout/ingest/tsdb"
)

// DeviceLookup finds the device a message claims to come from.
type DeviceLookup interface {
	Lookup(id devices.ID) (devices.Device, bool)
}

// Params configure the pipeline.
type Params struct {
	Store   tsdb.Store
	Spool   *spool.Spool
	Devices DeviceLookup
	Vessels VesselRegistry
	Log     *slog.Logger
	Metrics prometheus.Registerer
	// BatchSize is the most points one store write carries.
	BatchSize int
	// FlushInterval is the longest a point waits before it is written.
	FlushInterval time.Duration
	// QueueMessages bounds the decoded messages waiting for the writer;
	// when it is full the MQTT handler waits, which slows the broker down
	// instead of growing memory.
	QueueMessages int
	// WriteTimeout bounds one store write.
	WriteTimeout time.Duration
	Now          func() time.Time
	// Observe, when set, sees every accepted message's points as they
	// arrive, before they are batched for the store: the alert rules
	// evaluate the live stream. It may block to slow ingestion down.
	Observe func([]tsdb.Point)
}

// Extra reasons of lookout_ingest_rejected_total, beside the decoder's.
const (
	ReasonUnknownDevice telemetry.Reason = "unknown_device"
	// ReasonDeviceDisabled: the device is disabled. The embedded broker
	// refuses it already; an external broker may still let it in.
	ReasonDeviceDisabled telemetry.Reason = "device_disabled"
	ReasonWrongTopic     telemetry.Reason = "wrong_topic"
)

// Pipeline is the telemetry path.
//
// Lifecycle: New, Start, then Close, which writes (or spools) every point
// already accepted before it returns.
type Pipeline struct {
	p     Params
	queue chan []tsdb.Point

	rejected  *prometheus.CounterVec
	accepted  prometheus.Counter
	written   prometheus.Counter
	spooled   prometheus.Counter
	dropped   *prometheus.CounterVec
	writeTime prometheus.Histogram
	spoolPts  prometheus.GaugeFunc

	ais aisDecoders

	logMu   sync.Mutex
	lastLog map[string]time.Time

	closeOnce sync.Once
	done      chan struct{}
	closing   chan struct{}
}

// New builds a pipeline.
func New(p Params) (*Pipeline, error) {
	if p.BatchSize <= 0 {
		p.BatchSize = 5000
	}
	if p.FlushInterval <= 0 {
		p.FlushInterval = 100 * time.Millisecond
	}
	if p.QueueMessages <= 0 {
		p.QueueMessages = 10_000
	}
	if p.WriteTimeout <= 0 {
		p.WriteTimeout = 10 * time.Second
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	pl := &Pipeline{
		p:       p,
		queue:   make(chan []tsdb.Point, p.QueueMessages),
		lastLog: map[string]time.Time{},
		done:    make(chan struct{}),
		closing: make(chan struct{}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_ingest_rejected_total", Help: "Telemetry messages refused, by reason.",
		}, []string{"reason"}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lookout_ingest_messages_total", Help: "Telemetry messages accepted.",
		}),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lookout_ingest_points_written_total", Help: "Points written to the time-series store (replays included).",
		}),
		spooled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lookout_ingest_points_spooled_total", Help: "Points put into the on-disk spool because the store did not take them.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_ingest_points_dropped_total", Help: "Points lost: refused by the store for good, or pushed out of a full spool.",
		}, []string{"cause"}),
		writeTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "lookout_ingest_write_seconds", Help: "Time of one batch write to the store.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}),
	}
	pl.spoolPts = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "lookout_ingest_spool_points", Help: "Points waiting in the on-disk spool.",
	}, func() float64 { return float64(p.Spool.Points()) })
	for _, c := range []prometheus.Collector{pl.rejected, pl.accepted, pl.written, pl.spooled, pl.dropped, pl.writeTime, pl.spoolPts} {
		if err := p.Metrics.Register(c); err != nil {
			return nil, err
		}
	}
	for _, r := range []telemetry.Reason{telemetry.ReasonMalformed, telemetry.ReasonTooLarge, telemetry.ReasonTooManyKeys,
		telemetry.ReasonNested, telemetry.ReasonNaNInf, telemetry.ReasonBadValue, telemetry.ReasonBadMetric,
		telemetry.ReasonBadTS, telemetry.ReasonEmpty, ReasonUnknownDevice, ReasonDeviceDisabled, ReasonWrongTopic, ReasonBadNMEA} {
		pl.rejected.WithLabelValues(string(r)) // every reason shows, at 0
	}
	return pl, nil
}

// Start starts the writer.
func (pl *Pipeline) Start() { go pl.run() }

// Close stops taking messages, writes or spools what was accepted, and
// waits for the writer to finish.
func (pl *Pipeline) Close() {
	pl.closeOnce.Do(func() { close(pl.closing) })
	<-pl.done
}

// TelemetryFilter is the MQTT subscription of the pipeline.
const TelemetryFilter = devices.TopicRoot + "+/telemetry"

// HandleTelemetry is the MQTT handler for lookout/v1/devices/+/telemetry.
func (pl *Pipeline) HandleTelemetry(topic string, payload []byte) {
	rest, ok := strings.CutPrefix(topic, devices.TopicRoot)
	id, kind, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || kind != "telemetry" || id == "" {
		pl.reject("", ReasonWrongTopic, "topic "+topic)
		return
	}
	if d, known := pl.p.Devices.Lookup(devices.ID(id)); !known {
		pl.reject(id, ReasonUnknownDevice, "no such device")
		return
	} else if d.Disabled {
		pl.reject(id, ReasonDeviceDisabled, "the device is disabled")
		return
	}
	points, err := telemetry.Decode(id, payload, pl.p.Now(), nil)
	if err != nil {
		var rej *telemetry.Rejection
		if errors.As(err, &rej) {
			pl.reject(id, rej.Reason, rej.Detail)
		}
		return
	}
	pl.enqueue(points)
}

// enqueue hands a message's points to the observer and to the writer.
func (pl *Pipeline) enqueue(points []tsdb.Point) {
	if pl.p.Observe != nil {
		pl.p.Observe(points)
	}
	select {
	case pl.queue <- points:
		pl.accepted.Inc()
	case <-pl.closing:
	}
}

// logEvery is how often a device's refusals are logged, at most.
const logEvery = time.Minute

func (pl *Pipeline) reject(device string, reason telemetry.Reason, detail string) {
	pl.rejected.WithLabelValues(string(reason)).Inc()
	now := pl.p.Now()
	pl.logMu.Lock()
	last, seen := pl.lastLog[device]
	if seen && now.Sub(last) < logEvery {
		pl.logMu.Unlock()
		return
	}
	if len(pl.lastLog) > 10_000 { // a flood of made-up device ids
		clear(pl.lastLog)
	}
	pl.lastLog[device] = now
	pl.logMu.Unlock()
	pl.p.Log.Warn("telemetry refused", "device", device, "reason", reason, "detail", detail, "note", "further refusals of this device are counted, not logged, for a minute")
}

func (pl *Pipeline) run() {
	defer close(pl.done)
	batch := make([]tsdb.Point, 0, pl.p.BatchSize)
	tick := time.NewTicker(pl.p.FlushInterval)
	defer tick.Stop()
	var retryAt time.Time
	backoff := time.Second
	drain := func() {
		if pl.p.Spool.Points() == 0 || pl.p.Now().Before(retryAt) {
			return
		}
		deadline := pl.p.Now().Add(time.Second) // keep taking new messages meanwhile
		for pl.p.Now().Before(deadline) {
			more, err := pl.p.Spool.ReplayOldest(func(ps []tsdb.Point) error {
				err := pl.write(ps)
				var perm *tsdb.PermanentError
				if errors.As(err, &perm) {
					pl.dropPermanent(ps, err)
					return nil
				}
				return err
			})
			if err != nil {
				retryAt = pl.p.Now().Add(backoff)
				backoff = min(2*backoff, 30*time.Second)
				return
			}
			backoff = time.Second
			if !more {
				pl.p.Log.Info("telemetry spool replayed; the store has everything")
				return
			}
		}
	}
	flush := func() {
		if len(batch) == 0 {
			return
		}
		// While older points wait in the spool, newer ones queue behind
		// them, so the store receives everything in order.
		if pl.p.Spool.Points() > 0 {
			pl.spool(batch)
		} else if err := pl.write(batch); err != nil {
			var perm *tsdb.PermanentError
			if errors.As(err, &perm) {
				pl.dropPermanent(batch, err)
			} else {
				pl.p.Log.Warn("time-series store write failed; spooling to disk", "points", len(batch), "err", err)
				pl.spool(batch)
				retryAt = pl.p.Now().Add(backoff)
			}
		}
		batch = batch[:0]
	}
	for {
		select {
		case ps := <-pl.queue:
			batch = append(batch, ps...)
			if len(batch) >= pl.p.BatchSize {
				flush()
			}
		case <-tick.C:
			flush()
			drain()
		case <-pl.closing:
			for {
				select {
				case ps := <-pl.queue:
					batch = append(batch, ps...)
					continue
				default:
				}
				break
			}
			flush()
			return
		}
	}
}

func (pl *Pipeline) write(ps []tsdb.Point) error {
	ctx, cancel := context.WithTimeout(context.Background(), pl.p.WriteTimeout)
	defer cancel()
	start := time.Now()
	err := pl.p.Store.Write(ctx, ps)
	pl.writeTime.Observe(time.Since(start).Seconds())
	if err == nil {
		pl.written.Add(float64(len(ps)))
	}
	return err
}

func (pl *Pipeline) spool(ps []tsdb.Point) {
	dropped, err := pl.p.Spool.Append(ps)
	if err != nil {
		pl.dropped.WithLabelValues("spool_failed").Add(float64(len(ps)))
		pl.p.Log.Error("telemetry spool failed; points lost", "points", len(ps), "err", err)
		return
	}
	pl.spooled.Add(float64(len(ps)))
	if dropped > 0 {
		pl.dropped.WithLabelValues("spool_full").Add(float64(dropped))
		pl.p.Log.Error("telemetry spool full; oldest points dropped", "points", dropped)
	}
}

func (pl *Pipeline) dropPermanent(ps []tsdb.Point, err error) {
	pl.dropped.WithLabelValues("store_refused").Add(float64(len(ps)))
	pl.p.Log.Error("time-series store refused points for good; dropped", "points", len(ps), "err", err)
}
