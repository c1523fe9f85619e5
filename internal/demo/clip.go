package demo

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// clipFiles are the demo cameras' clips, made by scripts/make-demo-clips.sh.
//
//go:embed clips/*.h264
var clipFiles embed.FS

// clipPayloadMaxSize bounds the RTP payloads of a clip, well under any
// path's MTU, so nothing of the demo is lost to fragmentation on the way to
// a browser.
const clipPayloadMaxSize = 1200

// defaultClipFPS is the frame rate of a clip whose SPS does not give one.
const defaultClipFPS = 25

// Clip is an H.264 clip ready to be played in a loop over RTP: its frames
// in decoding order, each already packetized (RFC 6184, packetization mode
// 1). The first frame is an IDR and every IDR carries the SPS and PPS, so a
// loop boundary is a clean keyframe. A Clip is immutable and may be played
// by any number of streams at once.
type Clip struct {
	// SPS and PPS are the parameter sets, for the SDP.
	SPS, PPS []byte
	// Width, Height and FPS are what the SPS says (FPS defaults to 25).
	Width, Height, FPS int
	// Frames are the access units in decoding order.
	Frames []ClipFrame
}

// ClipFrame is one access unit as RTP payloads.
type ClipFrame struct {
	// IDR tells a keyframe.
	IDR bool
	// Payloads are the RTP payloads of the frame; the last one carries the
	// marker bit.
	Payloads [][]byte
}

// FrameDuration is how long each frame shows.
func (c *Clip) FrameDuration() time.Duration { return time.Second / time.Duration(c.FPS) }

// Duration is how long one pass of the clip plays.
func (c *Clip) Duration() time.Duration { return time.Duration(len(c.Frames)) * c.FrameDuration() }

// LoadClip reads one of the embedded clips by file name (e.g. bht-dam.h264).
func LoadClip(name string) (*Clip, error) {
	data, err := fs.ReadFile(clipFiles, "clips/"+name)
	if err != nil {
		return nil, fmt.Errorf("demo clip %s: %w", name, err)
	}
	c, err := ParseClip(data)
	if err != nil {
		return nil, fmt.Errorf("demo clip %s: %w", name, err)
	}
	return c, nil
}

// errNoFrames and the others are why a stream is no clip.
var (
	errNoFrames   = errors.New("no frames")
	errNoParams   = errors.New("no SPS or PPS before the first frame")
	errFirstNoIDR = errors.New("the first frame is not an IDR")
)

// ParseClip splits a raw Annex-B H.264 stream (ITU-T H.264 Annex B) into
// access units and packetizes them. Access unit delimiters, filler data and
// end of sequence or stream are dropped, and SPS and PPS are put before
// every IDR that lacks them.
func ParseClip(annexB []byte) (*Clip, error) {
	var nalus h264.AnnexB
	if err := nalus.Unmarshal(annexB); err != nil {
		return nil, err
	}
	c := &Clip{}
	var aus [][][]byte
	var cur [][]byte
	curHasVCL := false
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		typ := h264.NALUType(n[0] & 0x1f)
		vcl := typ == h264.NALUTypeIDR || typ == h264.NALUTypeNonIDR
		// A new access unit begins (7.4.1.2.3) at a delimiter, parameter
		// set or SEI after a picture, or at a slice that is a picture's
		// first (first_mb_in_slice 0, whose ue(v) code is a single 1 bit).
		starts := curHasVCL && (typ == h264.NALUTypeAccessUnitDelimiter || typ == h264.NALUTypeSPS ||
			typ == h264.NALUTypePPS || typ == h264.NALUTypeSEI || (vcl && len(n) > 1 && n[1]&0x80 != 0))
		if starts {
			aus = append(aus, cur)
			cur, curHasVCL = nil, false
		}
		switch typ {
		case h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeFillerData, h264.NALUTypeEndOfSequence, h264.NALUTypeEndOfStream:
			continue // an end of stream inside a loop would stop a decoder
		case h264.NALUTypeSPS:
			if c.SPS == nil {
				c.SPS = n
			}
		case h264.NALUTypePPS:
			if c.PPS == nil {
				c.PPS = n
			}
		}
		cur = append(cur, n)
		curHasVCL = curHasVCL || vcl
	}
	if curHasVCL {
		aus = append(aus, cur)
	}
	if len(aus) == 0 {
		return nil, errNoFrames
	}
	if c.SPS == nil || c.PPS == nil {
		return nil, errNoParams
	}
	var sps h264.SPS
	if err := sps.Unmarshal(c.SPS); err != nil {
		return nil, fmt.Errorf("SPS: %w", err)
	}
	c.Width, c.Height, c.FPS = sps.Width(), sps.Height(), defaultClipFPS
	if fps := sps.FPS(); fps >= 1 && fps <= 120 {
		c.FPS = int(math.Round(fps))
	}
	if !h264.IsRandomAccess(aus[0]) {
		return nil, errFirstNoIDR
	}
	enc := &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1, PayloadMaxSize: clipPayloadMaxSize}
	if err := enc.Init(); err != nil {
		return nil, err
	}
	for _, au := range aus {
		idr := h264.IsRandomAccess(au)
		if idr {
			au = withParams(au, c.SPS, c.PPS)
		}
		pkts, err := enc.Encode(au)
		if err != nil {
			return nil, err
		}
		f := ClipFrame{IDR: idr, Payloads: make([][]byte, len(pkts))}
		for i, p := range pkts {
			f.Payloads[i] = p.Payload
		}
		c.Frames = append(c.Frames, f)
	}
	return c, nil
}

// withParams returns an IDR access unit that starts with the SPS and PPS:
// as it is when it has both, else with both put in front and any one of
// them it had dropped.
func withParams(au [][]byte, sps, pps []byte) [][]byte {
	hasSPS, hasPPS := false, false
	for _, n := range au {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			hasSPS = true
		case h264.NALUTypePPS:
			hasPPS = true
		}
	}
	if hasSPS && hasPPS {
		return au
	}
	out := make([][]byte, 0, len(au)+2)
	out = append(out, sps, pps)
	for _, n := range au {
		if t := h264.NALUType(n[0] & 0x1f); t != h264.NALUTypeSPS && t != h264.NALUTypePPS {
			out = append(out, n)
		}
	}
	return out
}
