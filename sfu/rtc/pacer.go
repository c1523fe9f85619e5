package rtc

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// passPacer is the subscriber connections' pacer in pion's send-side
// bandwidth estimator: like gcc's NoOpPacer it sends every packet at once
// (the SFU forwards as packets arrive and fits the layers to the estimate
// instead of pacing), with two differences:
//
//   - a packet of an SSRC no stream was bound with (the RTX stream of a
//     subscriber's video: pion binds the media SSRC only, and the meeting
//     SFU sends its retransmissions there) goes out through the writer of
//     a stream that was: past the pacer, the writers of one connection
//     differ only in the RTPSender, and every sender's packets are
//     encrypted by the connection's one SRTP session by their own SSRC;
//   - the writers are looked up without a lock (NoOpPacer takes one for
//     every packet).
type passPacer struct {
	mu      sync.Mutex // AddStream's
	writers atomic.Pointer[map[uint32]interceptor.RTPWriter]
	any     atomic.Pointer[interceptor.RTPWriter]
}

func newPassPacer() *passPacer {
	p := &passPacer{}
	p.writers.Store(&map[uint32]interceptor.RTPWriter{})
	return p
}

// errNoStream: a packet before any stream was bound.
var errNoStream = errors.New("rtc: no stream bound to the connection's pacer")

// AddStream registers the writer of a stream's SSRC.
func (p *passPacer) AddStream(ssrc uint32, writer interceptor.RTPWriter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.writers.Load()
	m := make(map[uint32]interceptor.RTPWriter, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[ssrc] = writer
	p.writers.Store(&m)
	p.any.Store(&writer)
}

// Write sends the packet at once.
func (p *passPacer) Write(header *rtp.Header, payload []byte, attributes interceptor.Attributes) (int, error) {
	if w, ok := (*p.writers.Load())[header.SSRC]; ok {
		return w.Write(header, payload, attributes)
	}
	if w := p.any.Load(); w != nil {
		return (*w).Write(header, payload, attributes)
	}
	return 0, errNoStream
}

// SetTargetBitrate is the estimate; nothing is paced by it.
func (p *passPacer) SetTargetBitrate(int) {}

// Close has nothing to release.
func (p *passPacer) Close() error { return nil }
