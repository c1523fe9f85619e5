package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// cameras measures the video path: N cameras (a 720p25 H.264 clip that
// ffmpeg publishes, copied, not encoded again, into an RTSP server of the
// bench's) pulled by lookout and played to M WebRTC viewers each over
// WHEP. It reports lookout's CPU with every stream flowing, the time a
// frame takes from the RTSP server's write to a viewer's receipt (both
// clocks this machine's; the WebRTC timestamps are the camera's, so each
// frame is matched by its timestamp), and the time from a new viewer's
// offer to its first whole frame.
func cameras(argv []string, out io.Writer) error {
	fs := flag.NewFlagSet("cameras", flag.ContinueOnError)
	binary := fs.String("binary", "bin/lookout", "the lookout binary")
	ffmpeg := fs.String("ffmpeg", "/usr/bin/ffmpeg", "the ffmpeg binary")
	n := fs.Int("cameras", 16, "cameras")
	perCam := fs.Int("viewers", 4, "WebRTC viewers per camera")
	duration := fs.Duration("duration", 30*time.Second, "how long to measure with every stream flowing")
	bitrate := fs.String("bitrate", "1500k", "the clip's video bitrate")
	joins := fs.Int("joins", 20, "viewers joining one after the other, for the time to the first frame")
	if err := fs.Parse(argv); err != nil {
		return err
	}
	if *n < 1 || *n > 64 || *perCam < 1 || *perCam > 16 || *duration > 10*time.Minute {
		return errors.New("--cameras 1-64, --viewers 1-16, --duration at most 10m")
	}
	dir, err := os.MkdirTemp("", "lookout-bench-cameras")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// The clip: 20 s of 720p25, a keyframe every 2 s, encoded once.
	clip := filepath.Join(dir, "clip.mp4")
	if err := encodeClip(*ffmpeg, "1280x720", *bitrate, clip); err != nil {
		return err
	}

	// The RTSP server the cameras are published to and pulled from.
	relay, err := startRelay()
	if err != nil {
		return err
	}
	defer relay.close()
	var pubs rtspPublishers
	defer pubs.stop()
	for i := range *n {
		if err := pubs.start(*ffmpeg, clip, relay.url(fmt.Sprintf("cam%d", i))); err != nil {
			return err
		}
	}

	// Lookout, with a camera for each.
	lk, api, _, err := startBenchLookout(*binary, dir)
	if err != nil {
		return err
	}
	defer func() { _ = lk.Process.Signal(syscall.SIGTERM); _ = lk.Wait() }()
	for i := range *n {
		if err := api.post("/api/v1/cameras", map[string]any{"id": fmt.Sprintf("cam%d", i), "name": "bench", "site_id": "bench",
			"url": relay.url(fmt.Sprintf("cam%d", i)), "lat": 27, "lon": 102}); err != nil {
			return err
		}
	}
	for i := range *n {
		if err := api.waitLive(fmt.Sprintf("cam%d", i), false); err != nil {
			return err
		}
	}

	// The viewers.
	lat := &latencies{}
	var viewers []*benchViewer
	defer func() {
		for _, v := range viewers {
			v.close()
		}
	}()
	for i := range *n {
		for range *perCam {
			v, err := watch(api, fmt.Sprintf("cam%d", i), relay, lat)
			if err != nil {
				return err
			}
			viewers = append(viewers, v)
		}
	}
	time.Sleep(3 * time.Second) // every stream settled
	lat.reset()
	framesBefore := 0
	for _, v := range viewers {
		framesBefore += v.frames()
	}
	cpu0, _ := cpuTicks(lk.Process.Pid)
	began := time.Now()
	time.Sleep(*duration)
	cpu1, _ := cpuTicks(lk.Process.Pid)
	elapsed := time.Since(began)
	cpuPct := 100 * float64(cpu1-cpu0) / float64(clockTicks()) / elapsed.Seconds()
	received := -framesBefore
	for _, v := range viewers {
		received += v.frames()
	}
	delays := lat.sorted()

	// New viewers joining, one at a time, at random points of the group of
	// pictures: offer to the first whole frame.
	var firsts []time.Duration
	for j := range *joins {
		start := time.Now()
		v, err := watch(api, fmt.Sprintf("cam%d", j%*n), relay, nil)
		if err != nil {
			return err
		}
		select {
		case <-v.firstFrame:
			firsts = append(firsts, v.firstAt.Sub(start))
		case <-time.After(5 * time.Second):
		}
		v.close()
		time.Sleep(time.Duration(137+j*53%400) * time.Millisecond) // spread over the 2 s group of pictures
	}
	sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })

	pct := func(d []time.Duration, q float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		return d[min(len(d)-1, int(float64(len(d))*q))].Round(10 * time.Microsecond)
	}
	fmt.Fprintf(out, "cameras: %d cameras (720p25 H.264 %sbit/s, ffmpeg -c copy into RTSP) to %d WHEP viewers each, %d streams out; %s\n",
		*n, strings.TrimSuffix(*bitrate, "k")+"k", *perCam, *n**perCam, elapsed.Round(time.Second))
	fmt.Fprintf(out, "  lookout CPU %.1f%% of one core (%.2f%% per outgoing stream); frames received by the viewers %d (%.1f/s per stream)\n",
		cpuPct, cpuPct/float64(*n**perCam), received, float64(received)/elapsed.Seconds()/float64(*n**perCam))
	if q50, q99, err := api.histogramQuantiles("lookout_camera_forward_seconds"); err == nil {
		fmt.Fprintf(out, "  added by lookout, camera packet in to WebRTC packet out (its histogram, every packet): p50 <= %s  p99 <= %s\n", q50, q99)
	}
	fmt.Fprintf(out, "  RTSP server's write to viewer's receipt, per frame, through the bench's own receivers on the same cores (%d frames): p50 %s  p99 %s  max %s\n",
		len(delays), pct(delays, 0.5), pct(delays, 0.99), pct(delays, 1))
	fmt.Fprintf(out, "  new viewer, offer to its first whole frame (%d of %d joins): p50 %s  p99 %s  max %s\n",
		len(firsts), *joins, pct(firsts, 0.5), pct(firsts, 0.99), pct(firsts, 1))
	if len(firsts) < *joins {
		return fmt.Errorf("%d joins got no frame", *joins-len(firsts))
	}
	return nil
}

// waitLive waits up to 30 s for a camera to be live with a keyframe cached
// (and its sub stream live too, with sub).
func (a *apiClient) waitLive(id string, sub bool) error {
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var c struct {
			State  string
			Stream struct {
				Source struct{ Keyframes int }
				Sub    *struct{ State string }
			}
		}
		if err := a.do("GET", "/api/v1/cameras/"+id, nil, &c); err == nil && c.State == "live" && c.Stream.Source.Keyframes > 0 &&
			(!sub || (c.Stream.Sub != nil && c.Stream.Sub.State == "live")) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("camera %s not live (sub stream asked: %v)", id, sub)
		}
	}
}

// encodeClip makes 20 s of testsrc2 at size (25 fps, H.264 baseline, a
// keyframe every 2 s, no B-frames) into path; bitrate "" leaves it to
// the encoder.
func encodeClip(ffmpeg, size, bitrate, path string) error {
	args := []string{"-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=" + size + ":rate=25",
		"-t", "20", "-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-preset", "veryfast"}
	if bitrate != "" {
		args = append(args, "-b:v", bitrate, "-maxrate", bitrate, "-bufsize", bitrate)
	}
	args = append(args, "-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-bf", "0", path)
	if b, err := exec.Command(ffmpeg, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("encode a %s clip: %v %s", size, err, b)
	}
	return nil
}

// rtspPublishers are ffmpeg processes publishing clips, looped, into RTSP.
type rtspPublishers []*exec.Cmd

// start publishes clip, copied, to url.
func (ps *rtspPublishers) start(ffmpeg, clip, url string) error {
	p := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1", "-i", clip,
		"-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", url)
	if err := p.Start(); err != nil {
		return err
	}
	*ps = append(*ps, p)
	return nil
}

func (ps rtspPublishers) stop() {
	for _, p := range ps {
		_ = p.Process.Signal(syscall.SIGTERM)
		_ = p.Wait()
	}
}

// startBenchLookout starts binary on fresh loopback ports with its data in
// dir (demo off), logs in as admin and makes a site "bench" in the root
// organisation, whose id it returns. The caller stops the process.
func startBenchLookout(binary, dir string) (*exec.Cmd, *apiClient, string, error) {
	httpAddr, _ := freeAddr()
	mqttAddr, _ := freeAddr()
	lk := exec.Command(binary, "serve")
	lk.Env = append(os.Environ(), "LOOKOUT_DATA_DIR="+filepath.Join(dir, "data"), "LOOKOUT_HTTP_ADDR="+httpAddr,
		"LOOKOUT_MQTT_ADDR="+mqttAddr, "LOOKOUT_ADMIN_PASSWORD=bench-admin-password", "LOOKOUT_DEMO=0",
		"LOOKOUT_WEBRTC_ADDR=127.0.0.1:0", "LOOKOUT_TURN_ADDR=127.0.0.1:0")
	if err := lk.Start(); err != nil {
		return nil, nil, "", err
	}
	fail := func(err error) (*exec.Cmd, *apiClient, string, error) {
		_ = lk.Process.Signal(syscall.SIGTERM)
		_ = lk.Wait()
		return nil, nil, "", err
	}
	api := &apiClient{base: "http://" + httpAddr}
	if err := api.waitHealthy(20 * time.Second); err != nil {
		return fail(err)
	}
	if err := api.login(); err != nil {
		return fail(err)
	}
	var orgs struct{ Items []struct{ ID string } }
	if err := api.do("GET", "/api/v1/orgs", nil, &orgs); err != nil || len(orgs.Items) == 0 {
		return fail(fmt.Errorf("orgs: %v", err))
	}
	root := orgs.Items[0].ID
	if err := api.post("/api/v1/sites", map[string]any{"id": "bench", "name": "bench", "kind": "street", "org_id": root, "lat": 27, "lon": 102}); err != nil {
		return fail(err)
	}
	return lk, api, root, nil
}

// relay is a multi-path RTSP server: ffmpeg publishes each camera to it,
// lookout pulls from it; it notes when it wrote each frame's last packet.
type relay struct {
	srv *gortsplib.Server

	mu      sync.Mutex
	streams map[string]*gortsplib.ServerStream
	pubs    map[*gortsplib.ServerSession]string
	// sent[path][timestamp] is when the frame with that RTP timestamp was
	// written (its marker packet), kept for a few seconds.
	sent map[string]map[uint32]time.Time
}

func startRelay() (*relay, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	r := &relay{streams: map[string]*gortsplib.ServerStream{}, pubs: map[*gortsplib.ServerSession]string{}, sent: map[string]map[uint32]time.Time{}}
	r.srv = &gortsplib.Server{Handler: r, RTSPAddress: addr}
	if err := r.srv.Start(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *relay) url(path string) string { return "rtsp://" + r.srv.RTSPAddress + "/" + path }

func (r *relay) close() { r.srv.Close() }

func pathOf(p string) string { return strings.TrimPrefix(strings.TrimSuffix(p, "/"), "/") }

func (r *relay) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.streams[pathOf(ctx.Path)]
	if !ok {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, st, nil
}

func (r *relay) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	path := pathOf(ctx.Path)
	if old, ok := r.streams[path]; ok {
		old.Close()
	}
	st := &gortsplib.ServerStream{Server: r.srv, Desc: ctx.Description}
	if err := st.Initialize(); err != nil {
		return &base.Response{StatusCode: base.StatusBadRequest}, err
	}
	r.streams[path], r.pubs[ctx.Session] = st, path
	r.sent[path] = map[uint32]time.Time{}
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (r *relay) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return &base.Response{StatusCode: base.StatusOK}, nil, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.streams[pathOf(ctx.Path)]
	if !ok {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, st, nil
}

func (r *relay) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (r *relay) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	r.mu.Lock()
	path := r.pubs[ctx.Session]
	st := r.streams[path]
	r.mu.Unlock()
	ctx.Session.OnPacketRTPAny(func(medi *description.Media, _ format.Format, pkt *rtp.Packet) {
		_ = st.WritePacketRTP(medi, pkt)
		if pkt.Marker {
			now := time.Now()
			r.mu.Lock()
			m := r.sent[path]
			m[pkt.Timestamp] = now
			if len(m) > 1000 { // a few seconds of frames
				for ts, at := range m {
					if now.Sub(at) > 10*time.Second {
						delete(m, ts)
					}
				}
			}
			r.mu.Unlock()
		}
	})
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// sentAt is when the relay wrote a frame, if it remembers it.
func (r *relay) sentAt(path string, ts uint32) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.sent[path][ts]
	return at, ok
}

// latencies collects per-frame delays.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) reset() {
	l.mu.Lock()
	l.d = l.d[:0]
	l.mu.Unlock()
}

func (l *latencies) sorted() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]time.Duration(nil), l.d...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// benchViewer is a pion WebRTC receiver watching one camera over WHEP.
type benchViewer struct {
	pc         *webrtc.PeerConnection
	api        *apiClient
	location   string
	mu         sync.Mutex
	nFrames    int
	firstFrame chan struct{}
	firstAt    time.Time
}

func (v *benchViewer) frames() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.nFrames
}

func (v *benchViewer) close() {
	if v.location != "" {
		req, _ := http.NewRequest("DELETE", v.api.base+v.location, nil)
		req.Header.Set("Authorization", "Bearer "+v.api.token)
		if resp, err := v.api.http.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	_ = v.pc.Close()
}

// watch offers to watch a camera; lat (if not nil) gets each frame's delay
// from the relay's write.
func watch(api *apiClient, camera string, r *relay, lat *latencies) (*benchViewer, error) {
	var me webrtc.MediaEngine
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, PayloadType: 102}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetInterfaceFilter(func(string) bool { return true })
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	v := &benchViewer{pc: pc, api: api, firstFrame: make(chan struct{})}
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		pc.Close()
		return nil, err
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		var p rtp.Packet
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			if p.Unmarshal(buf[:n]) != nil || !p.Marker {
				continue
			}
			now := time.Now()
			v.mu.Lock()
			v.nFrames++
			if v.nFrames == 1 {
				v.firstAt = now
				close(v.firstFrame)
			}
			v.mu.Unlock()
			if lat != nil {
				if at, ok := r.sentAt(camera, p.Timestamp); ok {
					lat.add(now.Sub(at))
				}
			}
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		pc.Close()
		return nil, err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		pc.Close()
		return nil, err
	}
	<-gathered
	req, _ := http.NewRequestWithContext(context.Background(), "POST", api.base+"/api/v1/whep/cameras/"+camera, strings.NewReader(pc.LocalDescription().SDP))
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+api.token)
	resp, err := api.http.Do(req)
	if err != nil {
		pc.Close()
		return nil, err
	}
	defer resp.Body.Close()
	var answer bytes.Buffer
	_, _ = answer.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		pc.Close()
		return nil, fmt.Errorf("whep %s: %s %s", camera, resp.Status, answer.String())
	}
	v.location = resp.Header.Get("Location")
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer.String()}); err != nil {
		v.close()
		return nil, err
	}
	return v, nil
}
