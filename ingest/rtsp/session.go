package rtsp

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

// userAgent is what the puller calls itself to cameras.
const userAgent = "lookout"

// session is one connection to the camera, from DESCRIBE to its end.
type session struct {
	p         *Puller
	codec     string
	paramSets [][]byte

	// Written by gortsplib's goroutines (the packet callback, transport
	// switches, loss reports), read by the loop's.
	started    atomic.Bool
	liveAt     atomic.Int64 // Unix ns
	switched   atomic.Bool  // gortsplib moved from UDP to TCP
	lost       atomic.Uint64
	decodeErrs atomic.Uint64
}

// attempt runs one session to its end and returns how long it was live
// (zero if it never was) and why it ended. The sink is stopped, if it was
// started, before attempt returns.
func (p *Puller) attempt() (liveFor time.Duration, err error) {
	s := &session{p: p}
	c := &gortsplib.Client{
		Scheme:      p.url.Scheme,
		Host:        p.url.Host,
		Transport:   p.transport,
		ReadTimeout: p.readTimeout,
		UserAgent:   userAgent,
		OnTransportSwitch: func(err error) {
			s.switched.Store(true)
			p.log.Info("camera: switching to TCP", "why", err.Error())
		},
		OnPacketsLost: func(n uint64) {
			s.lost.Add(n)
			p.lost.Add(n)
		},
		OnDecodeError: func(error) { s.decodeErrs.Add(1) },
	}
	if p.tlsConfig != nil {
		c.TLSConfig = p.tlsConfig.Clone()
	}
	if err := c.Start2(); err != nil {
		return 0, err
	}
	// Close ends a session at any step: gortsplib answers a pending
	// request with an error once its client is closed.
	stop := context.AfterFunc(p.ctx, c.Close)
	err = s.run(c)
	stop()
	c.Close() // no callback runs after this
	if s.started.Load() {
		p.sink.Stop()
		liveFor = time.Since(time.Unix(0, s.liveAt.Load()))
	}
	if lost, bad := s.lost.Load(), s.decodeErrs.Load(); lost > 0 || bad > 0 {
		p.log.Info("camera session ended with losses", "packets_lost", lost, "decode_errors", bad)
	}
	return liveFor, err
}

// run describes, sets up the video and plays it, then waits for the end.
func (s *session) run(c *gortsplib.Client) error {
	p := s.p
	desc, _, err := c.Describe(p.url)
	if err != nil {
		return err
	}
	medi, forma, err := s.pickVideo(desc)
	if err != nil {
		return err
	}
	p.setCodec(s.codec)
	if _, err := c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		return err
	}
	c.OnPacketRTP(medi, forma, s.onRTP)
	if _, err := c.Play(nil); err != nil {
		return err
	}
	return s.wait(c)
}

// pickVideo finds the first H.264 or H.265 format and notes the codec and
// the SDP's parameter sets; without one it says what the stream holds.
func (s *session) pickVideo(desc *description.Session) (*description.Media, format.Format, error) {
	var video, other []string
	for _, m := range desc.Medias {
		if m.IsBackChannel {
			continue
		}
		for _, f := range m.Formats {
			switch f := f.(type) {
			case *format.H264:
				sps, pps := f.SafeParams()
				s.codec, s.paramSets = "H264", [][]byte{slices.Clone(sps), slices.Clone(pps)}
				return m, f, nil
			case *format.H265:
				vps, sps, pps := f.SafeParams()
				s.codec, s.paramSets = "H265", [][]byte{slices.Clone(vps), slices.Clone(sps), slices.Clone(pps)}
				return m, f, nil
			}
			if m.Type == description.MediaTypeVideo {
				video = append(video, f.Codec())
			} else {
				other = append(other, string(m.Type)+" "+f.Codec())
			}
		}
	}
	if len(video) > 0 {
		return nil, nil, &mediaError{reason: ReasonUnsupportedCodec,
			detail: "the camera sends " + strings.Join(video, ", ") + " video; only H.264 and H.265 are supported"}
	}
	if len(other) > 0 {
		return nil, nil, &mediaError{reason: ReasonNoVideo, detail: "the stream has no video, only " + strings.Join(other, ", ")}
	}
	return nil, nil, &mediaError{reason: ReasonNoVideo, detail: "the stream has no media"}
}

// onRTP is the hot path: every video packet passes here, on gortsplib's
// reading goroutine. It counts with atomics, allocates nothing after the
// first packet, and never logs.
func (s *session) onRTP(pkt *rtp.Packet) {
	if !s.started.Load() {
		s.goLive()
	}
	p := s.p
	p.bytes.Add(uint64(len(pkt.Payload)))
	if pkt.Marker {
		p.frames.Add(1)
		p.lastFrame.Store(time.Now().UnixNano())
	}
	p.sink.WriteRTP(pkt)
}

// goLive starts the sink and enters the live state, on the first packet.
func (s *session) goLive() {
	p := s.p
	now := time.Now()
	s.liveAt.Store(now.UnixNano())
	s.started.Store(true)
	p.rates.reset(p.sampleNow())
	p.sink.Start(s.codec, s.paramSets)
	p.transition(Status{State: StateLive, Codec: s.codec, Transport: s.transportName(), Since: now})
	p.log.Info("camera live", "codec", s.codec, "transport", s.transportName())
}

func (s *session) transportName() string {
	if t := s.p.transport; t != nil && *t == gortsplib.TransportTCP || s.switched.Load() {
		return "tcp"
	}
	return "udp"
}

// wait returns when the client ends (the camera dropped, a read timed
// out, or Close), feeding the rate window meanwhile.
func (s *session) wait(c *gortsplib.Client) error {
	ended := make(chan error, 1)
	go func() { ended <- c.Wait() }()
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	for {
		select {
		case err := <-ended:
			return err
		case <-tick.C:
			if s.started.Load() {
				s.p.rates.push(s.p.sampleNow())
			}
		}
	}
}
