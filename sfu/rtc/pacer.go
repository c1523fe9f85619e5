package rtc

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/rtp"
)

// passPacer is the subscriber connections' pacer in pion's send-side
// bandwidth estimator: like gcc's NoOpPacer it sends every packet at once
// (the SFU forwards as packets arrive and fits the layers to the estimate
// instead of pacing), with two differences:
//
//   - a packet of a stream's RTX SSRC goes out through that stream's
//     writer: pion binds a sender's media SSRC only, and the meeting SFU
//     sends its retransmissions on the RTX SSRC through the media
//     stream's writer (past the pacer, the SRTP session encrypts each
//     packet by its own SSRC); NoOpPacer refuses them as unknown;
//   - the writers are looked up without a lock (NoOpPacer takes one for
//     every packet).
type passPacer struct {
	mu      sync.Mutex // AddStream's and alias's
	writers atomic.Pointer[map[uint32]interceptor.RTPWriter]
	// rtx maps an RTX SSRC to its media SSRC.
	rtx map[uint32]uint32
}

func newPassPacer() *passPacer {
	p := &passPacer{rtx: map[uint32]uint32{}}
	p.writers.Store(&map[uint32]interceptor.RTPWriter{})
	return p
}

// errUnknownStream: a packet of an SSRC no stream was bound with.
var errUnknownStream = errors.New("rtc: packet of a stream not bound to the connection")

// AddStream registers the writer of a stream's SSRC, and of its RTX SSRC
// when alias named one first.
func (p *passPacer) AddStream(ssrc uint32, writer interceptor.RTPWriter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.storeLocked(func(m map[uint32]interceptor.RTPWriter) {
		m[ssrc] = writer
		for rtx, media := range p.rtx {
			if media == ssrc {
				m[rtx] = writer
			}
		}
	})
}

// alias makes packets of rtx go out as media's do.
func (p *passPacer) alias(rtx, media uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rtx[rtx] = media
	if w, ok := (*p.writers.Load())[media]; ok {
		p.storeLocked(func(m map[uint32]interceptor.RTPWriter) { m[rtx] = w })
	}
}

// storeLocked replaces the writers with a changed copy.
func (p *passPacer) storeLocked(change func(map[uint32]interceptor.RTPWriter)) {
	old := *p.writers.Load()
	m := make(map[uint32]interceptor.RTPWriter, len(old)+2)
	for k, v := range old {
		m[k] = v
	}
	change(m)
	p.writers.Store(&m)
}

// Write sends the packet at once.
func (p *passPacer) Write(header *rtp.Header, payload []byte, attributes interceptor.Attributes) (int, error) {
	if w, ok := (*p.writers.Load())[header.SSRC]; ok {
		return w.Write(header, payload, attributes)
	}
	return 0, fmt.Errorf("%w: ssrc %d", errUnknownStream, header.SSRC)
}

// SetTargetBitrate is the estimate; nothing is paced by it.
func (p *passPacer) SetTargetBitrate(int) {}

// Close has nothing to release.
func (p *passPacer) Close() error { return nil }

// rtxAwareBWE is pion's estimator with the streams' RTX SSRCs told to its
// pacer as they are bound (the estimator's AddStream is the one place the
// stream's RTX SSRC is known).
type rtxAwareBWE struct {
	cc.BandwidthEstimator
	pacer *passPacer
}

func (b *rtxAwareBWE) AddStream(info *interceptor.StreamInfo, writer interceptor.RTPWriter) interceptor.RTPWriter {
	if info.SSRCRetransmission != 0 {
		b.pacer.alias(info.SSRCRetransmission, info.SSRC)
	}
	return b.BandwidthEstimator.AddStream(info, writer)
}
