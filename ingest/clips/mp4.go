package clips

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/pmp4"
)

// MP4Info describes an MP4 file written.
type MP4Info struct {
	// Duration is the presentation's, from its sample durations.
	Duration      time.Duration
	Width, Height int
	Frames        int
	Bytes         int64
}

// defaultFrameDuration is given to the last sample, or a lone one, when
// the frames before it tell no other (1/25 s).
const defaultFrameDuration = clockRate / 25

// WriteMP4 writes the segment as one MP4 presentation (ftyp, moov, then
// mdat; a 'avc1' or 'hev1' track with the parameter sets in its sample
// entry), starting at its keyframe.
//
// Decoding times are not in the RTP stream: they are the presentation
// times in ascending order, moved back by the largest reordering (zero
// without B-frames), which yields the composition offsets (ctts) of
// reordered frames; an edit list starts the presentation at its first
// picture. The last sample lasts as long as the one before.
func (s *Segment) WriteMP4(w io.Writer) (MP4Info, error) {
	n := len(s.Frames)
	if n == 0 {
		return MP4Info{}, errors.New("empty segment")
	}
	var codec mp4.Codec
	var info MP4Info
	switch s.Codec {
	case H264:
		var sps h264.SPS
		if err := sps.Unmarshal(s.Params[1]); err != nil {
			return MP4Info{}, fmt.Errorf("h264 sps: %w", err)
		}
		info.Width, info.Height = sps.Width(), sps.Height()
		codec = &mp4.CodecH264{SPS: s.Params[1], PPS: s.Params[2]}
	case H265:
		var sps h265.SPS
		if err := sps.Unmarshal(s.Params[1]); err != nil {
			return MP4Info{}, fmt.Errorf("h265 sps: %w", err)
		}
		info.Width, info.Height = sps.Width(), sps.Height()
		codec = &mp4.CodecH265{VPS: s.Params[0], SPS: s.Params[1], PPS: s.Params[2]}
	default:
		return MP4Info{}, fmt.Errorf("codec %q cannot be written", s.Codec)
	}

	// Decoding times: the presentation times sorted, strictly
	// increasing, and moved back so that none is after its frame's
	// presentation time.
	pts := make([]int64, n)
	for i, f := range s.Frames {
		pts[i] = f.PTS
	}
	dts := slices.Clone(pts)
	slices.Sort(dts)
	for i := 1; i < n; i++ {
		dts[i] = max(dts[i], dts[i-1]+1)
	}
	var shift int64
	for i := range n {
		shift = max(shift, dts[i]-pts[i])
	}

	track := &pmp4.Track{ID: 1, TimeScale: clockRate, Codec: codec, Samples: make([]*pmp4.Sample, n)}
	var total int64
	for i, f := range s.Frames {
		d := int64(defaultFrameDuration)
		switch {
		case i+1 < n:
			d = dts[i+1] - dts[i]
		case i > 0:
			d = dts[i] - dts[i-1]
		}
		if d > 1<<31 {
			return MP4Info{}, fmt.Errorf("frame %d lasts %d ticks", i, d)
		}
		total += d
		data := f.Data
		track.Samples[i] = &pmp4.Sample{
			Duration:        uint32(d),
			PTSOffset:       int32(pts[i] - (dts[i] - shift)),
			IsNonSyncSample: !f.Key,
			PayloadSize:     uint32(len(data)),
			GetPayload:      func() ([]byte, error) { return data, nil },
		}
	}
	// The presentation starts at the first picture shown, shift after the
	// first decoding time.
	track.TimeOffset = -int32(shift)

	cw := &countingWriter{w: w}
	if err := (&pmp4.Presentation{Tracks: []*pmp4.Track{track}}).Marshal(cw); err != nil {
		return MP4Info{}, err
	}
	info.Duration = time.Duration(total-shift) * time.Second / clockRate
	info.Frames = n
	info.Bytes = cw.n
	return info, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
