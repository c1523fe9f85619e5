package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/at-wat/ebml-go"
	"github.com/at-wat/ebml-go/webm"
)

// The WebM layout: the EBML header; a Segment whose size is written as
// unknown at first and patched at the end; in it a Void that becomes the
// SeekHead at the end, Info (with a Duration patched at the end), Tracks,
// Clusters of known size as they fill, and Cues. A file cut short (the
// .part of a dead process) is thus still a valid live-style WebM.
//
// ebml-go's webm.NewSimpleBlockWriter would do the clusters, but it writes
// neither a duration nor cues (ffprobe then shows no duration and players
// cannot seek an hours-long hearing), runs goroutines of its own and
// panics on a write error; so the elements are marshalled here with its
// ebml package and webm types.

// Element IDs used when writing raw bytes.
var (
	idSegment = []byte{0x18, 0x53, 0x80, 0x67}
	idInfo    = []byte{0x15, 0x49, 0xa9, 0x66}
	idTracks  = []byte{0x16, 0x54, 0xae, 0x6b}
	idCues    = []byte{0x1c, 0x53, 0xbb, 0x6b}
	idVoid    = byte(0xec)
	// Duration (0x4489), its size (8 bytes), and the float.
	durationHead = []byte{0x44, 0x89, 0x88}
)

const (
	// A video cluster ends at a keyframe once it is 1 s long (so that a
	// seek lands on one), or at 5 s (block times are 16-bit milliseconds
	// from the cluster's); an audio cluster at 2 s; either at 8 MiB. Each
	// goes to the file when it ends, so that a process that dies loses
	// seconds, not minutes.
	clusterMax      = 5000 // ms
	clusterAudioMax = 2000 // ms
	clusterKeyAfter = 1000 // ms
	clusterBytes    = 8 << 20
	opusSeekPreRoll = 80 * time.Millisecond // what the WebM Opus mapping asks for
)

type webmSeek struct {
	SeekID       []byte `ebml:"SeekID"`
	SeekPosition uint64 `ebml:"SeekPosition,size=8"` // fixed size: rewritten in place
}

type webmSeekHead struct {
	Seek []webmSeek `ebml:"Seek"`
}

// webmInfo is webm.Info with Duration first and of a fixed size, so that
// finish can write it in place.
type webmInfo struct {
	Duration      float64   `ebml:"Duration,size=8"`
	TimecodeScale uint64    `ebml:"TimecodeScale"`
	MuxingApp     string    `ebml:"MuxingApp"`
	WritingApp    string    `ebml:"WritingApp"`
	DateUTC       time.Time `ebml:"DateUTC"`
}

type webmCluster struct {
	Timecode    uint64       `ebml:"Timecode"`
	SimpleBlock []ebml.Block `ebml:"SimpleBlock"`
}

type webmMuxer struct {
	out   *output
	clock int64
	video bool

	segStart  int64 // offset of the Segment's data: SeekHead and Cues positions count from it
	voidAt    int64 // the SeekHead goes here
	voidLen   int
	infoAt    int64
	tracksAt  int64
	durAt     int64 // the Duration's float
	lastMS    int64
	buf       bytes.Buffer
	cluster   webmCluster
	clusterMS int64
	bytes     int
	cues      webm.Cues
}

func newWebM(out *output, c codecInfo, clock int64, width, height int, date time.Time) (*webmMuxer, error) {
	m := &webmMuxer{out: out, clock: clock, video: c.video}
	track := webm.TrackEntry{
		TrackNumber: 1,
		TrackUID:    rand.Uint64() | 1,
	}
	if c.video {
		track.Name, track.CodecID, track.TrackType = "video", "V_VP8", 1
		track.Video = &webm.Video{PixelWidth: uint64(width), PixelHeight: uint64(height)}
	} else {
		track.Name, track.CodecID, track.TrackType = "audio", "A_OPUS", 2
		track.Audio = &webm.Audio{SamplingFrequency: 48000, Channels: 2}
		track.SeekPreRoll = uint64(opusSeekPreRoll)
		track.CodecPrivate = opusHead(2)
	}

	if err := ebml.Marshal(&struct {
		Header *webm.EBMLHeader `ebml:"EBML"`
	}{webm.DefaultEBMLHeader}, out); err != nil {
		return nil, err
	}
	// Unknown size for now (8 bytes, so that finish can write it).
	if _, err := out.Write(append(slices.Clone(idSegment), 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)); err != nil {
		return nil, err
	}
	m.segStart = out.off

	// Room for the SeekHead: the same head with positions yet unknown.
	head, err := m.seekHead(0, 0, 0)
	if err != nil {
		return nil, err
	}
	m.voidAt, m.voidLen = out.off, len(head)
	if _, err := out.Write(void(len(head))); err != nil {
		return nil, err
	}

	m.infoAt = out.off
	m.buf.Reset()
	if err := ebml.Marshal(&struct {
		Info webmInfo `ebml:"Info"`
	}{webmInfo{TimecodeScale: 1000000, MuxingApp: "lookout", WritingApp: "lookout sfu/record", DateUTC: date.UTC()}}, &m.buf); err != nil {
		return nil, err
	}
	info := m.buf.Bytes()
	at := 4 + vintLen(info[4])
	if len(info) < at+11 || !bytes.Equal(info[at:at+3], durationHead) {
		return nil, errors.New("webm: Duration not where expected")
	}
	m.durAt = m.infoAt + int64(at) + 3
	if _, err := out.Write(info); err != nil {
		return nil, err
	}

	m.tracksAt = out.off
	m.buf.Reset()
	if err := ebml.Marshal(&struct {
		Tracks webm.Tracks `ebml:"Tracks"`
	}{webm.Tracks{TrackEntry: []webm.TrackEntry{track}}}, &m.buf); err != nil {
		return nil, err
	}
	if _, err := out.Write(m.buf.Bytes()); err != nil {
		return nil, err
	}
	m.clusterMS, m.lastMS = -1, -1
	return m, nil
}

func (m *webmMuxer) write(pts int64, key bool, data []byte) error {
	ms := pts * 1000 / m.clock
	if ms <= m.lastMS {
		// The timeline only goes forward, but rounding to milliseconds
		// could give two blocks one time, which players refuse.
		ms = m.lastMS + 1
	}
	m.lastMS = ms
	if m.clusterMS >= 0 {
		age := ms - m.clusterMS
		if age >= clusterMax || m.bytes >= clusterBytes || (m.video && key && age >= clusterKeyAfter) ||
			(!m.video && age >= clusterAudioMax) {
			if err := m.flushCluster(); err != nil {
				return err
			}
		}
	}
	if m.clusterMS < 0 {
		m.clusterMS = ms
		m.cluster = webmCluster{Timecode: uint64(ms), SimpleBlock: m.cluster.SimpleBlock[:0]}
		if key {
			m.cues.CuePoint = append(m.cues.CuePoint, webm.CuePoint{
				CueTime: uint64(ms),
				CueTrackPositions: []webm.CueTrackPosition{
					{CueTrack: 1, CueClusterPosition: uint64(m.out.off - m.segStart)},
				},
			})
		}
	}
	m.cluster.SimpleBlock = append(m.cluster.SimpleBlock, ebml.Block{
		TrackNumber: 1,
		Timecode:    int16(ms - m.clusterMS),
		Keyframe:    key,
		Data:        [][]byte{data},
	})
	m.bytes += len(data)
	return nil
}

func (m *webmMuxer) flushCluster() error {
	if m.clusterMS < 0 {
		return nil
	}
	m.buf.Reset()
	if err := ebml.Marshal(&struct {
		Cluster *webmCluster `ebml:"Cluster"`
	}{&m.cluster}, &m.buf); err != nil {
		return err
	}
	clear(m.cluster.SimpleBlock) // let the frames go
	m.cluster.SimpleBlock = m.cluster.SimpleBlock[:0]
	m.clusterMS, m.bytes = -1, 0
	if _, err := m.out.Write(m.buf.Bytes()); err != nil {
		return err
	}
	return m.out.bw.Flush()
}

func (m *webmMuxer) finish(end int64) error {
	if err := m.flushCluster(); err != nil {
		return err
	}
	cuesAt := m.out.off
	m.buf.Reset()
	if err := ebml.Marshal(&struct {
		Cues *webm.Cues `ebml:"Cues"`
	}{&m.cues}, &m.buf); err != nil {
		return err
	}
	if _, err := m.out.Write(m.buf.Bytes()); err != nil {
		return err
	}
	// Now the sizes and places are known.
	size := uint64(m.out.off - m.segStart)
	sizeField := make([]byte, 8)
	binary.BigEndian.PutUint64(sizeField, size)
	sizeField[0] = 0x01 // an 8-byte EBML size
	if err := m.out.patch(m.segStart-8, sizeField); err != nil {
		return err
	}
	head, err := m.seekHead(m.infoAt-m.segStart, m.tracksAt-m.segStart, cuesAt-m.segStart)
	if err != nil {
		return err
	}
	if len(head) != m.voidLen {
		return errors.New("webm: SeekHead changed size")
	}
	if err := m.out.patch(m.voidAt, head); err != nil {
		return err
	}
	dur := make([]byte, 8)
	binary.BigEndian.PutUint64(dur, math.Float64bits(float64(end)*1000/float64(m.clock)))
	return m.out.patch(m.durAt, dur)
}

// seekHead marshals a SeekHead pointing at Info, Tracks and Cues; its size
// does not depend on the positions.
func (m *webmMuxer) seekHead(info, tracks, cues int64) ([]byte, error) {
	var b bytes.Buffer
	err := ebml.Marshal(&struct {
		SeekHead webmSeekHead `ebml:"SeekHead"`
	}{webmSeekHead{Seek: []webmSeek{
		{SeekID: idInfo, SeekPosition: uint64(info)},
		{SeekID: idTracks, SeekPosition: uint64(tracks)},
		{SeekID: idCues, SeekPosition: uint64(cues)},
	}}}, &b)
	return b.Bytes(), err
}

// void is an EBML Void element n bytes long in all (n >= 2).
func void(n int) []byte {
	b := make([]byte, n)
	b[0] = idVoid
	if n-2 < 0x7f {
		b[1] = 0x80 | byte(n-2)
	} else {
		binary.BigEndian.PutUint16(b[1:], 0x4000|uint16(n-3))
	}
	return b
}

// vintLen is the length of an EBML variable-size integer from its first
// byte.
func vintLen(first byte) int {
	for i := 0; i < 8; i++ {
		if first&(0x80>>i) != 0 {
			return i + 1
		}
	}
	return 8
}

// opusHead is the Opus identification header (RFC 7845, 5.1) that WebM
// keeps as the track's CodecPrivate. Pre-skip is 0: the recording joins a
// running encoder, there is no encoder delay to remove.
func opusHead(channels int) []byte {
	b := []byte("OpusHead\x01")
	b = append(b, byte(channels), 0, 0) // pre-skip
	b = binary.LittleEndian.AppendUint32(b, 48000)
	b = append(b, 0, 0, 0) // output gain, mapping family 0
	return b
}
