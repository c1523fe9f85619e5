package rtc

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
)

// transportFeedback makes a publisher connection's transport-wide
// congestion control feedback (what pion's twcc.SenderInterceptor makes)
// from arrival times taken as early as lookout sees a packet: on the
// shared socket's reader for the packets a DirectReceiver takes, on the
// track's read for the rest.
//
// Why: pion's interceptor notes a packet's arrival when the track's
// reader reads it, after four goroutine hand-overs and after the meeting
// forwarded the packets before it. On a loaded server the publisher's
// bandwidth estimator then sees the SFU's own queueing as delay on its
// uplink, and packets of one track read before another's that came
// first as reordering; the publisher's browser lowers its bitrate for
// it. Its interceptor also hands every packet to a goroutine of its own.
// pion's twcc.Recorder still builds the reports.
//
// A packet is noted once: a taken packet that pion's track then reads is
// already recorded (the recorder keeps the first arrival of a sequence
// number).
type transportFeedback struct {
	interceptor.NoOp
	interval time.Duration
	start    time.Time

	mu  sync.Mutex
	rec *twcc.Recorder
	// ext is the transport-wide sequence number's extension id of each
	// bound stream.
	ext map[uint32]uint8

	stop chan struct{}
	once sync.Once
	done sync.WaitGroup
}

// feedbackInterval is how often the feedback is sent: pion's default,
// and Chrome's at a publisher's bitrates.
const feedbackInterval = 100 * time.Millisecond

// transportFeedbackFactory makes one connection's transportFeedback and
// hands it to its DirectReceiver (nil: none).
type transportFeedbackFactory struct {
	r *DirectReceiver
}

func (f transportFeedbackFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	var ssrc [4]byte
	_, _ = rand.Read(ssrc[:])
	t := &transportFeedback{interval: feedbackInterval, start: time.Now(), rec: twcc.NewRecorder(binary.BigEndian.Uint32(ssrc[:])),
		ext: map[uint32]uint8{}, stop: make(chan struct{})}
	if f.r != nil {
		f.r.feedback.Store(t)
	}
	return t, nil
}

// BindRTCPWriter starts sending the feedback on writer.
func (t *transportFeedback) BindRTCPWriter(writer interceptor.RTCPWriter) interceptor.RTCPWriter {
	t.done.Add(1)
	go t.send(writer)
	return writer
}

func (t *transportFeedback) send(writer interceptor.RTCPWriter) {
	defer t.done.Done()
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
		t.mu.Lock()
		pkts := t.rec.BuildFeedbackPacket()
		t.mu.Unlock()
		if len(pkts) > 0 {
			_, _ = writer.Write(pkts, nil)
		}
	}
}

// BindRemoteStream notes the stream's extension id, and the arrival of
// each packet its track reads.
func (t *transportFeedback) BindRemoteStream(info *interceptor.StreamInfo, reader interceptor.RTPReader) interceptor.RTPReader {
	var id uint8
	for _, e := range info.RTPHeaderExtensions {
		if e.URI == sdp.TransportCCURI && e.ID > 0 && e.ID < 15 {
			id = uint8(e.ID)
		}
	}
	if id == 0 {
		return reader
	}
	ssrc := info.SSRC
	t.mu.Lock()
	t.ext[ssrc] = id
	t.mu.Unlock()
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := reader.Read(b, a)
		if err != nil {
			return n, a, err
		}
		if a == nil {
			a = interceptor.Attributes{}
		}
		if h, err := a.GetRTPHeader(b[:n]); err == nil {
			t.arrived(ssrc, h, time.Now())
		}
		return n, a, nil
	})
}

// UnbindRemoteStream forgets the stream.
func (t *transportFeedback) UnbindRemoteStream(info *interceptor.StreamInfo) {
	t.mu.Lock()
	delete(t.ext, info.SSRC)
	t.mu.Unlock()
}

// arrived notes that the packet with header h of stream ssrc arrived at
// at, if the stream is bound and the packet carries a transport-wide
// sequence number; it says whether it did.
func (t *transportFeedback) arrived(ssrc uint32, h *rtp.Header, at time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	id := t.ext[ssrc]
	if id == 0 {
		return false
	}
	e := h.GetExtension(id)
	if len(e) < 2 {
		return false
	}
	t.rec.Record(ssrc, binary.BigEndian.Uint16(e), at.Sub(t.start).Microseconds())
	return true
}

// Close stops the feedback.
func (t *transportFeedback) Close() error {
	t.once.Do(func() { close(t.stop) })
	t.done.Wait()
	return nil
}
