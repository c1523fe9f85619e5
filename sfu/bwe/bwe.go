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
// sequence number, the feedback is read from its wire form in place
// (FeedbackRaw: pion's parse of it allocated a slice per chunk and per
// delta, the most the SFU allocated), and nothing is allocated per packet
// or per report.
//
// An Estimator is safe for concurrent use: Sent runs on the forwarding
// goroutines, Feedback on the connection's RTCP reader, State on the
// allocator. Times are nanoseconds of a monotonic clock the caller
// chooses, so that tests can drive a simulated link.
package bwe

import (
	"encoding/binary"
	"errors"
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

// Feedback reads a report received at now, as pion parsed it (a
// connection whose RTCP pion reads): its wire form is read again, as
// FeedbackRaw reads it.
func (e *Estimator) Feedback(fb *rtcp.TransportLayerCC, now int64) {
	b, err := fb.Marshal()
	if err != nil || len(b) < 4 || len(b)%4 != 0 {
		return
	}
	// pion marshals the header it was given, which a report made rather
	// than parsed leaves empty.
	b[0] = 0x80 | b[0]&0x20 | rtcp.FormatTCC
	b[1] = byte(rtcp.TypeTransportSpecificFeedback)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)/4-1))
	_ = e.FeedbackRaw(b, now)
}

// FeedbackRaw reads a report received at now in its wire form: one RTCP
// packet, its header first (padding and what follows its length are
// ignored). A malformed report is refused whole and changes nothing.
func (e *Estimator) FeedbackRaw(b []byte, now int64) error {
	r, err := parseReport(b)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	reported, lost := e.decode(&r)
	if reported == 0 {
		return nil
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
	return nil
}

// feedbackView is a transport-wide feedback packet's fields, its chunks
// and deltas left in the packet's bytes.
type feedbackView struct {
	base, count uint16
	refTime     uint32 // 24 bits, 64 ms each
	chunks      []byte // two bytes a chunk, covering count packets
	deltas      []byte // then the arrivals' deltas, 1 or 2 bytes each
}

// Errors of a malformed report.
var (
	ErrNotFeedback = errors.New("bwe: not a transport-wide feedback packet")
	ErrShortReport = errors.New("bwe: transport-wide feedback shorter than its fields")
)

// parseReport checks a feedback packet's layout: header, fields, chunks
// enough for its packet count, and the deltas its symbols call for.
func parseReport(b []byte) (feedbackView, error) {
	// RTCP header (version 2, format 15, type 205), sender and media
	// SSRCs, base sequence number, count, reference time, feedback count.
	const fixed = 20
	if len(b) < 4 || b[0]>>6 != 2 || b[0]&0x1f != 15 || b[1] != 205 {
		return feedbackView{}, ErrNotFeedback
	}
	size := (int(binary.BigEndian.Uint16(b[2:4])) + 1) * 4
	if size < fixed || size > len(b) {
		return feedbackView{}, ErrShortReport
	}
	b = b[:size]
	r := feedbackView{base: binary.BigEndian.Uint16(b[12:]), count: binary.BigEndian.Uint16(b[14:]),
		refTime: uint32(b[16])<<16 | uint32(b[17])<<8 | uint32(b[18])}
	// The chunks: as many as cover count packets.
	covered, deltaBytes, i := 0, 0, fixed
	for covered < int(r.count) {
		if i+2 > len(b) {
			return feedbackView{}, ErrShortReport
		}
		c := binary.BigEndian.Uint16(b[i:])
		i += 2
		forEachSymbol(c, int(r.count)-covered, func(s uint16) {
			covered++
			deltaBytes += deltaSize(s)
		})
	}
	r.chunks = b[fixed:i]
	if i+deltaBytes > len(b) {
		return feedbackView{}, ErrShortReport
	}
	r.deltas = b[i : i+deltaBytes]
	return r, nil
}

// forEachSymbol calls f with each packet status symbol of chunk c, at
// most limit of them.
func forEachSymbol(c uint16, limit int, f func(symbol uint16)) {
	switch {
	case c&0x8000 == 0: // run length: a symbol, then how many
		s, n := c>>13&3, int(c&0x1fff)
		for range min(n, limit) {
			f(s)
		}
	case c&0x4000 == 0: // status vector of fourteen one-bit symbols
		for k := range min(14, limit) {
			f(c >> (13 - k) & 1)
		}
	default: // of seven two-bit symbols
		for k := range min(7, limit) {
			f(c >> (12 - 2*k) & 3)
		}
	}
}

// deltaSize is the bytes of arrival delta a symbol calls for: 1 for a
// small delta, 2 for a large one, none for a packet not received.
func deltaSize(symbol uint16) int {
	switch symbol {
	case rtcp.TypeTCCPacketReceivedSmallDelta:
		return 1
	case rtcp.TypeTCCPacketReceivedLargeDelta:
		return 2
	}
	return 0
}

// decode marks the packets r reports and gathers those that arrived into
// e.arrivals; it returns how many packets of this connection the report
// covers and how many of them it says were lost.
func (e *Estimator) decode(r *feedbackView) (reported, lost int) {
	e.arrivals = e.arrivals[:0]
	// The reference time counts 64 ms in 24 bits; unwrap it against the
	// last report's.
	ref := int64(r.refTime&0xffffff) * 64000
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
	seq := r.base
	deltas := r.deltas
	remaining := int(r.count)
	status := func(symbol uint16) {
		remaining--
		p := &e.sent[seq%historySize]
		known := p.state != slotEmpty && p.seq == seq
		seq++
		switch symbol {
		case rtcp.TypeTCCPacketReceivedSmallDelta:
			arrivedAt += int64(deltas[0]) * 250
			deltas = deltas[1:]
		case rtcp.TypeTCCPacketReceivedLargeDelta:
			arrivedAt += int64(int16(binary.BigEndian.Uint16(deltas))) * 250
			deltas = deltas[2:]
		default: // not received (or the reserved symbol, taken as such)
			if known && p.state == slotSent {
				reported++
				lost++
			}
			return
		}
		if !known || p.state == slotReported {
			return
		}
		reported++
		p.state = slotReported
		e.arrivals = append(e.arrivals, arrival{sent: p.at, arrived: arrivedAt * 1000, size: int(p.size)})
	}
	for c := r.chunks; len(c) >= 2 && remaining > 0; c = c[2:] {
		forEachSymbol(binary.BigEndian.Uint16(c), remaining, status)
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
