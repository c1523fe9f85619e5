package rtsp

import (
	"testing"

	"github.com/pion/rtp"
)

// A tee hands each call to every sink, in order.
func TestTee(t *testing.T) {
	a, b := &recSink{}, &recSink{}
	tee := Tee{a, b}
	params := [][]byte{{0x67}, {0x68}}
	tee.Start("H264", params)
	for range 3 {
		tee.WriteRTP(&rtp.Packet{Payload: []byte{0x65, 1}})
	}
	tee.Stop()
	for _, s := range []*recSink{a, b} {
		v := s.view()
		if v.starts != 1 || v.stops != 1 || v.packets != 3 || v.codec != "H264" || len(v.params) != 2 || !v.keyframe || len(v.misuse) > 0 {
			t.Fatalf("%+v", v)
		}
	}
}
