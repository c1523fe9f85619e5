package demo

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
)

// maxClipBytes bounds each committed clip.
const maxClipBytes = 2 << 20

// Every demo camera has its clip, and every committed clip is small and
// what browsers decode: constrained baseline 4:2:0, 640x360 at 25 fps, an
// IDR with its parameter sets every 2 s from the first frame on, 10-20 s.
func TestCommittedClips(t *testing.T) {
	f, err := LoadSites()
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Cameras) != 4 {
		t.Fatalf("%d demo cameras", len(f.Cameras))
	}
	if _, err := CameraStreams(f.Cameras); err != nil {
		t.Fatal(err)
	}
	files, err := fs.Glob(clipFiles, "clips/*.h264")
	if err != nil || len(files) != len(f.Cameras) {
		t.Fatalf("clips %v (%v) for %d cameras", files, err, len(f.Cameras))
	}
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			data, err := fs.ReadFile(clipFiles, name)
			if err != nil {
				t.Fatal(err)
			}
			if len(data) >= maxClipBytes {
				t.Fatalf("%d bytes, over 2 MiB", len(data))
			}
			c, err := ParseClip(data)
			if err != nil {
				t.Fatal(err)
			}
			var sps h264.SPS
			if err := sps.Unmarshal(c.SPS); err != nil {
				t.Fatal(err)
			}
			// profile_idc 66 with constraint_set1: constrained baseline, whose
			// chroma is 4:2:0 by definition (chroma_format_idc is not coded).
			if sps.ProfileIdc != 66 || !sps.ConstraintSet1Flag || !sps.FrameMbsOnlyFlag {
				t.Fatalf("profile %d, constraint_set1 %v, frame_mbs_only %v", sps.ProfileIdc, sps.ConstraintSet1Flag, sps.FrameMbsOnlyFlag)
			}
			if c.Width != 640 || c.Height != 360 || c.FPS != 25 {
				t.Fatalf("%dx%d at %d fps", c.Width, c.Height, c.FPS)
			}
			if d := c.Duration(); d < 10*time.Second || d > 20*time.Second || len(c.Frames)%50 != 0 {
				t.Fatalf("%d frames, %s", len(c.Frames), d)
			}
			for i, fr := range c.Frames {
				if fr.IDR != (i%50 == 0) {
					t.Fatalf("frame %d: IDR %v", i, fr.IDR)
				}
				for _, p := range fr.Payloads {
					if len(p) > clipPayloadMaxSize {
						t.Fatalf("frame %d: payload of %d bytes", i, len(p))
					}
				}
			}
		})
	}
}

// ffprobe, when installed, reads the clips as yuv420p constrained baseline.
func TestCommittedClipsProbe(t *testing.T) {
	bin, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Skip("ffprobe not installed")
	}
	files, _ := fs.Glob(clipFiles, "clips/*.h264")
	for _, name := range files {
		data, _ := fs.ReadFile(clipFiles, name)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := exec.CommandContext(ctx, bin, "-v", "error", "-f", "h264", "-i", "pipe:0",
			"-select_streams", "v:0", "-show_entries", "stream=codec_name,profile,pix_fmt,width,height", "-of", "default=noprint_wrappers=1")
		cmd.Stdin = bytes.NewReader(data)
		out, err := cmd.Output()
		cancel()
		if err != nil {
			t.Fatalf("%s: ffprobe: %v", name, err)
		}
		for _, want := range []string{"codec_name=h264", "profile=Constrained Baseline", "pix_fmt=yuv420p", "width=640", "height=360"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%s: no %s in\n%s", name, want, out)
			}
		}
	}
}

// annexB makes an Annex-B stream of the NAL units.
func annexB(nalus ...[]byte) []byte {
	var b []byte
	for _, n := range nalus {
		b = append(b, 0, 0, 0, 1)
		b = append(b, n...)
	}
	return b
}

func TestParseClip(t *testing.T) {
	real, err := LoadClip("xld-dam.h264")
	if err != nil {
		t.Fatal(err)
	}
	sps, pps := real.SPS, real.PPS
	aud := []byte{0x09, 0xf0}
	idr := func(b byte) []byte { return []byte{0x65, 0x88, b, b} } // first_mb_in_slice 0
	p := func(b byte) []byte { return []byte{0x41, 0x9a, b, b} }   // first_mb_in_slice 0
	p2 := func(b byte) []byte { return []byte{0x41, 0x40, b, b} }  // a second slice of the picture
	eos := []byte{0x0b}

	type frames = [][]h264.NALUType
	tests := []struct {
		name    string
		stream  []byte
		want    frames // the NAL unit types of each frame, in order
		wantErr error
	}{
		{"params, idr, p", annexB(sps, pps, idr(1), p(2), p(3)), frames{{7, 8, 5}, {1}, {1}}, nil},
		{"delimiters and end of stream dropped", annexB(aud, sps, pps, idr(1), aud, p(2), eos), frames{{7, 8, 5}, {1}}, nil},
		{"two slices make one frame", annexB(sps, pps, idr(1), p(2), p2(2), p(3)), frames{{7, 8, 5}, {1, 1}, {1}}, nil},
		{"params put before a later IDR", annexB(sps, pps, idr(1), p(2), idr(3)), frames{{7, 8, 5}, {1}, {7, 8, 5}}, nil},
		{"no parameter sets", annexB(idr(1), p(2)), nil, errNoParams},
		{"first not IDR", annexB(sps, pps, p(1), idr(2)), nil, errFirstNoIDR},
		{"nothing but parameter sets", annexB(sps, pps), nil, errNoFrames},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseClip(tt.stream)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			got, want := depacketize(t, c), tt.want
			if len(got) != len(want) {
				t.Fatalf("frames %v, want %v", got, want)
			}
			for i := range want {
				if len(got[i]) != len(want[i]) {
					t.Fatalf("frame %d: %v, want %v", i, got[i], want[i])
				}
				for j := range want[i] {
					if got[i][j] != want[i][j] {
						t.Fatalf("frame %d: %v, want %v", i, got[i], want[i])
					}
				}
				if c.Frames[i].IDR != (want[i][len(want[i])-1] == h264.NALUTypeIDR) {
					t.Fatalf("frame %d: IDR %v", i, c.Frames[i].IDR)
				}
			}
		})
	}
	if _, err := ParseClip([]byte("not h264")); err == nil {
		t.Fatal("garbage parsed")
	}
}

// depacketize decodes each frame's payloads back into NAL unit types.
func depacketize(t *testing.T, c *Clip) [][]h264.NALUType {
	t.Helper()
	dec := &rtph264.Decoder{PacketizationMode: 1}
	if err := dec.Init(); err != nil {
		t.Fatal(err)
	}
	var out [][]h264.NALUType
	seq := uint16(0)
	for i, f := range c.Frames {
		var au [][]byte
		for j, payload := range f.Payloads {
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(i * 3600),
				Marker: j == len(f.Payloads)-1}, Payload: payload}
			seq++
			var err error
			au, err = dec.Decode(pkt)
			if err != nil && !errors.Is(err, rtph264.ErrMorePacketsNeeded) {
				t.Fatal(err)
			}
		}
		var types []h264.NALUType
		for _, n := range au {
			types = append(types, h264.NALUType(n[0]&0x1f))
		}
		out = append(out, types)
	}
	return out
}
