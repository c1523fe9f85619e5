package alerts

import "time"

// verdictKind is what one evaluation concludes for a (rule, device) pair.
type verdictKind int

const (
	verdictNone    verdictKind = iota
	verdictRaise               // the condition holds: raise, or repeat or escalate the alert
	verdictObserve             // the alert stays (between its bound and its clear bound): note the value
	verdictClear               // the condition is over: the alert clears
)

type verdict struct {
	kind     verdictKind
	severity Severity
	value    float64
	bound    float64
	position *[2]float64 // a vessel's [lat, lon], for geofences
}

// sample is one reading kept for a rate rule's window.
type sample struct {
	ts int64 // Unix ms
	v  float64
}

// maxWindowSamples bounds a rate window: readings closer together than
// window/maxWindowSamples replace the newest kept one.
const maxWindowSamples = 256

// pair is the evaluation state of one rule for one device. It lives on the
// engine's goroutine only.
type pair struct {
	firing bool

	// threshold
	thr      threshold
	thrReady bool // thr resolved for the device's site
	thrErr   bool // the site lacks a level the rule needs: the rule does not apply
	// pending: since when (Unix ms, the engine's clock) the condition
	// holds, waiting for for_s.
	pending   int64
	isPending bool
	lastSev   Severity
	last      float64
	// lastTS is the newest reading's (or position's) time, the device's:
	// an older one arriving late is not the current value.
	lastTS  int64
	hasLast bool

	// rate
	window []sample

	// no_data
	lastSeen int64

	// geofence
	lat, lon       float64
	latTS, lonTS   int64
	hasLat, hasLon bool
	inside         int8 // -1 unknown, 0 outside, 1 inside
	candidate      int8
	candidateSince int64
}

func newPair() *pair { return &pair{inside: -1, candidate: -1} }

// evalThreshold takes one reading of time ts (the device's); now is the
// engine's clock, which times for_s, so that a device's clock or a late
// upload cannot shorten it.
func (r *Rule) evalThreshold(p *pair, v float64, ts, now int64) verdict {
	if p.hasLast && ts < p.lastTS {
		return verdict{} // older than what is known: not the current value
	}
	p.last, p.lastTS, p.hasLast = v, ts, true
	sev := p.thr.severityAt(v)
	p.lastSev = sev
	switch {
	case sev != "" && !p.firing && r.ForS > 0:
		if !p.isPending {
			p.pending, p.isPending = now, true
		}
		if now-p.pending < int64(r.ForS)*1000 {
			return verdict{}
		}
		return p.raise(sev, v, p.thr.boundOf(sev))
	case sev != "":
		return p.raise(sev, v, p.thr.boundOf(sev))
	case p.firing && p.thr.cleared(v):
		p.firing, p.isPending = false, false
		return verdict{kind: verdictClear, value: v, bound: p.thr.clear}
	case p.firing:
		return verdict{kind: verdictObserve, value: v}
	default:
		p.isPending = false
		return verdict{}
	}
}

// tickThreshold raises a pending alert whose for_s has passed while the
// last reading still holds, without waiting for the next reading.
func (r *Rule) tickThreshold(p *pair, now int64) verdict {
	if p.firing || !p.isPending || p.lastSev == "" || now-p.pending < int64(r.ForS)*1000 {
		return verdict{}
	}
	return p.raise(p.lastSev, p.last, p.thr.boundOf(p.lastSev))
}

func (p *pair) raise(sev Severity, v, bound float64) verdict {
	p.firing, p.isPending = true, false
	return verdict{kind: verdictRaise, severity: sev, value: v, bound: bound}
}

// evalRate takes one reading: the rate is the change per hour from the
// oldest reading in the window, once the readings span half of it (so
// that two close readings are not extrapolated to an hour).
func (r *Rule) evalRate(p *pair, v float64, ts int64) verdict {
	window := int64(r.WindowS) * 1000
	if n := len(p.window); n > 0 && ts <= p.window[n-1].ts {
		return verdict{} // out of order or repeated: the window keeps time order
	}
	if n := len(p.window); n >= 2 && ts-p.window[n-2].ts < window/maxWindowSamples {
		p.window[n-1] = sample{ts, v}
	} else {
		p.window = append(p.window, sample{ts, v})
	}
	drop := 0
	for drop < len(p.window)-1 && p.window[drop].ts < ts-window {
		drop++
	}
	if drop > 0 {
		p.window = append(p.window[:0], p.window[drop:]...)
	}
	first := p.window[0]
	span := ts - first.ts
	if span < window/2 {
		if p.firing {
			return verdict{kind: verdictObserve, value: v}
		}
		return verdict{}
	}
	rate := (v - first.v) / float64(span) * float64(time.Hour/time.Millisecond)
	limit := r.RisePerHour
	if limit == nil {
		limit = r.FallPerHour
		rate = -rate
	}
	clear := *limit
	if r.ClearPerHour != nil {
		clear = *r.ClearPerHour
	}
	switch {
	case rate > *limit:
		return p.raise(r.Severity, rate, *limit)
	case p.firing && rate < clear:
		p.firing = false
		return verdict{kind: verdictClear, value: rate, bound: clear}
	case p.firing:
		return verdict{kind: verdictObserve, value: rate}
	}
	return verdict{}
}

// seenNoData notes a sign of life: a no_data alert clears.
func (r *Rule) seenNoData(p *pair, now int64) verdict {
	p.lastSeen = now
	if p.firing {
		p.firing = false
		return verdict{kind: verdictClear}
	}
	return verdict{}
}

// tickNoData raises once the device has been silent for after_s; the value
// is the seconds of silence.
func (r *Rule) tickNoData(p *pair, now int64) verdict {
	silent := now - p.lastSeen
	if silent <= int64(r.AfterS)*1000 {
		return verdict{}
	}
	if p.firing {
		return verdict{kind: verdictObserve, value: float64(silent / 1000)}
	}
	return p.raise(r.Severity, float64(silent/1000), float64(r.AfterS))
}

// evalGeofence takes a lat or lon reading; a position is the two of one
// time (as AIS and JSON positions give them), and one older than the last
// is ignored. A vessel's side of the fence changes once it has stayed on
// the new side for debounce_s of the engine's clock (now); its first
// position only sets the side (or clears an alert from before a restart
// that is over).
func (r *Rule) evalGeofence(p *pair, metric string, v float64, ts, now int64) verdict {
	if metric == GeofenceMetrics[0] {
		p.lat, p.latTS, p.hasLat = v, ts, true
	} else {
		p.lon, p.lonTS, p.hasLon = v, ts, true
	}
	if !p.hasLat || !p.hasLon || p.latTS != p.lonTS {
		return verdict{} // not a position yet: a position is a lat and a lon of one time
	}
	if p.hasLast && ts < p.lastTS {
		return verdict{} // a late position, older than the one known
	}
	p.lastTS, p.hasLast = ts, true
	in := int8(0)
	if inPolygon(r.Polygon, p.lat, p.lon) {
		in = 1
	}
	if p.inside == -1 {
		p.inside, p.candidate = in, in
		if p.firing && !r.fenceAlarm(in) {
			p.firing = false
			return verdict{kind: verdictClear, position: &[2]float64{p.lat, p.lon}}
		}
		return verdict{}
	}
	if in == p.inside {
		p.candidate = in
		if p.firing {
			return verdict{kind: verdictObserve, position: &[2]float64{p.lat, p.lon}}
		}
		return verdict{}
	}
	if p.candidate != in {
		p.candidate, p.candidateSince = in, now
	}
	return r.settleFence(p, now)
}

// tickGeofence settles a side change whose debounce has passed.
func (r *Rule) tickGeofence(p *pair, now int64) verdict {
	if p.inside == -1 || p.candidate == p.inside {
		return verdict{}
	}
	return r.settleFence(p, now)
}

func (r *Rule) settleFence(p *pair, now int64) verdict {
	if now-p.candidateSince < int64(*r.DebounceS)*1000 {
		return verdict{}
	}
	p.inside = p.candidate
	pos := &[2]float64{p.lat, p.lon}
	if r.fenceAlarm(p.inside) {
		v := p.raise(r.Severity, 0, 0)
		v.position = pos
		return v
	}
	if p.firing {
		p.firing = false
		return verdict{kind: verdictClear, position: pos}
	}
	return verdict{}
}

// fenceAlarm says whether being on this side is the alarm: inside for an
// enter rule, outside for a leave rule.
func (r *Rule) fenceAlarm(in int8) bool { return (in == 1) == (r.On == "enter") }
