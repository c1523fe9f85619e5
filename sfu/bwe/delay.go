package bwe

import "math"

// The delay-based part follows libwebrtc's (modules/congestion_controller/
// goog_cc): packets are grouped into the bursts they were sent in; the
// change of delay from one group to the next is accumulated, smoothed, and
// its trend over the last 20 groups fitted by least squares; a trend above
// an adaptive threshold for more than 10 ms is overuse, and the AIMD rate
// controller backs off to 85% of what arrived. Times here are ms (float)
// unless named ns.

// groupSpan is a burst's length: packets sent within 5 ms of the group's
// first are one group.
const groupSpan = 5e6 // ns

// packetGroup is a burst of packets: the first send time, and the last
// packet's send and arrival time.
type packetGroup struct {
	firstSent, lastSent, lastArrived int64
}

// interArrival groups packets and yields the deltas between consecutive
// complete groups.
type interArrival struct {
	current, previous packetGroup
	haveCurrent       bool
	havePrevious      bool
}

// add takes the next packet (in arrival order); when it starts a new
// group, the deltas between the two groups before it are returned.
func (g *interArrival) add(p arrival) (sendDelta, arrivalDelta, at int64, ok bool) {
	if !g.haveCurrent {
		g.current = packetGroup{firstSent: p.sent, lastSent: p.sent, lastArrived: p.arrived}
		g.haveCurrent = true
		return 0, 0, 0, false
	}
	if p.sent < g.current.firstSent {
		return 0, 0, 0, false // reordered from a group already closed
	}
	if g.sameGroup(p) {
		g.current.lastSent = max(g.current.lastSent, p.sent)
		g.current.lastArrived = max(g.current.lastArrived, p.arrived)
		return 0, 0, 0, false
	}
	if g.havePrevious {
		sendDelta = g.current.lastSent - g.previous.lastSent
		arrivalDelta = g.current.lastArrived - g.previous.lastArrived
		at = g.current.lastArrived
		ok = arrivalDelta >= 0 // a clock jump at the receiver: skip
	}
	g.previous, g.havePrevious = g.current, true
	g.current = packetGroup{firstSent: p.sent, lastSent: p.sent, lastArrived: p.arrived}
	return sendDelta, arrivalDelta, at, ok
}

// sameGroup: sent within the group's span, or arriving in a burst with it
// (queued behind it, arriving less than 5 ms after and sooner than sent).
func (g *interArrival) sameGroup(p arrival) bool {
	if p.sent-g.current.firstSent <= groupSpan {
		return true
	}
	arrivalDelta := p.arrived - g.current.lastArrived
	propagationDelta := arrivalDelta - (p.sent - g.current.lastSent)
	return propagationDelta < 0 && arrivalDelta <= groupSpan
}

// Trendline parameters (libwebrtc's defaults).
const (
	trendWindow      = 20
	trendSmoothing   = 0.9
	trendGain        = 4.0
	maxDeltas        = 60
	initialThreshold = 12.5
	thresholdUp      = 0.0087
	thresholdDown    = 0.039
	overuseTime      = 10.0 // ms
)

// trendline fits the slope of the smoothed accumulated delay.
type trendline struct {
	deltas       int
	firstArrival float64
	accumulated  float64
	smoothed     float64
	window       [trendWindow][2]float64 // (arrival since first, smoothed delay)
	filled, head int
	slope        float64
	threshold    float64
	lastUpdate   float64
	haveUpdate   bool
}

func (t *trendline) update(arrivalDelta, sendDelta, at float64) {
	t.deltas = min(t.deltas+1, 1000)
	if t.deltas == 1 {
		t.firstArrival = at
	}
	t.accumulated += arrivalDelta - sendDelta
	t.smoothed = trendSmoothing*t.smoothed + (1-trendSmoothing)*t.accumulated
	t.window[t.head] = [2]float64{at - t.firstArrival, t.smoothed}
	t.head = (t.head + 1) % trendWindow
	t.filled = min(t.filled+1, trendWindow)
	if t.filled == trendWindow {
		if s, ok := t.fit(); ok {
			t.slope = s
		}
	}
}

// fit is the least-squares slope of the window.
func (t *trendline) fit() (float64, bool) {
	var sx, sy float64
	for _, p := range t.window {
		sx += p[0]
		sy += p[1]
	}
	mx, my := sx/trendWindow, sy/trendWindow
	var num, den float64
	for _, p := range t.window {
		num += (p[0] - mx) * (p[1] - my)
		den += (p[0] - mx) * (p[0] - mx)
	}
	if den == 0 {
		return 0, false
	}
	return num / den, true
}

type usage int

const (
	usageNormal usage = iota
	usageOver
	usageUnder
)

// overuseDetector compares the trend with the adaptive threshold.
type overuseDetector struct {
	usage     usage
	overTime  float64 // ms over the threshold; -1 when not over
	overCount int
	prevTrend float64
}

func (d *overuseDetector) init() { d.overTime = -1 }

func (d *overuseDetector) detect(t *trendline, sendDelta, at float64) {
	if t.deltas < 2 {
		d.usage = usageNormal
		return
	}
	trend := t.slope
	modified := float64(min(t.deltas, maxDeltas)) * trend * trendGain
	switch {
	case modified > t.threshold:
		if d.overTime == -1 {
			d.overTime = sendDelta / 2
		} else {
			d.overTime += sendDelta
		}
		d.overCount++
		if d.overTime > overuseTime && d.overCount > 1 && trend >= d.prevTrend {
			d.overTime, d.overCount = 0, 0
			d.usage = usageOver
		}
	case modified < -t.threshold:
		d.overTime, d.overCount = -1, 0
		d.usage = usageUnder
	default:
		d.overTime, d.overCount = -1, 0
		d.usage = usageNormal
	}
	d.prevTrend = trend
	t.adapt(modified, at)
}

// adapt moves the threshold toward the trend: fast down, slowly up, so
// that a competing TCP flow does not starve the media; a spike far above
// it is ignored.
func (t *trendline) adapt(modified, at float64) {
	if !t.haveUpdate {
		t.lastUpdate, t.haveUpdate = at, true
	}
	abs := math.Abs(modified)
	if abs > t.threshold+15 {
		t.lastUpdate = at
		return
	}
	k := thresholdUp
	if abs < t.threshold {
		k = thresholdDown
	}
	dt := min(at-t.lastUpdate, 100)
	t.threshold = max(6, min(t.threshold+k*(abs-t.threshold)*dt, 600))
	t.lastUpdate = at
}

// The AIMD rate controller's states.
const (
	stateHold = iota
	stateIncrease
	stateDecrease
)

// aimd raises the target while the delay is steady and cuts it to 85% of
// what arrived when the delay grows.
type aimd struct {
	target     int64
	state      int
	lastUpdate int64 // ns
	// lastDecrease is what arrived at the last cut (0 before one): near
	// it, the target grows by about a packet per response time instead of
	// 8% a second.
	lastDecrease float64
}

const (
	decreaseFactor = 0.85
	responseTime   = 200e6 // ns: 100 ms and a typical county link's round trip
)

func (a *aimd) update(u usage, received, now int64, cfg Config) {
	switch u {
	case usageOver:
		a.state = stateDecrease
	case usageUnder:
		a.state = stateHold
	default:
		if a.state != stateIncrease {
			a.state = stateIncrease
			a.lastUpdate = now
		}
	}
	elapsed := float64(now - a.lastUpdate)
	if a.lastUpdate == 0 {
		elapsed = 0
	}
	switch a.state {
	case stateDecrease:
		if received > 0 {
			a.target = int64(decreaseFactor * float64(received))
			a.lastDecrease = float64(received)
		} else {
			a.target = int64(decreaseFactor * float64(a.target))
		}
		a.state = stateHold
	case stateIncrease:
		var next int64
		if a.lastDecrease > 0 && math.Abs(float64(received)-a.lastDecrease) < 0.15*a.lastDecrease {
			// Near the rate that congested the link: additive, about
			// one packet a response time.
			packet := min(float64(a.target)/30, 1200*8)
			next = a.target + int64(max(1000, packet*min(elapsed/responseTime, 1)))
		} else {
			next = int64(float64(a.target) * math.Pow(1.08, min(elapsed/1e9, 1)))
		}
		if received > 0 {
			// Never far above what is seen to arrive, but never lowered
			// by that rule.
			next = max(a.target, min(next, int64(1.5*float64(received))+10_000))
		}
		a.target = next
	}
	a.target = clamp(a.target, cfg.Min, cfg.Max)
	a.lastUpdate = now
}

// receivedRate is what arrived over about the last half second.
type receivedRate struct {
	start int64 // ns, the window's first arrival
	bytes int
	rate  int64 // bit/s, of the last full window
}

const rateWindow = 500e6 // ns

func (r *receivedRate) add(at int64, size int) {
	if r.start == 0 || at < r.start {
		r.start, r.bytes = at, 0
	}
	if span := at - r.start; span >= rateWindow {
		r.rate = int64(float64(r.bytes*8) * 1e9 / float64(span))
		r.start, r.bytes = at, 0
	}
	r.bytes += size
}
