package record

import (
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// BenchmarkWriteRTP is the SFU read loop's cost of recording a packet: the
// copy into the queue. The queue is emptied every half turn, as the
// track's goroutine would, without its work.
func BenchmarkWriteRTP(b *testing.B) {
	c, _ := codecOf(webrtc.MimeTypeVP8)
	tr := newTrack(Params{QueueSize: DefaultVideoQueue, Log: discard(), Now: time.Now}, c)
	p := &rtp.Packet{Header: rtp.Header{SequenceNumber: 1, Timestamp: 1, SSRC: 1}, Payload: make([]byte, 1100)}
	half := uint64(DefaultVideoQueue / 2)
	b.ReportAllocs()
	b.SetBytes(int64(len(p.Payload)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.SequenceNumber++
		tr.WriteRTP(p)
		if h := tr.q.head.Load(); h-tr.q.tail.Load() >= half {
			tr.q.tail.Store(h)
		}
	}
	b.StopTimer()
	if d := tr.dropped.Load(); d != 0 {
		b.Fatalf("%d dropped", d)
	}
}

// BenchmarkRecordVP8720p records a whole 2 s 720p VP8 stream (30 fps,
// 2.5 Mbit/s, packets of 1200 bytes) from WriteRTP to the finished,
// synced and hashed file. realtime is media seconds recorded per second;
// cpu-%/stream is the process's CPU time (both goroutines, the feed's
// included) per media second: the share of one core a live stream takes.
func BenchmarkRecordVP8720p(b *testing.B) {
	m := loadMedia(b, "vp8-720p")
	pkts := m.packetize(1200, 1, 1, 1)
	var bytes int64
	for _, p := range pkts {
		bytes += int64(len(p.pkt.Payload))
	}
	dir := b.TempDir()
	cpu0 := cpuTime()
	b.ReportAllocs()
	b.SetBytes(bytes)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clk := newFakeClock()
		var req atomic.Int32
		tr, err := Start(Params{Dir: dir, Name: "rec" + strconv.Itoa(i), MimeType: m.mime, Now: clk.Now,
			RequestKeyframe: func() { req.Add(1) }})
		if err != nil {
			b.Fatal(err)
		}
		feed(tr, clk, pkts)
		s, err := tr.Close()
		if err != nil {
			b.Fatal(err)
		}
		if s.Frames != len(m.frames) {
			b.Fatalf("%d frames of %d", s.Frames, len(m.frames))
		}
	}
	b.StopTimer()
	media := float64(m.duration) * float64(b.N)
	b.ReportMetric(media/float64(b.Elapsed()), "realtime")
	b.ReportMetric(100*float64(cpuTime()-cpu0)/media, "cpu-%/stream")
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
