package clips

import (
	"bytes"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/pmp4"
)

// B-frames: presentation times out of decoding order become decoding
// times (the presentation times in order, moved back by one frame) and
// composition offsets; the presentation starts at its first picture.
func TestWriteMP4Reordered(t *testing.T) {
	// I P B B P B B, in decoding order.
	order := []int64{0, 3, 1, 2, 6, 4, 5}
	seg := &Segment{Codec: H264, Params: [3][]byte{nil, testSPS, testPPS}}
	at := time.Unix(1_750_000_000, 0)
	for i, p := range order {
		seg.Frames = append(seg.Frames, Frame{PTS: 1_000_000 + p*3600, At: at.Add(time.Duration(i) * 40 * time.Millisecond),
			Key: i == 0, Data: []byte{0, 0, 0, 2, 0x41, byte(i)}})
	}
	var out bytes.Buffer
	info, err := seg.WriteMP4(&out)
	if err != nil {
		t.Fatal(err)
	}
	if info.Width != 1920 || info.Height != 1080 || info.Frames != 7 || info.Bytes != int64(out.Len()) || info.Duration != 6*40*time.Millisecond {
		t.Fatalf("info %+v", info)
	}
	if string(out.Bytes()[4:8]) != "ftyp" {
		t.Fatalf("starts with %q", out.Bytes()[4:8])
	}
	var p pmp4.Presentation
	if err := p.Unmarshal(bytes.NewReader(out.Bytes())); err != nil {
		t.Fatal(err)
	}
	tr := p.Tracks[0]
	if tr.TimeScale != 90000 || tr.TimeOffset != -3600 || len(tr.Samples) != 7 {
		t.Fatalf("track: scale %d offset %d samples %d", tr.TimeScale, tr.TimeOffset, len(tr.Samples))
	}
	wantOffsets := []int32{1, 3, 0, 0, 3, 0, 0}
	for i, s := range tr.Samples {
		pl, _ := s.GetPayload()
		if s.Duration != 3600 || s.PTSOffset != wantOffsets[i]*3600 || s.IsNonSyncSample != (i != 0) || !bytes.Equal(pl, seg.Frames[i].Data) {
			t.Errorf("sample %d: %+v", i, s)
		}
	}
}

func TestWriteMP4Refuses(t *testing.T) {
	var out bytes.Buffer
	for name, seg := range map[string]*Segment{
		"empty":   {Codec: H264, Params: [3][]byte{nil, testSPS, testPPS}},
		"bad sps": {Codec: H264, Params: [3][]byte{nil, {0x67}, testPPS}, Frames: []Frame{{Key: true, Data: []byte{0, 0, 0, 1, 0x65}}}},
		"codec":   {Codec: "MJPEG", Frames: []Frame{{Key: true, Data: []byte{0, 0, 0, 1, 0x65}}}},
	} {
		if _, err := seg.WriteMP4(&out); err == nil {
			t.Errorf("%s: written", name)
		}
	}
}
