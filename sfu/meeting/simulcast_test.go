package meeting

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/internal/meetpeer"
	"github.com/lookout-cc/lookout/internal/rxstamp"
	"github.com/lookout-cc/lookout/sfu/signal"
)

// throttle is a subscriber's downlink of limited bandwidth, as a
// congested county link is: packets queue at the bottleneck and leave at
// its rate; RTP that would wait more than 250 ms is dropped (ICE, DTLS and
// RTCP wait their turn but are kept).
//
// It is also where the client's transport-wide congestion control
// feedback takes its arrival times (meetpeer.ArrivalFeedback): the time
// each packet leaves the bottleneck, from the kernel's arrival stamp. pion's
// own feedback notes the time its read loop took the packet, after this
// throttle's sleep and three goroutine hand-overs; on a machine busy with
// other tests that scheduling jitter looks to the SFU's delay-based
// estimate like a queue growing, and a link that carries 400 kbit/s was
// taken for one that carries less.
type throttle struct {
	net.PacketConn
	bps      atomic.Int64 // 0: no limit
	q        chan queued
	once     sync.Once
	arrivals *meetpeer.ArrivalFeedback
}

type queued struct {
	b    []byte
	addr net.Addr
	at   time.Time
	err  error
}

const maxQueueDelay = 250 * time.Millisecond

func (t *throttle) wrap(pc net.PacketConn) net.PacketConn {
	t.PacketConn = pc
	t.q = make(chan queued, 4096)
	t.arrivals = meetpeer.NewArrivalFeedback()
	udp, ok := pc.(*net.UDPConn)
	if !ok {
		panic("throttle: not a UDP socket")
	}
	if err := rxstamp.Enable(udp); err != nil {
		panic(err)
	}
	go t.pump(udp)
	return t
}

// bottleneckFeedback is a subscriber socket filter that notes the
// arrivals the connection's TWCC feedback is made from (the client then
// registers no TWCC interceptor of pion's).
type bottleneckFeedback interface {
	arrivalFeedback() *meetpeer.ArrivalFeedback
}

func (t *throttle) arrivalFeedback() *meetpeer.ArrivalFeedback { return t.arrivals }

// pump reads the socket and schedules each packet's delivery from its
// arrival at the socket (the kernel's time, not the read's).
func (t *throttle) pump(conn *net.UDPConn) {
	var busyUntil time.Time
	oob := make([]byte, rxstamp.OOBSize)
	for {
		buf := make([]byte, 1500)
		n, oobn, _, addr, err := conn.ReadMsgUDP(buf, oob)
		if err != nil {
			t.q <- queued{err: err}
			return
		}
		now := time.Now()
		if ns, ok := rxstamp.Time(oob[:oobn]); ok {
			now = time.Unix(0, ns)
		}
		at := now
		rtpPacket := n >= 2 && buf[0] >= 128 && buf[0] <= 191 && !(buf[1] >= 192 && buf[1] <= 223)
		if rate := t.bps.Load(); rate > 0 {
			start := busyUntil
			if start.Before(now) {
				start = now
			}
			if rtpPacket && start.Sub(now) > maxQueueDelay {
				continue // the queue is full: dropped
			}
			busyUntil = start.Add(time.Duration(int64(n*8) * int64(time.Second) / rate))
			at = busyUntil
		}
		t.arrivals.Note(buf[:n], at.UnixMicro())
		t.q <- queued{b: buf[:n], addr: addr, at: at}
	}
}

func (t *throttle) ReadFrom(b []byte) (int, net.Addr, error) {
	p := <-t.q
	if p.err != nil {
		t.once.Do(func() { close(t.q) })
		return 0, nil, p.err
	}
	if d := time.Until(p.at); d > 0 {
		time.Sleep(d)
	}
	return copy(b, p.b), p.addr, nil
}

// lastLayer is the last layer_changed a client got for identity's video.
func lastLayer(c *client, identity string) (layer string, paused bool, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.msgs {
		if m.Type == signal.TypeLayerChanged && m.Identity == identity && m.Track != nil && m.Track.Kind == "video" {
			layer, paused, ok = m.Layer, m.Paused != nil && *m.Paused, true
		}
	}
	return layer, paused, ok
}

// Simulcast layers under a throttled link: a subscriber on a good link
// climbs to the high layer; one behind a 400 kbit/s link stays on the low
// layer (its tries of the medium layer are undone); below what the low
// layer needs its video is paused while its audio goes on; when the link
// recovers the video resumes.
func TestSimulcastLayersFollowTheLink(t *testing.T) {
	if testing.Short() {
		t.Skip("follows the bandwidth estimate for about a minute")
	}
	t.Parallel()
	e := newEnv(t)
	alice := e.join("alice", memberRights)
	alice.publish(true)
	good := e.join("good", memberRights)

	weak := e.dial("weak")
	var link throttle
	link.bps.Store(400_000)
	weak.subFilter = link.wrap
	weak.send(map[string]any{"type": "join", "token": e.token("weak", memberRights)})
	weak.wait("joined", isType(signal.TypeJoined))

	good.waitFor("high layer", 30*time.Second, func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeLayerChanged && m.Identity == "alice" && m.Layer == "high"
	})
	// The weak link: after 15 s it is on the low layer, never was on
	// the high one.
	time.Sleep(15 * time.Second)
	if l, paused, _ := lastLayer(weak, "alice"); l == "high" || paused {
		t.Fatalf("weak link on layer %q (paused %v) at 400 kbit/s", l, paused)
	}
	weak.waitPackets("alice-camera", 100, time.Second)

	// 80 kbit/s: video paused, audio kept.
	mark := weak.mark()
	link.bps.Store(80_000)
	weak.waitSince(mark, "paused", 20*time.Second, func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeLayerChanged && m.Identity == "alice" && m.Paused != nil && *m.Paused && m.Reason == "bandwidth"
	})
	audio := weak.packets("alice-microphone")
	weak.waitPackets("alice-microphone", audio+25, 3*time.Second)

	// The link recovers: the video comes back.
	mark = weak.mark()
	link.bps.Store(0)
	weak.waitSince(mark, "resumed", 45*time.Second, func(m signal.ServerMessage) bool {
		return m.Type == signal.TypeLayerChanged && m.Identity == "alice" && m.Paused != nil && !*m.Paused
	})
	video := weak.packets("alice-camera")
	weak.waitPackets("alice-camera", video+60, 5*time.Second)
}
