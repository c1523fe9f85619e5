package meeting

import (
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/lookout-cc/lookout/sfu/signal"
)

// keyframeInterval throttles the keyframe requests sent to a publisher per
// layer: subscribers joining or switching together cost one keyframe. Once
// the keyframe asked for has come, a first picture's request (someone who
// came after it) goes after keyframeSpacing.
const (
	keyframeInterval = 500 * time.Millisecond
	keyframeSpacing  = 100 * time.Millisecond
)

// upTrack is a track a participant publishes: one TrackRemote per
// simulcast layer, each read by its own goroutine that forwards every
// packet to the subscribers' downTracks.
type upTrack struct {
	pub       *participant
	id        string // the track id subscribers see
	clientID  string // the publisher's MediaStreamTrack id
	streamID  string
	kind      webrtc.RTPCodecType
	source    string
	codec     webrtc.RTPCodecCapability
	simulcast bool
	// levelExt is the id of the audio-level header extension on the
	// publisher's connection, 0 when not negotiated.
	levelExt uint8

	createdAt time.Time

	mu     sync.Mutex
	layers [numLayers]*webrtc.TrackRemote
	ended  bool
	// lastPacket is when each layer's last packet came (nanotime); a
	// layer silent for layerSilence is taken as not sent (a browser
	// drops its top layers when its CPU or uplink is short).
	lastPacket [numLayers]atomic.Int64

	// downs is replaced, never changed, so the read loops take no lock.
	downs atomic.Pointer[[]*downTrack]
	// taps take a layer out of the meeting (tap.go); nil when none, so a
	// packet costs one atomic load for them. Replaced like downs.
	taps atomic.Pointer[[]*tap]
	// rec is the source's recording (record.go), nil when the room is
	// not recorded.
	rec   atomic.Pointer[recSource]
	muted atomic.Bool

	lastKeyReq [numLayers]atomic.Int64
	// keyDeferred is set while a request that came inside the throttle
	// waits for its end (requestKeyframe); lastKeyframe is when each
	// layer's last keyframe came (nanotime).
	keyDeferred  [numLayers]atomic.Bool
	lastKeyframe [numLayers]atomic.Int64
	layerBytes   [numLayers]atomic.Uint64
	// layerRate is each layer's bitrate (bit/s), measured by the room's
	// stats tick.
	layerRate [numLayers]atomic.Int64
	lastBytes [numLayers]uint64
	// layerFrames counts each video layer's frames (a packet with a new
	// timestamp); layerFPS is their rate in hundredths of a frame a
	// second, measured by the stats tick.
	layerFrames [numLayers]atomic.Uint64
	layerFPS    [numLayers]atomic.Int64
	// trickling marks the layers judged at the last tick to be sent at a
	// trickle beside a smooth lower layer (judgeTrickling); tickFPS is
	// their frame rates over that tick alone, the tick's own.
	trickling  [numLayers]atomic.Bool
	tickFPS    [numLayers]int64
	lastFrames [numLayers]uint64
	// seqs counts each layer's packets against their sequence numbers:
	// the loss on the publisher's link.
	seqs [numLayers]seqCount

	// Audio levels since the room's speaker tick took them: the sum of
	// the per-packet activity (0-1000) and the packet count.
	levelSum atomic.Uint64
	levelN   atomic.Uint64

	// fan forwards to many subscribers on several cores (nil: in the
	// reader).
	fan *fanout
	// history keeps each video layer's last packets for retransmission
	// to any subscriber (history.go).
	history [numLayers]packetHistory

	readers sync.WaitGroup
}

func newUpTrack(pub *participant, remote *webrtc.TrackRemote, source string, levelExt uint8) *upTrack {
	u := &upTrack{
		pub:       pub,
		id:        pub.identity + "-" + source + "-" + shortID(),
		streamID:  pub.identity,
		kind:      remote.Kind(),
		source:    source,
		codec:     remote.Codec().RTPCodecCapability,
		simulcast: remote.RID() != "",
		levelExt:  levelExt,
		createdAt: time.Now(),
		fan:       pub.room.sfu.fan,
	}
	u.downs.Store(&[]*downTrack{})
	return u
}

// info is the track as subscribers are told of it.
func (u *upTrack) info() signal.TrackInfo {
	return signal.TrackInfo{ID: u.id, StreamID: u.streamID, Kind: u.kind.String(), Source: u.source,
		Codec: strings.TrimPrefix(strings.TrimPrefix(u.codec.MimeType, "audio/"), "video/"), Simulcast: u.simulcast, Muted: u.muted.Load()}
}

// addLayer starts reading one layer; false when the track has ended or
// already has it.
func (u *upTrack) addLayer(layer int, remote *webrtc.TrackRemote) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.ended || u.layers[layer] != nil {
		return false
	}
	u.layers[layer] = remote
	u.readers.Add(1)
	go u.read(layer, remote)
	return true
}

// layerSilence: a layer without a packet this long is not being sent.
const layerSilence = time.Second

// hasLayer reports whether the publisher sends layer: it has the layer
// and a packet of it came lately (or the track is new).
//
// A new simulcast track's layers arrive one by one (pion announces each
// rid at its first packet), so in its first newTrackGrace every layer is
// taken as sent: a subscriber that comes in then starts on the low layer,
// not on whichever arrived first.
func (u *upTrack) hasLayer(layer int) bool {
	u.mu.Lock()
	present := u.layers[layer] != nil
	u.mu.Unlock()
	young := time.Since(u.createdAt) < newTrackGrace
	if !present {
		return u.simulcast && young
	}
	last := u.lastPacket[layer].Load()
	if last == 0 {
		return young
	}
	return nanotime()-last < int64(layerSilence)
}

// newTrackGrace is how long a new track's layers are taken as sent before
// their packets say.
const newTrackGrace = 3 * time.Second

// lowestLayer is the lowest layer the publisher sends, low when none yet.
func (u *upTrack) lowestLayer() int {
	for l := range numLayers {
		if u.hasLayer(l) {
			return l
		}
	}
	return layerLow
}

func (u *upTrack) isEnded() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.ended
}

// read forwards one layer until the publisher stops sending it. It makes
// no allocation per packet.
func (u *upTrack) read(layer int, remote *webrtc.TrackRemote) {
	defer u.readers.Done()
	defer u.pub.room.trackEnded(u, layer)
	buf := make([]byte, 1500)
	var p rtp.Packet
	var forwarded sync.WaitGroup
	audio := u.kind == webrtc.RTPCodecTypeAudio
	isKey := isH264Keyframe
	// The layer's lost packets asked for again (nack.go), with the read
	// deadline set for its next ask (nanotime; 0 none).
	var nacks nackLog
	nackOn := !audio && slices.ContainsFunc(remote.Codec().RTCPFeedback, func(f webrtc.RTCPFeedback) bool { return f.Type == webrtc.TypeRTCPFBNACK && f.Parameter == "" })
	var ssrc uint32
	var deadline int64
	var lastTS uint32
	seen := false
	switch {
	case strings.EqualFold(u.codec.MimeType, webrtc.MimeTypeVP8):
		isKey = isVP8Keyframe
	case strings.EqualFold(u.codec.MimeType, webrtc.MimeTypeH265):
		isKey = isH265Keyframe
	}
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return
			}
			// The NACK log's deadline: asks due between packets. It
			// stays set, passed, until armed again or cleared: a read
			// under a passed deadline fails at once, even with packets
			// waiting.
			now := nanotime()
			retry := u.pub.nackRetry()
			u.sendNack(nacks.due(now, ssrc, retry))
			deadline = u.armNackDeadline(remote, &nacks, deadline, retry, now)
			continue
		}
		if p.Unmarshal(buf[:n]) != nil {
			continue
		}
		u.layerBytes[layer].Add(uint64(n))
		u.seqs[layer].add(p.SequenceNumber)
		now := nanotime()
		if !audio {
			if !seen || int32(p.Timestamp-lastTS) > 0 {
				// A new frame (a retransmission of an older one is
				// not): one atomic add a frame, not a packet.
				lastTS, seen = p.Timestamp, true
				u.layerFrames[layer].Add(1)
			}
		}
		if nackOn {
			ssrc = p.SSRC
			if nacks.started && len(nacks.missing) == 0 && deadline == 0 && int16(p.SequenceNumber-nacks.highest) == 1 {
				nacks.highest = p.SequenceNumber // the common case, in order
			} else {
				retry := u.pub.nackRetry()
				u.sendNack(nacks.received(p.SequenceNumber, now, ssrc, retry))
				deadline = u.armNackDeadline(remote, &nacks, deadline, retry, now)
			}
		}
		u.lastPacket[layer].Store(now)
		if audio && u.levelExt != 0 {
			if e := p.GetExtension(u.levelExt); len(e) > 0 {
				// RFC 6464: 0 is the loudest, 127 silence (-dBov).
				u.levelSum.Add(uint64(127-e[0]&0x7f) * 1000 / 127)
				u.levelN.Add(1)
			}
		}
		if u.muted.Load() {
			continue
		}
		key := audio || isKey(p.Payload)
		if key && !audio {
			u.lastKeyframe[layer].Store(now)
		}
		u.deliver(layer, &p, key, now, &forwarded)
	}
}

// sendNack sends a NACK to the publisher, if not nil and the track is
// not muted (what it would mend goes to nobody).
func (u *upTrack) sendNack(nack *rtcp.TransportLayerNack) {
	if nack == nil || u.muted.Load() {
		return
	}
	u.pub.nacksSent.Add(1)
	_ = u.pub.writePublisherRTCP([]rtcp.Packet{nack})
}

// armNackDeadline sets the track's read deadline to the NACK log's next
// ask, or clears it when nothing is missing; armed is the deadline set
// (0 none; passed or not), and the one set is returned. A deadline not
// yet passed is set again only when the next ask comes sooner, so a lossy
// link does not reset it for every packet. One passed is always set
// again or cleared: pion's buffer fails a read under a passed deadline
// before it looks for packets, so a deadline left passed would stop the
// layer.
func (u *upTrack) armNackDeadline(remote *webrtc.TrackRemote, nacks *nackLog, armed, retry, now int64) int64 {
	next := nacks.nextDue(retry)
	switch {
	case next == 0:
		if armed != 0 {
			_ = remote.SetReadDeadline(time.Time{})
		}
		return 0
	case armed == 0 || next < armed || armed <= now:
		_ = remote.SetReadDeadline(epoch.Add(time.Duration(next)))
		return next
	}
	return armed
}

// nackRetry is the wait between two asks of the publisher for a packet.
func (p *participant) nackRetry() int64 {
	return nackRetry(time.Duration(p.rttMicros.Load()) * time.Microsecond)
}

// deliver keeps a video packet for retransmission and forwards it to every
// subscriber; wg is the reader's own.
func (u *upTrack) deliver(layer int, p *rtp.Packet, key bool, now int64, wg *sync.WaitGroup) {
	if u.kind == webrtc.RTPCodecTypeVideo {
		if !u.history[layer].add(p.SequenceNumber, p.Payload, historySlots[layer]) {
			// A copy of a packet forwarded already: browsers probe
			// their bandwidth by sending old packets again over RTX
			// (libwebrtc's redundant-payload padding: at the start,
			// after a network change, and now and then), and a repair
			// may cross its original. Forwarded, it reaches each
			// subscriber under a number it has; its SRTP replay check
			// drops it unseen by its transport-wide feedback, which
			// then counts it lost (15-30%, which paused the video of
			// healthy links in TestBrowserMeeting).
			return
		}
		if taps := u.taps.Load(); taps != nil {
			// Before the fan-out, which may still read p on other
			// goroutines; the source copies what it keeps.
			for _, t := range *taps {
				t.write(layer, p, key)
			}
		}
	}
	if rs := u.rec.Load(); rs != nil {
		rs.write(u, layer, p, key, now)
	}
	u.fan.forward(*u.downs.Load(), layer, p, key, now, wg)
}

// addDown and removeDown change the subscribers.
func (u *upTrack) addDown(d *downTrack) {
	u.mu.Lock()
	defer u.mu.Unlock()
	old := *u.downs.Load()
	u.downs.Store(ptr(append(slices.Clip(old), d)))
}

func (u *upTrack) removeDown(d *downTrack) {
	u.mu.Lock()
	defer u.mu.Unlock()
	old := *u.downs.Load()
	if i := slices.Index(old, d); i >= 0 {
		u.downs.Store(ptr(slices.Delete(slices.Clone(old), i, i+1)))
	}
}

// requestKeyframe asks the publisher for a keyframe of layer, at most once
// per keyframeInterval per layer (a request inside it is sent when it
// ends).
func (u *upTrack) requestKeyframe(layer int) { u.askKeyframe(layer, false) }

// firstKeyframe asks for a keyframe for someone who has had none yet (a
// subscriber whose connection just came up, a recording starting): once
// the last keyframe asked for has come, it goes after keyframeSpacing
// rather than keyframeInterval. Only these: a lossy subscriber's requests
// keep the slower pace, so that a weak uplink is not made to send
// keyframe after keyframe.
func (u *upTrack) firstKeyframe(layer int) { u.askKeyframe(layer, true) }

func (u *upTrack) askKeyframe(layer int, first bool) {
	if u.kind != webrtc.RTPCodecTypeVideo || layer < 0 || layer >= numLayers {
		return
	}
	u.mu.Lock()
	remote := u.layers[layer]
	u.mu.Unlock()
	if remote == nil {
		return // not announced yet: its first packets are a keyframe anyway
	}
	now := nanotime()
	last := u.lastKeyReq[layer].Load()
	throttle := int64(keyframeInterval)
	if first && u.lastKeyframe[layer].Load() > last {
		throttle = int64(keyframeSpacing) // answered already
	}
	if wait := throttle - (now - last); wait > 0 {
		// Inside the throttle: one request is sent when it ends, not
		// dropped. A subscriber whose connection came up just after
		// another's request (the keyframe went before it could take it)
		// gets its picture then, not at the allocator's next retry.
		u.askLater(layer, first, time.Duration(wait))
		return
	}
	if !u.lastKeyReq[layer].CompareAndSwap(last, now) {
		return
	}
	if err := u.pub.writePublisherRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(remote.SSRC())}}); err != nil {
		// Not sent: the publisher's connection has no path now (its
		// ICE restarting after a network change). The throttle is
		// given back and the request tried again shortly, so that the
		// subscribers' picture comes back as soon as the path does,
		// not a throttle interval or a subscriber's next request later.
		u.lastKeyReq[layer].CompareAndSwap(now, last)
		if !u.isEnded() {
			u.askLater(layer, first, keyframeRetry)
		}
		return
	}
	u.pub.plisSent.Add(1)
}

// askLater asks for a keyframe of layer after wait, unless an ask of the
// layer is waiting already.
func (u *upTrack) askLater(layer int, first bool, wait time.Duration) {
	if u.keyDeferred[layer].CompareAndSwap(false, true) {
		time.AfterFunc(wait, func() {
			u.keyDeferred[layer].Store(false)
			u.askKeyframe(layer, first)
		})
	}
}

// keyframeRetry is how soon a keyframe request that could not be sent is
// tried again.
const keyframeRetry = 100 * time.Millisecond

// end marks the track ended; the read loops end with the publisher's
// connection.
func (u *upTrack) end() {
	u.mu.Lock()
	u.ended = true
	u.mu.Unlock()
}

// measure updates the layers' bitrates and frame rates from the bytes and
// frames read since the last call, dt ago; the room's stats tick calls it.
func (u *upTrack) measure(dt time.Duration) (total int64) {
	for l := range numLayers {
		b := u.layerBytes[l].Load()
		rate := measureSmoothed(&u.layerRate[l], b-u.lastBytes[l], 8, dt)
		u.lastBytes[l] = b
		total += rate

		f := u.layerFrames[l].Load()
		measureSmoothed(&u.layerFPS[l], f-u.lastFrames[l], 100, dt)
		u.tickFPS[l] = int64(float64(f-u.lastFrames[l]) * 100 / dt.Seconds())
		u.lastFrames[l] = f
	}
	u.judgeTrickling()
	return total
}

// judgeTrickling marks each layer sent at under half the frame rate of a
// smooth lower layer as trickling, and unmarks it only once a tick has
// seen it back at two thirds of that rate. Without the gap, a layer whose
// rate sat on the half line (an encoder short of CPU at 14-16 frames a
// second beside a lower layer's 30) would be given and taken away tick
// after tick, each move a keyframe asked of the publisher and a change of
// picture for every subscriber.
//
// It enters on the smoothed rates (layerFPS), as usableLayer's live test
// does, so that one slow second does not take a layer away; it leaves on
// a tick's own rate (tickFPS), so that a layer back at full rate after a
// pause, its smoothed rate still climbing from what decayed meanwhile, is
// given again no later than the half rule alone would give it. A layer
// the publisher is not sending (none of its packets yet, or none lately)
// is not judged, nor judges the ones above it.
func (u *upTrack) judgeTrickling() {
	for layer := 1; layer < numLayers; layer++ {
		if !u.sending(layer) {
			u.trickling[layer].Store(false)
			continue
		}
		if u.trickling[layer].Load() {
			u.trickling[layer].Store(u.slowerThan(layer, 2, 3, minJudgedFPS, u.tickRate, u.sending))
		} else {
			u.trickling[layer].Store(u.slowerThan(layer, 1, 2, minJudgedFPS, u.smoothedRate, u.sending))
		}
	}
}

// slowerThan says whether layer's frame rate is under num/den of a lower
// layer's that present counts and that runs at floor or more, by the
// rates rate gives.
func (u *upTrack) slowerThan(layer int, num, den, floor int64, rate func(int) int64, present func(int) bool) bool {
	fps := rate(layer)
	for l := range layer {
		if lower := rate(l); lower >= floor && fps*den < lower*num && present(l) {
			return true
		}
	}
	return false
}

func (u *upTrack) smoothedRate(l int) int64 { return u.layerFPS[l].Load() }
func (u *upTrack) tickRate(l int) int64     { return u.tickFPS[l] }

// sending says whether the publisher has sent layer lately: its packets
// seen, not hasLayer's grace for a new track's layers still to come.
func (u *upTrack) sending(layer int) bool {
	last := u.lastPacket[layer].Load()
	return last != 0 && nanotime()-last < int64(layerSilence)
}

// measureSmoothed stores in into the rate of n counted over dt, times
// scale, smoothed with the rate it held (so that one large keyframe does
// not look like a layer twice its size), and returns it.
func measureSmoothed(into *atomic.Int64, n uint64, scale float64, dt time.Duration) int64 {
	rate := int64(float64(n) * scale / dt.Seconds())
	if old := into.Load(); old != 0 {
		rate = (old*2 + rate) / 3
	}
	into.Store(rate)
	return rate
}

// usableLayer reports whether a subscriber should be given layer: the
// publisher sends it (hasLayer), and not at a trickle beside a smooth
// lower layer: under half that layer's frame rate, and until back at two
// thirds of it (judgeTrickling, each stats tick).
//
// Why: a publisher short of CPU or uplink (an old PC in a county office,
// a browser whose encoder drops frames to meet a small share of its
// bandwidth estimate) may keep a top layer going at a frame or two a
// second. Its bitrate is then small, so a subscriber's budget takes it
// gladly, and the picture freezes where the lower layer would move.
func (u *upTrack) usableLayer(layer int) bool {
	if !u.hasLayer(layer) || u.trickling[layer].Load() {
		return false
	}
	// The half rule on the smoothed rates, live: a layer new since the
	// last tick (0 frames a second) waits for the tick's measure, and one
	// back from a pause for its smoothed rate to climb past half.
	return !u.slowerThan(layer, 1, 2, minJudgedFPS, u.smoothedRate, u.hasLayer)
}

// seenRunning says whether a stats tick saw layer running: frames of it
// counted, at no less than half the rate of a lower layer being sent. A
// step up goes only to such a layer (nextLayer).
//
// Why: a browser short of bandwidth at its start (Chromium's estimate
// begins at 300 kbit/s) sends one keyframe on each of its upper layers and
// then only its low one. In a new track's first seconds every layer counts
// as sent (hasLayer's grace) and none is yet measured to be judged
// trickling, so a subscriber stepped up to such a layer at once got its
// one frame and then nothing, frozen until the layer's silence was
// noticed a second or more later (seen in TestBrowserMeeting under load).
func (u *upTrack) seenRunning(layer int) bool {
	if !u.simulcast {
		return true
	}
	// Any lower layer judges it, however slow (a slow track's layers
	// among themselves).
	return u.smoothedRate(layer) > 0 && !u.slowerThan(layer, 1, 2, 0, u.smoothedRate, u.sending)
}

// minJudgedFPS (hundredths of a frame a second): a lower layer slower than
// this (not measured yet, or itself starved) does not judge the ones
// above it. A layer that has just come, below a measured one, is not
// usable until the stats tick has measured it (a second).
const minJudgedFPS = 500

func ptr[T any](v T) *T { return &v }

// nanotime is a monotonic clock in nanoseconds.
func nanotime() int64 { return int64(time.Since(epoch)) }

var epoch = time.Now()

// seqCount counts a stream's packets against the sequence numbers they
// span, as a receiver report does (RFC 3550, A.3): expected is the
// extended highest number less the first, plus one; received counts every
// packet that came, a retransmission too. add is called by the stream's
// one reader; the counts are read by the stats tick.
type seqCount struct {
	started       bool
	base, highest int64
	expected      atomic.Int64
	received      atomic.Int64
}

func (c *seqCount) add(seq uint16) {
	if !c.started {
		c.base, c.highest, c.started = int64(seq), int64(seq), true
	} else if d := int64(int16(seq - uint16(c.highest))); d > 0 {
		c.highest += d
	}
	c.expected.Store(c.highest - c.base + 1)
	c.received.Add(1)
}
