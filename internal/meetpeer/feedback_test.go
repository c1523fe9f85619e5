package meetpeer

import (
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
)

func TestExtmapID(t *testing.T) {
	offer := "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=extmap:2/sendonly urn:ietf:params:rtp-hdrext:sdes:mid\r\na=extmap:5 " + sdp.TransportCCURI + "\r\n"
	for _, tc := range []struct {
		desc, uri string
		want      int
	}{
		{offer, sdp.TransportCCURI, 5},
		{offer, sdp.SDESMidURI, 2},
		{offer, sdp.SDESRTPStreamIDURI, 0},
		{"a=extmap:x " + sdp.TransportCCURI, sdp.TransportCCURI, 0},
		{"a=extmap:15 " + sdp.TransportCCURI, sdp.TransportCCURI, 0}, // not a one-byte id
		{"", sdp.TransportCCURI, 0},
	} {
		if got := ExtmapID(tc.desc, tc.uri); got != tc.want {
			t.Errorf("ExtmapID(%q, %s) = %d, want %d", tc.desc, tc.uri, got, tc.want)
		}
	}
}

// rtpWith is an RTP packet with the transport-wide sequence number seq
// in extension id.
func rtpWith(t testing.TB, id uint8, seq uint16) []byte {
	h := rtp.Header{Version: 2, SSRC: 7, SequenceNumber: 1}
	if err := h.SetExtension(id, []byte{byte(seq >> 8), byte(seq)}); err != nil {
		t.Fatal(err)
	}
	b, err := (&rtp.Packet{Header: h, Payload: []byte{1, 2, 3}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The arrivals noted, and only those with the negotiated extension, come
// back as one feedback packet; noting allocates nothing.
func TestArrivalFeedbackNotes(t *testing.T) {
	f := NewArrivalFeedback()
	f.Note(rtpWith(t, 3, 100), 1000) // before the id is known: ignored
	f.FromOffer("a=extmap:3 " + sdp.TransportCCURI + "\r\n")
	for i := range 5 {
		f.Note(rtpWith(t, 3, uint16(200+i)), int64(2000+i*1000))
	}
	f.Note(rtpWith(t, 4, 300), 9000)               // another extension
	f.Note([]byte{0x80, 200, 0, 1, 0, 0, 0, 0}, 1) // RTCP
	f.mu.Lock()
	pkts := f.rec.BuildFeedbackPacket()
	f.mu.Unlock()
	if len(pkts) != 1 {
		t.Fatalf("%d feedback packets", len(pkts))
	}
	fb := pkts[0].(*rtcp.TransportLayerCC)
	if fb.BaseSequenceNumber != 200 || fb.PacketStatusCount != 5 {
		t.Fatalf("feedback from %d for %d packets, want 200 and 5", fb.BaseSequenceNumber, fb.PacketStatusCount)
	}
	pkt := rtpWith(t, 3, 400)
	if a := testing.AllocsPerRun(100, func() { f.Note(pkt, 1) }); a != 0 {
		t.Fatalf("%.1f allocations a note", a)
	}
}

// FuzzOneByteExtension: whatever the packet, the extension found lies
// inside it.
func FuzzOneByteExtension(f *testing.F) {
	f.Add(rtpWith(f, 3, 1), uint8(3))
	f.Add([]byte{0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0xbe, 0xde, 0, 9}, uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, id uint8) {
		if ext, ok := OneByteExtension(b, id); ok && len(ext) > len(b) {
			t.Fatal("extension longer than the packet")
		}
	})
}
