// Package bwe estimates the bandwidth of the link to a meeting subscriber
// from transport-wide congestion control feedback (TWCC,
// draft-holmer-rmcat-transport-wide-cc-extensions): the SFU numbers every
// packet it sends the subscriber, the subscriber's browser reports when
// each arrived, and the estimator reads loss and the growth of queueing
// delay from the reports, as Google Congestion Control does
// (draft-ietf-rmcat-gcc-02, and libwebrtc's trendline detector, which
// Chrome uses today).
//
// pion's interceptor has an implementation (pkg/gcc); this one exists
// because that one, run for every packet to 200 subscribers, cost a sixth
// of the SFU's CPU: it keeps its record of sent packets in a map and a
// list with two allocations a packet, and its interceptors parse every
// RTCP packet a second time. Here the record is a ring indexed by the
// sequence number, the feedback is the packet the meeting already parsed,
// and nothing is allocated per packet or per report.
//
// An Estimator is safe for concurrent use: Sent runs on the forwarding
// goroutines, Feedback on the connection's RTCP reader, State on the
// allocator. Times are nanoseconds of a monotonic clock the caller
// chooses, so that tests can drive a simulated link.
package bwe

import (
	"math"
	"sync"

	"github.com/pion/rtcp"
)

// Config bounds the estimate, in bit/s.
type Config struct {
	Initial, Min, Max int64
}

// State is what the estimator concludes.
type State struct {
	// Estimate is the rate the link is estimated to carry, bit/s.
	Estimate int64
	// Loss is the share of packets lost, smoothed over about 200 ms of
	// reports.
	Loss float64
	// Overuse says the queueing delay is growing: more is sent than the
	// link carries.
	Overuse bool
	// Received is the rate that arrived, bit/s, over the last half
	// second of reports (0 before there is one).
	Received int64
}

// historySize is how many sent packets are remembered: 1.3 s at the
// 800 packets/s of the largest estimate, 7 s at a camera's high layer;
// reports come every 100 ms or so.
const historySize = 1024

type sentPacket struct {
	at    int64 // when sent, ns
	size  uint16
	seq   uint16
	state uint8
}

const (
	slotEmpty = iota
	slotSent
	slotReported // its arrival was read from a report
)

// Estimator is one subscriber link's estimate.
type Estimator struct {
	cfg Config

	mu   sync.Mutex
	next uint16
	sent [historySize]sentPacket

	// Feedback decoding.
	refTime  int64 // µs, the last report's reference time unwrapped
	haveRef  bool
	arrivals []arrival // scratch: a report's packets that arrived

	groups   interArrival
	trend    trendline
	detector overuseDetector
	rate     aimd
	received receivedRate

	loss         float64
	lastLossAt   int64
	lossRate     int64 // the loss-based estimate
	lastLossUp   int64
	lastLossDown int64
}

// arrival is a reported packet that arrived: when it was sent and
// arrived (ns) and its size.
type arrival struct {
	sent, arrived int64
	size          int
}

// New makes an estimator starting at cfg.Initial.
func New(cfg Config) *Estimator {
	e := &Estimator{cfg: cfg, arrivals: make([]arrival, 0, 256)}
	e.trend.threshold = initialThreshold
	e.detector.init()
	e.rate = aimd{target: cfg.Initial, state: stateIncrease}
	e.lossRate = cfg.Initial
	return e
}

// Sent gives a packet of size bytes, sent at now, the next transport-wide
// sequence number, which the caller puts in its header extension.
func (e *Estimator) Sent(size int, now int64) uint16 {
	e.mu.Lock()
	seq := e.next
	e.next++
	e.sent[seq%historySize] = sentPacket{at: now, size: uint16(min(size, math.MaxUint16)), seq: seq, state: slotSent}
	e.mu.Unlock()
	return seq
}

// Feedback reads a report received at now.
func (e *Estimator) Feedback(fb *rtcp.TransportLayerCC, now int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	reported, lost := e.decode(fb)
	if reported == 0 {
		return
	}
	e.updateLoss(float64(lost)/float64(reported), now)
	// In the order they arrived, as the delay detector reads them.
	a := e.arrivals
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j].arrived < a[j-1].arrived; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
	for _, p := range a {
		e.received.add(p.arrived, p.size)
		if sendDelta, arrivalDelta, at, ok := e.groups.add(p); ok {
			e.trend.update(float64(arrivalDelta)/1e6, float64(sendDelta)/1e6, float64(at)/1e6)
			e.detector.detect(&e.trend, float64(sendDelta)/1e6, float64(at)/1e6)
		}
	}
	e.rate.update(e.detector.usage, e.received.rate, now, e.cfg)
	e.lossRate = min(e.lossRate, e.rate.target)
}

// decode marks the packets fb reports and gathers those that arrived
// into e.arrivals; it returns how many packets of this connection the
// report covers and how many of them it says were lost.
func (e *Estimator) decode(fb *rtcp.TransportLayerCC) (reported, lost int) {
	e.arrivals = e.arrivals[:0]
	// The reference time counts 64 ms in 24 bits; unwrap it against the
	// last report's.
	ref := int64(fb.ReferenceTime&0xffffff) * 64000
	if e.haveRef {
		const span = int64(1<<24) * 64000
		for ref-e.refTime > span/2 {
			ref -= span
		}
		for e.refTime-ref > span/2 {
			ref += span
		}
	}
	e.refTime, e.haveRef = ref, true
	arrivedAt := ref // µs
	seq := fb.BaseSequenceNumber
	deltas := fb.RecvDeltas
	remaining := int(fb.PacketStatusCount)
	status := func(symbol uint16) {
		if remaining == 0 {
			return
		}
		remaining--
		p := &e.sent[seq%historySize]
		known := p.state != slotEmpty && p.seq == seq
		seq++
		switch symbol {
		case rtcp.TypeTCCPacketNotReceived:
			if known && p.state == slotSent {
				reported++
				lost++
			}
			return
		case rtcp.TypeTCCPacketReceivedSmallDelta, rtcp.TypeTCCPacketReceivedLargeDelta:
			if len(deltas) == 0 {
				return // a malformed report: fewer deltas than packets
			}
			arrivedAt += deltas[0].Delta
			deltas = deltas[1:]
		}
		if !known || p.state == slotReported {
			return
		}
		reported++
		p.state = slotReported
		e.arrivals = append(e.arrivals, arrival{sent: p.at, arrived: arrivedAt * 1000, size: int(p.size)})
	}
	for _, c := range fb.PacketChunks {
		switch c := c.(type) {
		case *rtcp.RunLengthChunk:
			for range c.RunLength {
				status(c.PacketStatusSymbol)
			}
		case *rtcp.StatusVectorChunk:
			// One-bit symbols are 0 (not received) and 1 (received,
			// a small delta), as two-bit ones are.
			for _, s := range c.SymbolList {
				status(s)
			}
		}
	}
	return reported, lost
}

// Loss-based control, as pion's and libwebrtc's: under 2% loss the
// estimate may grow 5% every 200 ms; over 10% it falls by half the loss.
const (
	lossLow      = 0.02
	lossHigh     = 0.10
	lossInterval = 200e6 // ns
)

func (e *Estimator) updateLoss(ratio float64, now int64) {
	if e.lastLossAt == 0 {
		e.loss = ratio
	} else {
		// Smoothed over about 200 ms of reports.
		e.loss = ratio + math.Exp(-float64(now-e.lastLossAt)/200e6)*(e.loss-ratio)
	}
	e.lastLossAt = now
	up, down := max(e.loss, ratio), min(e.loss, ratio)
	switch {
	case up < lossLow && now-e.lastLossUp > lossInterval:
		e.lastLossUp = now
		e.lossRate = int64(float64(e.lossRate) * 1.05)
	case down > lossHigh && now-e.lastLossDown > lossInterval:
		e.lastLossDown = now
		e.lossRate = int64(float64(e.lossRate) * (1 - 0.5*down))
	}
	e.lossRate = clamp(e.lossRate, e.cfg.Min, e.cfg.Max)
}

// State is the estimate now.
func (e *Estimator) State() State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return State{
		Estimate: clamp(min(e.rate.target, e.lossRate), e.cfg.Min, e.cfg.Max),
		Loss:     e.loss,
		Overuse:  e.detector.usage == usageOver,
		Received: e.received.rate,
	}
}

func clamp(v, lo, hi int64) int64 { return max(lo, min(v, hi)) }
