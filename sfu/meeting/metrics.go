package meeting

import (
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the SFU's Prometheus series: per room, and per participant
// of a room while they are in it (their series go when they leave).
// Nothing is counted per packet here: the stats tick samples counters the
// media paths keep.
type metrics struct {
	rooms        prometheus.Gauge
	participants *prometheus.GaugeVec   // room
	bitrate      *prometheus.GaugeVec   // room, participant, direction
	lost         *prometheus.GaugeVec   // room, participant, direction: fraction lost, 0-1
	rtt          *prometheus.GaugeVec   // room, participant
	estimateBits *prometheus.GaugeVec   // room, participant
	layers       *prometheus.GaugeVec   // room, participant, layer: the videos received at each layer
	nacks        *prometheus.CounterVec // room, participant
	nacksSent    *prometheus.CounterVec // room, participant
	plis         *prometheus.CounterVec // room, participant, direction
	rtcpDropped  *prometheus.CounterVec // room, participant

	mu   sync.Mutex
	last map[string]partCounters // room/participant -> counters at the last tick
}

type partCounters struct{ nacks, nacksSent, plisIn, plisSent, rtcpBad uint64 }

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		rooms: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lookout_meeting_rooms", Help: "Meeting rooms in progress."}),
		participants: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lookout_meeting_participants",
			Help: "Participants in a meeting room."}, []string{"room"}),
		bitrate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lookout_meeting_bitrate_bits_per_second",
			Help: "Media bitrate of a participant: in (what they publish) and out (what the SFU sends them)."}, []string{"room", "participant", "direction"}),
		lost: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lookout_meeting_loss_ratio",
			Help: "Fraction of packets lost, as the receiver reports: in (publisher to SFU) and out (SFU to participant)."}, []string{"room", "participant", "direction"}),
		rtt: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lookout_meeting_rtt_seconds",
			Help: "Round-trip time between the SFU and a participant."}, []string{"room", "participant"}),
		estimateBits: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lookout_meeting_bandwidth_estimate_bits_per_second",
			Help: "Send-side bandwidth estimate towards a participant."}, []string{"room", "participant"}),
		layers: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lookout_meeting_video_layers",
			Help: "Videos a participant receives, by simulcast layer (paused: stopped for bandwidth)."}, []string{"room", "participant", "layer"}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_meeting_nacks_total",
			Help: "NACKs a participant sent about media it receives."}, []string{"room", "participant"}),
		nacksSent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_meeting_nacks_sent_total",
			Help: "NACKs the SFU sent a publisher about its media lost on the way to the SFU."}, []string{"room", "participant"}),
		plis: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_meeting_plis_total",
			Help: "Keyframe requests (PLI, FIR): in (a participant asked the SFU), out (the SFU asked a publisher)."}, []string{"room", "participant", "direction"}),
		rtcpDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lookout_meeting_rtcp_dropped_total",
			Help: "RTCP packets a participant sent that did not parse, dropped."}, []string{"room", "participant"}),
		last: map[string]partCounters{},
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.rooms, m.participants, m.bitrate, m.lost, m.rtt, m.estimateBits, m.layers, m.nacks, m.nacksSent, m.plis, m.rtcpDropped} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) joined(room string) { m.participants.WithLabelValues(room) }

func (m *metrics) roomEnded(room string) {
	m.participants.DeleteLabelValues(room)
}

func (m *metrics) estimate(room, participant string, bits int64) {
	m.estimateBits.WithLabelValues(room, participant).Set(float64(bits))
}

// forget drops a participant's series.
func (m *metrics) forget(room, participant string) {
	labels := prometheus.Labels{"room": room, "participant": participant}
	for _, v := range []*prometheus.GaugeVec{m.bitrate, m.lost, m.rtt, m.estimateBits, m.layers} {
		v.DeletePartialMatch(labels)
	}
	m.nacks.DeletePartialMatch(labels)
	m.nacksSent.DeletePartialMatch(labels)
	m.plis.DeletePartialMatch(labels)
	m.rtcpDropped.DeletePartialMatch(labels)
	m.mu.Lock()
	delete(m.last, room+"/"+participant)
	m.mu.Unlock()
}

// tickStats measures the tracks' bitrates and samples each participant's
// counters and connection statistics into the metrics.
func (r *Room) tickStats(dt time.Duration) {
	if dt <= 0 {
		return
	}
	m := r.sfu.metrics
	parts := r.snapshot()
	m.participants.WithLabelValues(r.id).Set(float64(len(parts)))
	for _, p := range parts {
		p.mu.Lock()
		published := make([]*upTrack, 0, len(p.published))
		for u := range p.published {
			published = append(published, u)
		}
		pub := p.pub
		p.mu.Unlock()
		var in int64
		for _, u := range published {
			in += u.measure(dt)
			if rs := u.rec.Load(); rs != nil {
				rs.follow(u, nanotime(), r.sfu.recordUpAfter)
			}
		}
		var outBytes uint64
		var atLayer [numLayers + 1]int
		for _, d := range p.downTracks() {
			outBytes += d.bytes.Load()
			if d.up.kind == webrtc.RTPCodecTypeVideo {
				cur, target := d.layers()
				switch {
				case target == layerOff:
					atLayer[numLayers]++
				case cur >= 0:
					atLayer[cur]++
				}
			}
		}
		key := r.id + "/" + p.identity
		m.mu.Lock()
		prev := m.last[key]
		now := partCounters{nacks: p.nacksIn.Load(), nacksSent: p.nacksSent.Load(), plisIn: p.plisIn.Load(), plisSent: p.plisSent.Load(), rtcpBad: p.rtcpBad.Load()}
		m.last[key] = now
		m.mu.Unlock()
		p.allocMu.Lock()
		out := float64(outBytes-p.lastOutBytes) * 8 / dt.Seconds()
		p.lastOutBytes = outBytes
		p.allocMu.Unlock()
		m.bitrate.WithLabelValues(r.id, p.identity, "in").Set(float64(in))
		m.bitrate.WithLabelValues(r.id, p.identity, "out").Set(out)
		for l, n := range atLayer[:numLayers] {
			m.layers.WithLabelValues(r.id, p.identity, layerNames[l]).Set(float64(n))
		}
		m.layers.WithLabelValues(r.id, p.identity, "paused").Set(float64(atLayer[numLayers]))
		m.nacks.WithLabelValues(r.id, p.identity).Add(float64(now.nacks - prev.nacks))
		m.nacksSent.WithLabelValues(r.id, p.identity).Add(float64(now.nacksSent - prev.nacksSent))
		m.plis.WithLabelValues(r.id, p.identity, "in").Add(float64(now.plisIn - prev.plisIn))
		m.plis.WithLabelValues(r.id, p.identity, "out").Add(float64(now.plisSent - prev.plisSent))
		m.rtcpDropped.WithLabelValues(r.id, p.identity).Add(float64(now.rtcpBad - prev.rtcpBad))

		p.negMu.Lock()
		sub := p.sub
		p.negMu.Unlock()
		if sub != nil {
			lossOut, rtt := p.remoteInbound()
			m.lost.WithLabelValues(r.id, p.identity, "out").Set(lossOut)
			if rtt > 0 {
				m.rtt.WithLabelValues(r.id, p.identity).Set(rtt)
				p.rttMicros.Store(int64(rtt * 1e6))
			}
		}
		if pub != nil {
			m.lost.WithLabelValues(r.id, p.identity, "in").Set(inboundLoss(published, p))
		}
	}
}

// inboundLoss is the share of the packets of p's published tracks lost
// on the way to the SFU since the last tick, from the readers' own counts.
//
// Not from pion's GetStats: pion's own close of a connection (on the
// peer's DTLS close_notify, in a goroutine of its own) clears the stats
// getter that GetStats reads without a lock, which the race detector
// caught in a browser test; and the whole report, candidates and
// certificates included, was made for two numbers.
func inboundLoss(published []*upTrack, p *participant) float64 {
	var expected, received int64
	for _, u := range published {
		for l := range u.seqs {
			expected += u.seqs[l].expected.Load()
			received += u.seqs[l].received.Load()
		}
	}
	p.allocMu.Lock()
	defer p.allocMu.Unlock()
	de, dr := expected-p.lastInExpected, received-p.lastInReceived
	p.lastInExpected, p.lastInReceived = expected, received
	if de <= 0 || dr >= de {
		return 0 // none lost, or a track ended since
	}
	return float64(de-dr) / float64(de)
}
