package record

import (
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// fuzzPackets reads packets from fuzz input: each is a flags byte, a
// two-byte length and that many payload bytes. Flags: bit 0 the marker;
// bits 1-2 the sequence step (0: the same again, 3: a jump); bits 3-4 the
// timestamp step in frames (3: a jump); bit 5 a new SSRC; bit 6 a 1.5 s
// silence before the packet.
func fuzzPackets(data []byte) (pkts []rtp.Packet, at []time.Duration) {
	seq, ts, ssrc := uint16(65500), uint32(4294960000), uint32(1)
	var now time.Duration
	for len(data) >= 3 && len(pkts) < 512 {
		flags, n := data[0], int(data[1])<<8|int(data[2])
		data = data[3:]
		n = min(n, len(data))
		payload := data[:n]
		data = data[n:]
		switch s := flags >> 1 & 3; s {
		case 3:
			seq += 1000
		default:
			seq += uint16(s)
		}
		switch s := flags >> 3 & 3; s {
		case 3:
			ts += 1 << 30
		default:
			ts += uint32(s) * 3000
		}
		if flags&0x20 != 0 {
			ssrc++
		}
		now += 20 * time.Millisecond
		if flags&0x40 != 0 {
			now += 1500 * time.Millisecond
		}
		pkts = append(pkts, rtp.Packet{
			Header:  rtp.Header{Version: 2, Marker: flags&1 != 0, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc},
			Payload: payload,
		})
		at = append(at, now)
	}
	return pkts, at
}

// fuzzInput encodes packets in fuzzPackets' form.
func fuzzInput(pkts ...string) []byte {
	var b []byte
	for _, p := range pkts {
		var flags byte
		fmt.Sscanf(p[:2], "%02x", &flags)
		payload, err := hex.DecodeString(p[3:])
		if err != nil {
			panic(err)
		}
		b = append(b, flags, byte(len(payload)>>8), byte(len(payload)))
		b = append(b, payload...)
	}
	return b
}

// Arbitrary payloads, sequence numbers and timestamps on a VP8, an H.264
// and an Opus track: nothing panics, and Close finishes.
func FuzzWriteRTP(f *testing.F) {
	// Flags "03": marker, next sequence number, same timestamp; "0b":
	// marker, next sequence number and frame.
	vp8Key := "10b05f009d012a4001f00000470885858899848802023a816217fecd684bb93fec7417c03fa0321f6f80ff01fc80d4d5"
	vp8Delta := "1051020012345678"
	stapA := "7800186742c014d90141fb011000000300100000030320f142a480000468cb8cb2"
	idr := "6588840cf2628000a16c9c44130380008028027100023c4000100b003444138a0004e3818e07"
	fuStart, fuEnd := "7c8588840cf2628000a16c9c4413", "7c45a92c83d9907b337a6288a0492a5d"
	f.Add(fuzzInput("03 "+vp8Key, "0b "+vp8Delta, "0b "+vp8Delta))
	f.Add(fuzzInput("02 "+stapA, "03 "+idr, "0a "+fuStart, "03 "+fuEnd))
	f.Add(fuzzInput("02 "+vp8Key, "03 "+vp8Delta, "4b "+vp8Key, "2b "+vp8Key, "1b "+vp8Delta))
	f.Add(fuzzInput("02 "+stapA, "06 "+fuEnd, "03 "+idr, "7b "+stapA, "03 "+idr))
	f.Add(fuzzInput("0b fc", "0b fcff", "0b 7800", "0b 7c", "0b 9d012a", "0b 000000", "1b 18"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		pkts, at := fuzzPackets(data)
		for _, mime := range []string{webrtc.MimeTypeVP8, webrtc.MimeTypeH264, webrtc.MimeTypeOpus} {
			clk := newFakeClock()
			tr, err := Start(Params{Dir: t.TempDir(), Name: "fuzz", MimeType: mime, Now: clk.Now,
				RequestKeyframe: func() {}})
			if err != nil {
				t.Fatal(err)
			}
			for i := range pkts {
				clk.set(at[i])
				tr.WriteRTP(&pkts[i])
			}
			s, err := tr.Close()
			if err != nil && !errors.Is(err, ErrNoMedia) {
				t.Fatalf("%s: Close: %v", mime, err)
			}
			if err == nil && (s.Path == "" || s.Frames == 0 || s.SHA256 == "") {
				t.Fatalf("%s: summary of a recording: %+v", mime, s)
			}
		}
	})
}
