package record

import (
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"
)

// H.264 goes into fragmented MP4 (mediacommon's fmp4, as mediamtx records
// with): an init segment (ftyp, moov) when the first keyframe shows the
// parameter sets, then a fragment (moof, mdat) at a keyframe once the one
// before is a second long, or at 5 s or 8 MiB. A fragment is complete on
// disk, so a .part cut short plays up to its last fragment; the parameter
// sets stay in the samples too, so that a change of resolution (simulcast,
// a bandwidth drop) decodes. B-frames are not expected (WebRTC does not
// send them): samples are in presentation order, with no offsets.
const (
	fragmentKeyAfter = 1 // s
	fragmentMax      = 5 // s
	fragmentBytes    = 8 << 20
)

type mp4Muxer struct {
	out   *output
	clock int64
	seq   uint32
	buf   seekablebuffer.Buffer

	// A sample is written once the next one gives its duration.
	pending    *fmp4.Sample
	pendingPTS int64

	frag      []*fmp4.Sample
	fragStart int64
	fragBytes int
}

func newMP4(out *output, clock int64, sps, pps []byte) (*mp4Muxer, error) {
	m := &mp4Muxer{out: out, clock: clock}
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{
		ID:        1,
		TimeScale: uint32(clock),
		Codec:     &mp4.CodecH264{SPS: sps, PPS: pps},
	}}}
	if err := init.Marshal(&m.buf); err != nil {
		return nil, err
	}
	if _, err := out.Write(m.buf.Bytes()); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *mp4Muxer) write(pts int64, key bool, data []byte) error {
	if m.pending != nil {
		if err := m.add(pts - m.pendingPTS); err != nil {
			return err
		}
	}
	m.pending = &fmp4.Sample{IsNonSyncSample: !key, Payload: data}
	m.pendingPTS = pts
	return nil
}

// add puts the pending sample, now of known duration, into the fragment,
// starting a new fragment first when it is time.
func (m *mp4Muxer) add(dur int64) error {
	s := m.pending
	m.pending = nil
	s.Duration = uint32(min(max(dur, 0), 1<<32-1))
	if len(m.frag) > 0 {
		age := m.pendingPTS - m.fragStart
		if age >= fragmentMax*m.clock || m.fragBytes >= fragmentBytes || (!s.IsNonSyncSample && age >= fragmentKeyAfter*m.clock) {
			if err := m.flush(); err != nil {
				return err
			}
		}
	}
	if len(m.frag) == 0 {
		m.fragStart = m.pendingPTS
	}
	m.frag = append(m.frag, s)
	m.fragBytes += len(s.Payload)
	return nil
}

func (m *mp4Muxer) flush() error {
	if len(m.frag) == 0 {
		return nil
	}
	m.seq++
	part := fmp4.Part{SequenceNumber: m.seq, Tracks: []*fmp4.PartTrack{{
		ID:       1,
		BaseTime: uint64(m.fragStart),
		Samples:  m.frag,
	}}}
	m.buf.Reset()
	if err := part.Marshal(&m.buf); err != nil {
		return err
	}
	clear(m.frag)
	m.frag, m.fragBytes = m.frag[:0], 0
	if _, err := m.out.Write(m.buf.Bytes()); err != nil {
		return err
	}
	return m.out.bw.Flush() // a whole fragment on disk plays after a crash
}

func (m *mp4Muxer) finish(end int64) error {
	if m.pending != nil {
		if err := m.add(end - m.pendingPTS); err != nil {
			return err
		}
	}
	return m.flush()
}
