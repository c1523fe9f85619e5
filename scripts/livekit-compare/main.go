// Command livekit-compare measures LiveKit's server on the meeting bench's
// fan-out, so that lookout's figures can be compared with LiveKit's on the
// same machine on the same day: one publisher sending synthetic VP8
// simulcast (the packets lookout-bench meeting sends) to N subscribers
// asking for the high layer, all in this process (LiveKit's Go SDK), the
// server in its own. It reports the server's CPU per forwarded Mbit/s of
// RTP and its memory per subscriber as lookout-bench meeting does.
//
// It is its own module, so that LiveKit's SDK and its dependencies stay
// out of lookout's go.mod; run.sh builds the server and runs both.
// LiveKit's own load tester (livekit-cli) is not served by the module
// proxy this project builds from.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

var (
	url      = flag.String("url", "ws://127.0.0.1:7880", "the LiveKit server")
	pid      = flag.Int("pid", 0, "the LiveKit server's process id")
	subs     = flag.Int("subscribers", 200, "subscribers")
	rateFlag = flag.String("rates", "150,500,1700", "simulcast layers l,m,h in kbit/s")
	warmup   = flag.Duration("warmup", 30*time.Second, "time for the layers to climb before measuring")
	duration = flag.Duration("duration", 30*time.Second, "how long to measure")
	pacing   = flag.Float64("pacing", 2.5, "pace video packets at this many times the bitrate")
	apiKey   = flag.String("api-key", "bench", "the server's API key; its secret is in $LIVEKIT_API_SECRET")
)

const (
	frameRate     = 30
	keyframeEvery = 2 * frameRate
	maxPayload    = 1100
)

var layerSizes = [][2]uint16{{320, 180}, {640, 360}, {1280, 720}}

type counter struct{ packets, bytes, lost atomic.Uint64 }

func main() {
	flag.Parse()
	secret := os.Getenv("LIVEKIT_API_SECRET")
	if secret == "" || *pid == 0 {
		log.Fatal("give the server's --pid and its secret in $LIVEKIT_API_SECRET (run.sh does)")
	}
	var rates []int
	for _, s := range strings.Split(*rateFlag, ",") {
		k, err := strconv.Atoi(s)
		if err != nil {
			log.Fatal(err)
		}
		rates = append(rates, k*1000)
	}
	info := func(id string) lksdk.ConnectInfo {
		return lksdk.ConnectInfo{APIKey: *apiKey, APISecret: secret, RoomName: "bench", ParticipantIdentity: id}
	}
	idleRSS := rss()

	// The publisher.
	pub, err := lksdk.ConnectToRoom(*url, info("publisher"), &lksdk.RoomCallback{})
	if err != nil {
		log.Fatal(err)
	}
	defer pub.Disconnect()
	quality := []livekit.VideoQuality{livekit.VideoQuality_LOW, livekit.VideoQuality_MEDIUM, livekit.VideoQuality_HIGH}
	var keyReq [3]atomic.Bool
	var tracks []*lksdk.LocalTrack
	for l := range rates {
		tr, err := lksdk.NewLocalTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
			lksdk.WithSimulcast("cam", &livekit.VideoLayer{Quality: quality[l], Width: uint32(layerSizes[l][0]), Height: uint32(layerSizes[l][1]), Bitrate: uint32(rates[l])}),
			lksdk.WithRTCPHandler(func(p rtcp.Packet) {
				switch p.(type) {
				case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
					keyReq[l].Store(true)
				}
			}))
		if err != nil {
			log.Fatal(err)
		}
		tracks = append(tracks, tr)
	}
	if _, err := pub.LocalParticipant.PublishSimulcastTrack(tracks, &lksdk.TrackPublicationOptions{Name: "cam", Source: livekit.TrackSource_CAMERA, VideoWidth: 1280, VideoHeight: 720}); err != nil {
		log.Fatal(err)
	}
	quit := make(chan struct{})
	var sent atomic.Uint64
	go sendVideo(tracks, rates, &keyReq, quit, &sent)

	// The subscribers.
	var received []*counter
	var rooms []*lksdk.Room
	var mu sync.Mutex
	began := time.Now()
	for i := range *subs {
		c := &counter{}
		received = append(received, c)
		cb := &lksdk.RoomCallback{ParticipantCallback: lksdk.ParticipantCallback{
			OnTrackSubscribed: func(track *webrtc.TrackRemote, p *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) {
				_ = p.SetVideoQuality(livekit.VideoQuality_HIGH)
				go read(track, c)
			},
		}}
		r, err := lksdk.ConnectToRoom(*url, info(fmt.Sprintf("sub-%03d", i)), cb, lksdk.WithAutoSubscribe(true))
		if err != nil {
			log.Fatalf("subscriber %d: %v", i, err)
		}
		mu.Lock()
		rooms = append(rooms, r)
		mu.Unlock()
	}
	receiving := func() (n int) {
		for _, c := range received {
			if c.packets.Load() > 0 {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(60 * time.Second); receiving() < *subs && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Printf("livekit fan-out: 1 publisher (VP8 simulcast %s kbit/s, paced %.1fx) to %d subscribers asking for high\n", *rateFlag, *pacing, *subs)
	fmt.Printf("  subscribers receiving %d of %d (joined in %s)\n", receiving(), *subs, time.Since(began).Round(10*time.Millisecond))
	time.Sleep(*warmup)

	b0, p0, l0 := sum(received)
	s0, t0, self0, w0 := sent.Load(), cpuTicks(*pid), cpuTicks(os.Getpid()), time.Now()
	time.Sleep(*duration)
	b1, p1, l1 := sum(received)
	s1, t1, self1, secs := sent.Load(), cpuTicks(*pid), cpuTicks(os.Getpid()), time.Since(w0).Seconds()
	endRSS := rss()
	close(quit)

	cpu := float64(t1-t0) / 100 / secs * 100 // % of one core
	mbits := float64(b1-b0) * 8 / 1e6 / secs
	fmt.Printf("  publisher sent %d video packets; subscribers received %d packets, lost %d (%.3f%%)\n", s1-s0, p1-p0, l1-l0, 100*float64(l1-l0)/float64(max(p1-p0+l1-l0, 1)))
	fmt.Printf("  CPU: livekit-server %.0f%% of one core; the participants (this process) %.0f%%\n", cpu, float64(self1-self0)/secs)
	fmt.Printf("  forwarded %.1f Mbit/s of RTP (%.2f per subscriber): livekit-server %.3f%% of one core per forwarded Mbit/s, %.2f%% per subscriber\n",
		mbits, mbits/float64(*subs), cpu/mbits, cpu/float64(*subs))
	fmt.Printf("  livekit-server RSS idle %.1f MiB, end %.1f MiB: %.2f MiB per subscriber\n", idleRSS, endRSS, (endRSS-idleRSS)/float64(*subs))
	for _, r := range rooms {
		r.Disconnect()
	}
}

// sum is the subscribers' bytes, packets and losses so far.
func sum(received []*counter) (bytes, packets, lost uint64) {
	for _, c := range received {
		bytes += c.bytes.Load()
		packets += c.packets.Load()
		lost += c.lost.Load()
	}
	return bytes, packets, lost
}

// read counts a subscriber's packets, their RTP bytes and the gaps in
// their sequence numbers.
func read(track *webrtc.TrackRemote, c *counter) {
	buf := make([]byte, 1500)
	var h rtp.Header
	var last uint16
	first := true
	for {
		n, _, err := track.Read(buf)
		if err != nil {
			return
		}
		if _, err := h.Unmarshal(buf[:n]); err != nil {
			continue
		}
		if !first {
			if d := h.SequenceNumber - last; d > 0 && d < 1000 {
				c.lost.Add(uint64(d - 1))
			}
		}
		if first || h.SequenceNumber-last < 1000 {
			last = h.SequenceNumber
		}
		first = false
		c.packets.Add(1)
		c.bytes.Add(uint64(n))
	}
}

func sendVideo(tracks []*lksdk.LocalTrack, rates []int, keyReq *[3]atomic.Bool, quit chan struct{}, sent *atomic.Uint64) {
	tick := time.NewTicker(time.Second / frameRate)
	defer tick.Stop()
	var pace int64
	for _, r := range rates {
		pace += int64(*pacing * float64(r))
	}
	pkts := make([]rtp.Packet, len(tracks))
	for i := range pkts {
		pkts[i].Header = rtp.Header{Version: 2, SequenceNumber: uint16(i * 10000)}
	}
	picture := make([]uint16, len(tracks))
	payload := make([]byte, maxPayload+32)
	for frame := 1; ; frame++ {
		select {
		case <-quit:
			return
		case <-tick.C:
		}
		for l, tr := range tracks {
			key := frame%keyframeEvery == 1 || keyReq[l].Swap(false)
			picture[l] = (picture[l] + 1) & 0x7fff
			size := rates[l] / 8 / frameRate
			n := (size + maxPayload - 1) / maxPayload
			for k := range n {
				part := size / n
				if k == n-1 {
					part = size - part*(n-1)
				}
				pk := &pkts[l]
				pk.SequenceNumber++
				pk.Timestamp = uint32(frame * 90000 / frameRate)
				pk.Marker = k == n-1
				pk.Payload = vp8Packet(payload, k == 0, key, picture[l], layerSizes[l], part)
				if tr.WriteRTP(pk, nil) == nil {
					sent.Add(1)
				}
				if pace > 0 {
					time.Sleep(time.Duration(int64(part+40) * 8 * int64(time.Second) / pace))
				}
			}
		}
	}
}

// vp8Packet is lookout-bench's (cmd/lookout-bench, which this module
// cannot import), without its send time: a VP8 payload descriptor with a
// 15-bit picture id, the frame header at a frame's start, zeros after.
func vp8Packet(buf []byte, first, key bool, picture uint16, size [2]uint16, n int) []byte {
	clear(buf[:max(n, 32)])
	buf[0] = 0x80
	if first {
		buf[0] |= 0x10
	}
	buf[1] = 0x80
	buf[2] = 0x80 | byte(picture>>8)
	buf[3] = byte(picture)
	i := 4
	if first {
		tag := uint32(1<<4) | uint32(n/2)<<5
		if !key {
			tag |= 1
		}
		buf[i], buf[i+1], buf[i+2] = byte(tag), byte(tag>>8), byte(tag>>16)
		i += 3
		if key {
			buf[i], buf[i+1], buf[i+2] = 0x9d, 0x01, 0x2a
			binary.LittleEndian.PutUint16(buf[i+3:], size[0])
			binary.LittleEndian.PutUint16(buf[i+5:], size[1])
			i += 7
		}
	}
	return buf[:max(n, i+13)]
}

// cpuTicks is a process's user and system time in clock ticks (100/s).
func cpuTicks(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		log.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseUint(f[11], 10, 64)
	s, _ := strconv.ParseUint(f[12], 10, 64)
	return u + s
}

// rss is the server's resident memory in MiB.
func rss() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", *pid))
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
