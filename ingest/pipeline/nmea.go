package pipeline

import (
	"context"
	"strings"
	"sync"

	"github.com/lookout-cc/lookout/devices"
	"github.com/lookout-cc/lookout/ingest/ais"
	"github.com/lookout-cc/lookout/ingest/telemetry"
	"github.com/lookout-cc/lookout/ingest/tsdb"
)

// VesselRegistry makes and updates the devices of vessels an AIS receiver
// reports.
type VesselRegistry interface {
	EnsureVessel(ctx context.Context, receiver devices.Device, v devices.VesselInfo) (devices.Device, error)
}

// NMEAFilter is the MQTT subscription for AIS receivers.
const NMEAFilter = devices.TopicRoot + "+/nmea"

// ReasonBadNMEA counts sentences that are not valid AIS.
const ReasonBadNMEA telemetry.Reason = "bad_nmea"

// maxNMEALines bounds the sentences of one message.
const maxNMEALines = 500

// aisDecoders keeps one decoder per receiver, since multi-part messages are
// reassembled per receiver.
type aisDecoders struct {
	mu sync.Mutex
	m  map[devices.ID]*ais.Decoder
}

func (a *aisDecoders) get(id devices.ID) *ais.Decoder {
	if a.m == nil {
		a.m = map[devices.ID]*ais.Decoder{}
	}
	d, ok := a.m[id]
	if !ok {
		d = ais.NewDecoder()
		a.m[id] = d
	}
	return d
}

// HandleNMEA is the MQTT handler for lookout/v1/devices/+/nmea: each line is
// one sentence; each decoded vessel becomes (or updates) the device
// vessel-{MMSI} in the receiver's site, with points lat, lon, sog, cog and
// heading. A bad line is counted and skipped; the lines around it count.
func (pl *Pipeline) HandleNMEA(topic string, payload []byte) {
	rest, _ := strings.CutPrefix(topic, devices.TopicRoot)
	id, kind, ok := strings.Cut(rest, "/")
	if !ok || kind != "nmea" || id == "" {
		pl.reject("", ReasonWrongTopic, "topic "+topic)
		return
	}
	receiver, known := pl.p.Devices.Lookup(devices.ID(id))
	if !known {
		pl.reject(id, ReasonUnknownDevice, "no such device")
		return
	}
	if receiver.Disabled {
		pl.reject(id, ReasonDeviceDisabled, "the device is disabled")
		return
	}
	if len(payload) > telemetry.MaxPayloadBytes {
		pl.reject(id, telemetry.ReasonTooLarge, "nmea payload over 64 KiB")
		return
	}
	lines := strings.FieldsFunc(string(payload), func(r rune) bool { return r == '\n' || r == '\r' })
	if len(lines) > maxNMEALines {
		pl.reject(id, telemetry.ReasonTooManyKeys, "more than 500 sentences in one message")
		return
	}
	now := pl.p.Now().UnixMilli()
	var points []tsdb.Point
	pl.ais.mu.Lock()
	dec := pl.ais.get(receiver.ID)
	var reports []*ais.Report
	for _, line := range lines {
		r, err := dec.Feed(line)
		if err != nil {
			pl.reject(id, ReasonBadNMEA, err.Error())
			continue
		}
		if r != nil {
			reports = append(reports, r)
		}
	}
	pl.ais.mu.Unlock()
	for _, r := range reports {
		v, err := pl.p.Vessels.EnsureVessel(context.Background(), receiver, devices.VesselInfo{MMSI: r.MMSI, Name: r.Name, ShipType: r.ShipType, Lat: r.Lat, Lon: r.Lon})
		if err != nil {
			pl.p.Log.Error("vessel device", "mmsi", r.MMSI, "err", err)
			continue
		}
		if !r.HasPosition {
			continue
		}
		dev := string(v.ID)
		for _, m := range []struct {
			name string
			val  float64
			ok   bool
		}{{"lat", r.Lat, true}, {"lon", r.Lon, true}, {"sog", r.SOG, r.SOG >= 0}, {"cog", r.COG, r.COG >= 0}, {"heading", r.Heading, r.Heading >= 0}} {
			if m.ok {
				points = append(points, tsdb.Point{Device: dev, Metric: m.name, TS: now, Value: m.val})
			}
		}
	}
	if len(points) == 0 {
		return
	}
	pl.enqueue(points)
}
