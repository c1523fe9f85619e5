package rtsp

import "github.com/pion/rtp"

// Tee is a Sink that hands every call to each of its sinks, in order, on
// the caller's goroutine: a camera's source and its pre-alert buffer side
// by side. The sinks share the packet and the parameter sets, so none may
// change them; each returning quickly is the whole tee returning quickly.
type Tee []Sink

// Start starts every sink.
func (t Tee) Start(codec string, paramSets [][]byte) {
	for _, s := range t {
		s.Start(codec, paramSets)
	}
}

// WriteRTP gives the packet to every sink.
func (t Tee) WriteRTP(pkt *rtp.Packet) {
	for _, s := range t {
		s.WriteRTP(pkt)
	}
}

// Stop stops every sink.
func (t Tee) Stop() {
	for _, s := range t {
		s.Stop()
	}
}
