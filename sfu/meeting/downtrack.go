package meeting

import (
	"encoding/binary"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/lookout-cc/lookout/sfu/rtc"
)

// Simulcast layers by index; a track sent without simulcast has layer 0
// only.
const (
	layerLow    = 0
	layerMedium = 1
	layerHigh   = 2
	numLayers   = 3
	// layerOff is a target of no layer: the video is paused.
	layerOff = -1
)

var layerNames = [numLayers]string{"low", "medium", "high"}

// ridLayer maps a browser's rid to a layer.
func ridLayer(rid string) (int, bool) {
	switch rid {
	case "", "h", "f", "q2":
		return layerHigh, true
	case "m", "q1":
		return layerMedium, true
	case "l", "q0":
		return layerLow, true
	}
	return 0, false
}

// lateWindow is how far behind the newest packet of a layer a late one
// (reordered, or a retransmission) is still forwarded.
const lateWindow = 1000

// downTrack is one subscriber's copy of a published track: a TrackLocal on
// the subscriber's connection that forwards one layer of the publisher's
// track at a time, with its own sequence numbers and timestamps so that a
// switch of layers or a pause leaves no gap or jump the browser would
// stumble on.
//
// write runs on the publisher's read goroutines (one per layer); its
// lock is the downTrack's own, so subscribers never wait for each other.
type downTrack struct {
	up     *upTrack
	sub    *participant
	sender *webrtc.RTPSender

	mu sync.Mutex
	// est is the subscriber's link estimator (sub.bwe), kept beside mu
	// because every packet numbers with it: one line of memory the
	// fan-out does not read per copy (the participant's).
	est linkEstimator
	ws  webrtc.TrackLocalWriter // nil until bound
	// direct is the track's stream of the subscriber's direct sender,
	// made at the first write once the sender is ready; from then on
	// every packet of the track goes through it (writer).
	direct  *rtc.DirectStream
	ssrc    uint32
	pt      uint8
	current int // the layer being forwarded, layerOff before a keyframe
	target  int // the layer wanted, layerOff when paused
	// Rewriting: out = in + offset, re-chosen at each switch; switchIn
	// is the first packet taken of the current layer (older ones, late,
	// would take numbers the layer before used).
	switchIn uint16
	started  bool
	seqOff   uint16
	tsOff    uint32
	lastSeq  uint16
	lastTS   uint32
	lastAt   int64
	hdr      rtp.Header
	extSpace [4]rtp.Extension
	// Transport-wide congestion control: every packet sent gets the
	// next number of the subscriber's estimator (sub.bwe) in the header
	// extension twccID (0: not negotiated).
	twccID  uint8
	twccSeq [2]byte

	// requested is what the subscriber asked for with layer (high by
	// default).
	requested atomic.Int32

	packets atomic.Uint64
	bytes   atomic.Uint64
	// remote is what the subscriber reports of it.
	remote remoteReport

	// Retransmission (history.go), for video: what was sent under each
	// recent sequence number, and the RTX stream when negotiated.
	sent    *sentLog
	rtxSSRC uint32
	rtxPT   uint8
	rtxSeq  uint16
	rtxBuf  []byte
	rtxExt  [4]rtp.Extension
}

func newDownTrack(up *upTrack, sub *participant) *downTrack {
	d := &downTrack{up: up, sub: sub, est: sub.bwe, current: layerOff, target: layerOff}
	d.requested.Store(layerHigh)
	if up.kind == webrtc.RTPCodecTypeAudio || !up.simulcast {
		d.target = layerHigh // where a track without rids is kept
	}
	if up.kind == webrtc.RTPCodecTypeVideo {
		d.sent = &sentLog{}
		d.rtxBuf = make([]byte, 0, historySlotSize+2)
	}
	return d
}

// ID, StreamID, RID and Kind make downTrack a webrtc.TrackLocal.
func (d *downTrack) ID() string                { return d.up.id }
func (d *downTrack) StreamID() string          { return d.up.streamID }
func (d *downTrack) RID() string               { return "" }
func (d *downTrack) Kind() webrtc.RTPCodecType { return d.up.kind }

// Bind picks the subscriber's payload type for the publisher's codec.
func (d *downTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	c, ok := matchCodec(d.up.codec, ctx.CodecParameters())
	if !ok {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	rtxPT, rtx := rtxPayloadType(c.PayloadType, ctx.CodecParameters())
	d.mu.Lock()
	d.ws, d.ssrc, d.pt = ctx.WriteStream(), uint32(ctx.SSRC()), uint8(c.PayloadType)
	d.twccID = 0
	for _, ext := range ctx.HeaderExtensions() {
		if ext.URI == sdp.TransportCCURI && d.sub.bwe != nil {
			d.twccID = uint8(ext.ID)
		}
	}
	d.rtxSSRC, d.rtxPT = 0, 0
	if rtx && ctx.SSRCRetransmission() != 0 {
		d.rtxSSRC, d.rtxPT = uint32(ctx.SSRCRetransmission()), rtxPT
	}
	if d.sent != nil {
		*d.sent = sentLog{} // a new binding numbers afresh
	}
	d.current = layerOff // start at a keyframe
	d.mu.Unlock()
	if d.sub.subConnected.Load() {
		// Otherwise the connection asks when it connects: a keyframe
		// now would go before it can be carried, and the throttle would
		// hold back the one that counts.
		d.up.firstKeyframe(d.wantLayer())
	}
	return c, nil
}

// Unbind stops the forwarding.
func (d *downTrack) Unbind(webrtc.TrackLocalContext) error {
	d.mu.Lock()
	d.ws = nil
	d.mu.Unlock()
	return nil
}

// rtxPayloadType is the negotiated RTX payload type that repairs pt
// (fmtp apt=pt).
func rtxPayloadType(pt webrtc.PayloadType, have []webrtc.RTPCodecParameters) (uint8, bool) {
	want := "apt=" + strconv.Itoa(int(pt))
	for _, c := range have {
		if equalFold(c.MimeType, webrtc.MimeTypeRTX) {
			for _, f := range strings.Split(c.SDPFmtpLine, ";") {
				if strings.TrimSpace(f) == want {
					return uint8(c.PayloadType), true
				}
			}
		}
	}
	return 0, false
}

// matchCodec finds the negotiated codec that carries what the publisher
// sends: the same MIME type and, for H.264, the same packetization mode
// and profile.
func matchCodec(want webrtc.RTPCodecCapability, have []webrtc.RTPCodecParameters) (webrtc.RTPCodecParameters, bool) {
	var fallback *webrtc.RTPCodecParameters
	for i, c := range have {
		if !equalFold(c.MimeType, want.MimeType) {
			continue
		}
		if want.MimeType != webrtc.MimeTypeH264 || h264Profile(c.SDPFmtpLine) == h264Profile(want.SDPFmtpLine) {
			return c, true
		}
		if fallback == nil {
			fallback = &have[i]
		}
	}
	if fallback != nil {
		return *fallback, true
	}
	return webrtc.RTPCodecParameters{}, false
}

// h264Profile is the profile part of an fmtp's profile-level-id (the
// level may differ: the decoder takes any level up to its own).
func h264Profile(fmtp string) string {
	const key = "profile-level-id="
	for i := 0; i+len(key)+4 <= len(fmtp); i++ {
		if fmtp[i:i+len(key)] == key {
			return lower(fmtp[i+len(key) : i+len(key)+4])
		}
	}
	return "42e0" // RFC 6184's default: constrained baseline
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func equalFold(a, b string) bool { return len(a) == len(b) && lower(a) == lower(b) }

// wantLayer is the layer the track is heading for.
func (d *downTrack) wantLayer() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.target
}

// setTarget moves the track to layer (layerOff pauses it). The switch
// happens at the new layer's next keyframe, which is asked for; until then
// the current layer goes on.
func (d *downTrack) setTarget(layer int) {
	d.mu.Lock()
	if d.target == layer {
		d.mu.Unlock()
		return
	}
	d.target = layer
	if layer == layerOff {
		d.current = layerOff
	}
	bound := d.ws != nil
	d.mu.Unlock()
	if layer != layerOff && bound {
		d.up.requestKeyframe(layer)
	}
}

// rebase makes the next packet start afresh (at a keyframe, for video):
// after a mute, whose silence the sequence must not show as a loss.
func (d *downTrack) rebase() {
	d.mu.Lock()
	d.current = layerOff
	d.mu.Unlock()
}

// layers reports the current and target layer.
func (d *downTrack) layers() (current, target int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.current, d.target
}

// rtpOverhead is what a packet the SFU sends carries besides its
// payload: the RTP header with the transport-wide sequence number, and
// SRTP's AES-GCM tag. The estimator counts it, as the link carries it.
const rtpOverhead = 12 + 8 + 16

// numberForTWCC gives h the subscriber connection's next transport-wide
// sequence number, for a packet of payload bytes sent now. d.mu is held.
func (d *downTrack) numberForTWCC(h *rtp.Header, payload int) {
	if d.twccID == 0 {
		return
	}
	seq := d.est.Sent(payload+rtpOverhead, nanotime())
	binary.BigEndian.PutUint16(d.twccSeq[:], seq)
	_ = h.SetExtension(d.twccID, d.twccSeq[:])
}

// write forwards p, read from the publisher's layer, if that layer is the
// one to forward; key says whether p starts a keyframe. It makes no
// allocation.
func (d *downTrack) write(layer int, p *rtp.Packet, key bool, now int64) {
	d.mu.Lock()
	if d.ws == nil || d.target == layerOff {
		d.mu.Unlock()
		return
	}
	if layer != d.current {
		if layer != d.target || !key {
			d.mu.Unlock()
			return
		}
		// The target layer's keyframe: switch here, the new layer's
		// packets following on from the last one sent.
		if d.started {
			d.seqOff = d.lastSeq + 1 - p.SequenceNumber
			elapsed := uint32((now - d.lastAt) * int64(d.up.codec.ClockRate) / int64(time.Second))
			if elapsed == 0 {
				elapsed = 1
			}
			d.tsOff = d.lastTS + elapsed - p.Timestamp
		}
		d.current, d.switchIn = layer, p.SequenceNumber
	} else if int16(p.SequenceNumber-d.switchIn) < 0 {
		d.mu.Unlock()
		return
	}
	d.hdr = p.Header
	// The publisher's header extensions have its connection's ids; the
	// subscriber's connection has its own (transport-wide sequence
	// numbers), put into this space.
	d.hdr.Extension, d.hdr.Extensions = false, d.extSpace[:0]
	d.numberForTWCC(&d.hdr, len(p.Payload))
	d.hdr.SequenceNumber += d.seqOff
	d.hdr.Timestamp += d.tsOff
	d.hdr.SSRC, d.hdr.PayloadType = d.ssrc, d.pt
	if int16(p.SequenceNumber-d.switchIn) > lateWindow {
		// The floor follows the layer's newest packets, so that it stays
		// within half the sequence space of them.
		d.switchIn = p.SequenceNumber - lateWindow
	}
	if d.sent != nil {
		d.sent[d.hdr.SequenceNumber%historySize] = sentPacket{valid: true, marker: d.hdr.Marker, layer: uint8(layer),
			outSeq: d.hdr.SequenceNumber, upSeq: p.SequenceNumber, ts: d.hdr.Timestamp}
	}
	if !d.started || int16(d.hdr.SequenceNumber-d.lastSeq) > 0 {
		// The newest sent; a retransmission the publisher sent late
		// goes out with its place in the sequence but moves nothing.
		d.lastSeq, d.lastTS, d.lastAt, d.started = d.hdr.SequenceNumber, d.hdr.Timestamp, now, true
	}
	_, err := d.writer().WriteRTP(&d.hdr, p.Payload)
	d.mu.Unlock()
	if err == nil {
		d.packets.Add(1)
		d.bytes.Add(uint64(len(p.Payload)))
	}
}

// writer is where the track's packets go, d.mu held: the subscriber
// connection's direct sender once it is ready (rtc.DirectSender), else
// pion's stream. Once a stream of the direct sender is made, the track
// never goes back to pion's: the SRTP state of its SSRCs is the stream's.
func (d *downTrack) writer() rtpWriter {
	if d.direct == nil {
		if s := d.sub.direct.Load(); s != nil && s.Ready() {
			if st, err := s.NewStream(); err == nil {
				d.direct = st
			}
		}
	}
	if d.direct != nil {
		return d.direct
	}
	return d.ws
}

// rtpWriter is what a downTrack writes to: pion's stream or the direct
// sender's.
type rtpWriter interface {
	WriteRTP(h *rtp.Header, payload []byte) (int, error)
}
