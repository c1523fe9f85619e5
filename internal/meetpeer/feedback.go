package meetpeer

import (
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// ArrivalFeedback makes a receiving connection's transport-wide
// congestion control feedback (TWCC) from the times its socket saw the
// packets arrive, as a browser's network layer does, in place of pion's
// interceptor, which notes the time its read loop took each packet: after
// the goroutine hand-overs, whose scheduling delays on a busy machine the
// SFU's delay-based estimate would take for a queue growing. The
// meeting bench's participants note the kernel's arrival stamps; the
// meeting tests' throttled links note when each packet leaves the
// bottleneck.
//
// The connection must negotiate transport-cc without pion's TWCC
// interceptor; the SFU's offer gives the extension's id (FromOffer).
type ArrivalFeedback struct {
	id  atomic.Uint32 // the extension's id; 0 until known
	mu  sync.Mutex
	rec *twcc.Recorder
}

// NewArrivalFeedback makes an empty record.
func NewArrivalFeedback() *ArrivalFeedback {
	return &ArrivalFeedback{rec: twcc.NewRecorder(rand.Uint32())}
}

// FromOffer takes the transport-wide sequence number's extension id from
// an offer, if it has one (a first offer may have no media yet).
func (f *ArrivalFeedback) FromOffer(offer string) {
	if id := ExtmapID(offer, sdp.TransportCCURI); id != 0 {
		f.id.Store(uint32(id))
	}
}

// Note records an RTP packet's arrival at at (µs, any clock the
// connection keeps to); other packets and those before the id is known
// are ignored. It allocates nothing.
func (f *ArrivalFeedback) Note(pkt []byte, at int64) {
	id := f.id.Load()
	if id == 0 || len(pkt) < 12 || pkt[0]>>6 != 2 || pkt[1] >= 192 && pkt[1] <= 223 {
		return
	}
	ext, ok := OneByteExtension(pkt, uint8(id))
	if !ok || len(ext) < 2 {
		return
	}
	f.mu.Lock()
	f.rec.Record(binary.BigEndian.Uint32(pkt[8:12]), binary.BigEndian.Uint16(ext), at)
	f.mu.Unlock()
}

// Send writes the feedback for what arrived since the last report on pc
// every 100 ms, as browsers and pion do, until quit is closed or pc is;
// sent, if set, is told how many packets each write carried.
func (f *ArrivalFeedback) Send(pc *webrtc.PeerConnection, quit <-chan struct{}, sent func(int)) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-quit:
			return
		case <-tick.C:
		}
		if pc.ConnectionState() == webrtc.PeerConnectionStateClosed {
			return
		}
		f.mu.Lock()
		pkts := f.rec.BuildFeedbackPacket()
		f.mu.Unlock()
		if len(pkts) > 0 && pc.WriteRTCP(pkts) == nil && sent != nil {
			sent(len(pkts))
		}
	}
}

// ExtmapID is the id an SDP gives the header extension uri, 0 if none.
func ExtmapID(desc, uri string) int {
	for _, l := range strings.Split(desc, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(l), "a=extmap:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 2 || f[1] != uri {
			continue
		}
		id, _, _ := strings.Cut(f[0], "/")
		if n, err := strconv.Atoi(id); err == nil && n > 0 && n < 15 {
			return n
		}
	}
	return 0
}

// OneByteExtension finds header extension id in an RTP packet's one-byte
// extension block (RFC 8285), without allocating.
func OneByteExtension(b []byte, id uint8) ([]byte, bool) {
	if len(b) < 12 || b[0]&0x10 == 0 {
		return nil, false
	}
	off := 12 + 4*int(b[0]&0x0f)
	if len(b) < off+4 || binary.BigEndian.Uint16(b[off:]) != 0xBEDE {
		return nil, false
	}
	end := off + 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
	if end > len(b) {
		return nil, false
	}
	for i := off + 4; i < end; {
		if b[i] == 0 { // padding
			i++
			continue
		}
		eid, l := b[i]>>4, int(b[i]&0x0f)+1
		if eid == 15 || i+1+l > end {
			return nil, false
		}
		if eid == id {
			return b[i+1 : i+1+l], true
		}
		i += 1 + l
	}
	return nil, false
}
