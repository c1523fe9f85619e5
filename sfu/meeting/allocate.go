package meeting

import (
	"slices"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/lookout-cc/lookout/sfu/bwe"
	"github.com/lookout-cc/lookout/sfu/signal"
)

// Bandwidth allocation: which layer of each video a subscriber receives.
//
// The send-side estimator (sfu/bwe: GCC over TWCC feedback) says when
// the link is congested: packets lost (more than 10 %), or delay growing (overuse)
// with its estimate under what is sent. It cannot say how much more the
// link would carry: GCC never estimates above 1.5 times what it sees sent,
// and after a loss its estimate climbs back slowly. So the allocator goes
// down at once when the link is congested, to what arrived (loss) or what
// the estimate allows (delay), pausing video when not even the lowest
// layer fits and always keeping audio; and it goes up by trying: one step
// (a paused video back on its low layer, or a layer up) after the link
// was quiet for a while, a longer while after each try that congested
// it. This is how the field's SFUs probe when they do not send padding.

// Allocation timing.
const (
	upWaitMin = 2 * time.Second
	upWaitMax = 32 * time.Second
	// congestedRatio: an estimate under this share of the rate sent means
	// the link is congested.
	congestedRatio = 0.85
	// settle is how long after a change the estimate is left to follow
	// before it is judged.
	settle = time.Second
	// downSettle is how long after a step down the link is left to
	// drain (its queue, and the retransmissions of what it lost) before
	// another step down.
	downSettle = 3 * time.Second
	// startGrace is how long a subscriber's link is not judged congested
	// after its first allocation, and after its path moved (an ICE
	// restart): the first feedback counts as lost the packets sent
	// before the browser could decrypt them (Chromium's first reports
	// said 64% lost, which paused the video of a healthy link for
	// seconds), and a restart's those sent while the path moved.
	startGrace = 2 * time.Second
)

// nominalRate is a layer's bitrate before it was measured: what browsers
// send at rids l, m and h.
var nominalRate = [numLayers]int64{150_000, 500_000, 1_200_000}

const audioRate = 50_000

// allocState is a subscriber's allocator memory.
type allocState struct {
	// started is the first allocation with a video to allocate.
	started    time.Time
	lastChange time.Time
	lastUp     time.Time
	lastDown   time.Time
	upWait     time.Duration
	// probing: a step up was taken and is not yet judged.
	probing bool
}

// lossCongested is the loss above which a link is congested.
const lossCongested = 0.10

// linkEstimator is a subscriber link's bandwidth estimator: every packet
// sent to the subscriber is numbered by Sent, the subscriber's
// transport-wide feedback is read by Feedback (as pion parsed it) or
// FeedbackRaw (as it came), and the allocator reads State.
type linkEstimator interface {
	Sent(size int, now int64) uint16
	Feedback(fb *rtcp.TransportLayerCC, now int64)
	FeedbackRaw(b []byte, now int64) error
	State() bwe.State
}

// linkConfig bounds a subscriber link's estimate: it starts at what a
// medium layer and audio need, and never asks for more than a meeting's
// full layers of a screen share and a few cameras.
var linkConfig = bwe.Config{Initial: 1_000_000, Min: 30_000, Max: 8_000_000}

// linkState reads the estimator: its estimate, the smoothed loss and
// whether delay is growing.
func linkState(est linkEstimator) (rate int64, loss float64, overuse bool) {
	s := est.State()
	return s.Estimate, s.Loss, s.Overuse
}

// allocItem is one video a subscriber receives, for plan.
type allocItem struct {
	priority int // higher first: spotlight, screen share, then cameras
	want     int // the highest layer wanted (layerOff: none)
	current  int // the layer now targeted (layerOff: paused)
	rates    [numLayers]int64
	// has says which layers the publisher sends now.
	has [numLayers]bool
	// seen says which of them a stats tick saw running (upTrack's
	// seenRunning): a step up goes only to one of those.
	seen [numLayers]bool
}

// plan chooses the layers for items; est is the estimate, audio what the
// audio takes; congested says whether to fit the estimate now, probe
// whether to try one step up.
func plan(items []allocItem, est, audio int64, congested, probe bool) []int {
	out := make([]int, len(items))
	order := make([]int, len(items))
	for i := range items {
		order[i] = i
		out[i] = items[i].current
	}
	slices.SortStableFunc(order, func(a, b int) int { return items[b].priority - items[a].priority })
	// Never above what is wanted or sent.
	for i, it := range items {
		out[i] = clampLayer(it, out[i])
	}
	if congested {
		budget := est - audio
		for _, i := range order {
			it := items[i]
			chosen := layerOff
			for l := clampLayer(it, it.want); l >= layerLow; l-- {
				if it.has[l] && it.rates[l] <= budget {
					chosen = l
					break
				}
			}
			// Down only, and one layer at a time: the loss a step up
			// caused overstates how little the link carries.
			if chosen > out[i] {
				chosen = out[i]
			}
			if below := prevLayer(it, out[i]); chosen < below {
				chosen = below
			}
			out[i] = chosen
			if chosen != layerOff {
				budget -= it.rates[chosen]
			}
		}
		return out
	}
	if probe {
		for _, i := range order {
			it := items[i]
			if next := nextLayer(it, out[i]); next != out[i] {
				out[i] = next
				return out
			}
		}
	}
	return out
}

// clampLayer lowers l to the highest layer at or under both l and want
// that the publisher sends; when it sends none at or under l, the lowest
// one it sends up to want (a layer it never sent is no reason to pause).
func clampLayer(it allocItem, l int) int {
	if l == layerOff {
		return layerOff
	}
	l = min(l, it.want)
	for n := l; n >= layerLow; n-- {
		if it.has[n] {
			return n
		}
	}
	for n := l + 1; n <= it.want && n < numLayers; n++ {
		if it.has[n] {
			return n
		}
	}
	return layerOff
}

// prevLayer is one step down from l: the next lower layer sent, or off.
func prevLayer(it allocItem, l int) int {
	for n := l - 1; n >= layerLow; n-- {
		if it.has[n] {
			return n
		}
	}
	return layerOff
}

// nextLayer is one step up from l towards want: from a paused video to
// the lowest layer sent, from a layer to the next one sent that a tick saw
// running.
func nextLayer(it allocItem, l int) int {
	for n := l + 1; n <= it.want && n < numLayers; n++ {
		if it.has[n] && (l == layerOff || it.seen[n]) {
			return n
		}
	}
	return l
}

// allocate runs the allocator for subscriber p.
func (r *Room) allocate(p *participant) {
	link := p.bwe
	if link == nil {
		return
	}
	now := time.Now()
	r.mu.Lock()
	spotlight := r.spotlight
	r.mu.Unlock()

	p.allocMu.Lock()
	defer p.allocMu.Unlock()
	st := &p.alloc
	if st.upWait == 0 {
		st.upWait = upWaitMin
	}
	var videos []*downTrack
	var items []allocItem
	var sending, audio int64
	for _, d := range p.downTracks() {
		u := d.up
		if u.muted.Load() {
			continue
		}
		if u.kind == webrtc.RTPCodecTypeAudio {
			audio += max(u.layerRate[layerHigh].Load(), audioRate/2)
			continue
		}
		requested := int(d.requested.Load())
		it := allocItem{want: requested, priority: 1}
		switch {
		case u.pub.identity == spotlight:
			it.priority, it.want = 3, layerHigh
		case u.source == signal.SourceScreen:
			it.priority, it.want = 2, layerHigh
		}
		for l := range numLayers {
			rate := u.layerRate[l].Load()
			it.has[l] = u.usableLayer(l)
			it.seen[l] = u.seenRunning(l)
			if rate == 0 {
				rate = nominalRate[l]
			}
			it.rates[l] = rate
		}
		if !u.simulcast {
			// One stream, kept as the high layer: sent whole or paused.
			it.has = [numLayers]bool{false, false, true}
			it.want = layerHigh
			if requested == layerOff {
				it.want = layerOff
			}
		}
		cur, target := d.layers()
		it.current = target
		if cur != target && target != layerOff {
			// Still waiting for the target's keyframe: ask again (a
			// request inside another's throttle interval was not sent).
			u.requestKeyframe(target)
		}
		if it.current != layerOff {
			sending += it.rates[it.current]
		}
		videos = append(videos, d)
		items = append(items, it)
	}
	if len(items) == 0 {
		return
	}
	if st.started.IsZero() || p.linkMoved.Swap(false) {
		// A new link, or one whose path moved: what the packets sent
		// while ICE found the new path lost (8 of 40 in an ICE restart
		// in Chromium, which paused the video for 2.5 s) is not
		// congestion.
		st.started = now
	}
	est, loss, overuse := linkState(link)
	judged := now.Sub(st.lastChange) >= settle
	sent := sending + audio
	congested := judged && now.Sub(st.started) >= startGrace && now.Sub(st.lastDown) >= downSettle &&
		(loss > lossCongested || overuse && est < int64(float64(sent)*congestedRatio))
	budget := est
	if loss > lossCongested {
		// What arrived, less a margin: the estimate itself lags.
		budget = int64(float64(sent) * (1 - loss) * 0.9)
	}
	switch {
	case congested && st.probing:
		// The step up congested the link: wait longer before the next.
		st.upWait = min(st.upWait*2, upWaitMax)
		st.probing = false
	case st.probing && now.Sub(st.lastUp) > 2*settle:
		// The step held: the next may come soon.
		st.upWait = upWaitMin
		st.probing = false
	}
	probe := judged && !congested && now.Sub(st.lastChange) >= st.upWait
	layers := plan(items, budget+audio, audio, congested, probe)
	changed := false
	for i, d := range videos {
		before := items[i].current
		after := layers[i]
		if before == after {
			continue
		}
		changed = true
		if after > before {
			st.lastUp, st.probing = now, true
		} else {
			st.lastDown = now
		}
		d.setTarget(after)
		reason := "requested"
		if congested || after > before && after < items[i].want {
			reason = "bandwidth"
		}
		paused := after == layerOff && items[i].want != layerOff
		wasPaused := before == layerOff
		if paused != wasPaused || after != layerOff {
			m := &signal.ServerMessage{Type: signal.TypeLayerChanged, Identity: d.up.pub.identity, Paused: signal.Ptr(paused), Reason: reason}
			info := d.up.info()
			m.Track = &info
			if after != layerOff {
				m.Layer = layerNames[after]
			}
			p.send(m)
		}
	}
	if changed {
		st.lastChange = now
		r.sfu.log.Debug("meeting layers", "room", r.id, "identity", p.identity, "estimate", est, "loss", loss, "overuse", overuse, "sending", sent,
			"congested", congested, "probe", probe, "before", currents(items), "after", layers)
	}
	r.sfu.metrics.estimate(r.id, p.identity, est)
}

func currents(items []allocItem) []int {
	out := make([]int, len(items))
	for i, it := range items {
		out[i] = it.current
	}
	return out
}
