// Package source is a camera as the SFU sees it: a publisher without a
// peer connection. It takes the camera's RTP as it comes (no transcoding),
// makes it fit WebRTC (packets of at most MaxPayload bytes, parameter sets
// before every keyframe, one sequence of its own), keeps the packets since
// the last keyframe so that a new viewer gets a decodable picture at once,
// and fans the packets out to viewers, each with a bounded queue: a slow
// viewer drops frames and starts again at a keyframe from the cache, and
// never holds up the camera or the other viewers.
//
// Packets live in pooled, reference-counted buffers: the path from the
// camera to the viewers allocates nothing per packet.
package source

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// MaxPayload is the largest RTP payload sent to viewers: with the RTP
// header, SRTP's tag and the IP/UDP headers it stays under the 1280-byte
// minimum IPv6 MTU that WebRTC stacks plan for.
const MaxPayload = 1200

// Packet is one RTP packet on its way to viewers. It is shared, read-only,
// by the cache and every viewer's queue; the last Release returns it to
// the pool.
type Packet struct {
	Header  rtp.Header
	Payload []byte
	// Keyframe marks the first packet of a keyframe (with the parameter
	// sets before it): a viewer may start here.
	Keyframe bool
	// FrameEnd marks the last packet of a frame (the RTP marker bit).
	FrameEnd bool
	// At is when the camera's packet reached the source.
	At time.Time

	refs atomic.Int32
	buf  [MaxPayload]byte
}

var packets = sync.Pool{New: func() any { return new(Packet) }}

// newPacket takes a packet from the pool with one reference, its payload
// a copy of payload (at most MaxPayload bytes).
func newPacket(h *rtp.Header, payload []byte) *Packet {
	p := packets.Get().(*Packet)
	p.Header = *h
	p.Header.Extensions = nil // the camera's extensions mean nothing to a browser
	p.Header.Extension = false
	p.Header.CSRC = nil
	p.Header.Padding = false
	p.Header.PaddingSize = 0 // the payload is copied without the padding
	p.Payload = p.buf[:copy(p.buf[:], payload)]
	p.Keyframe, p.FrameEnd = false, h.Marker
	p.At = time.Time{}
	p.refs.Store(1)
	return p
}

// hold adds a reference.
func (p *Packet) hold() { p.refs.Add(1) }

// Release drops a reference; the last one returns the packet to the pool.
func (p *Packet) Release() {
	if p.refs.Add(-1) == 0 {
		packets.Put(p)
	}
}
