package meeting

import (
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

func TestIsVP8Keyframe(t *testing.T) {
	tests := []struct {
		name string
		p    []byte
		want bool
	}{
		{"empty", nil, false},
		{"short keyframe, no extension", []byte{0x10, 0x00}, true},
		{"interframe", []byte{0x10, 0x01}, false},
		{"not a partition start", []byte{0x00, 0x00}, false},
		{"partition 1", []byte{0x11, 0x00}, false},
		{"15-bit picture id keyframe", []byte{0x90, 0x80, 0x81, 0x23, 0x00}, true},
		{"7-bit picture id interframe", []byte{0x90, 0x80, 0x11, 0x01}, false},
		{"picture id, tl0, tid keyframe", []byte{0x90, 0xe0, 0x81, 0x23, 0x05, 0x40, 0x00}, true},
		{"extension cut short", []byte{0x90, 0xe0, 0x81}, false},
		{"descriptor only", []byte{0x90, 0x00}, false},
	}
	for _, tt := range tests {
		if got := isVP8Keyframe(tt.p); got != tt.want {
			t.Errorf("%s: isVP8Keyframe(% x) = %v, want %v", tt.name, tt.p, got, tt.want)
		}
	}
}

func TestIsH264Keyframe(t *testing.T) {
	tests := []struct {
		name string
		p    []byte
		want bool
	}{
		{"empty", nil, false},
		{"IDR", []byte{0x65, 0x88}, true},
		{"SPS", []byte{0x67, 0x42}, true},
		{"non-IDR slice", []byte{0x41, 0x9a}, false},
		{"STAP-A with SPS", []byte{0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce}, true},
		{"STAP-A with SEI only", []byte{0x78, 0x00, 0x02, 0x06, 0x05}, false},
		{"STAP-A bad length", []byte{0x78, 0x00, 0x09, 0x67}, false},
		{"FU-A IDR start", []byte{0x7c, 0x85, 0x88}, true},
		{"FU-A IDR middle", []byte{0x7c, 0x05, 0x88}, false},
		{"FU-A non-IDR start", []byte{0x7c, 0x81, 0x9a}, false},
	}
	for _, tt := range tests {
		if got := isH264Keyframe(tt.p); got != tt.want {
			t.Errorf("%s: isH264Keyframe(% x) = %v, want %v", tt.name, tt.p, got, tt.want)
		}
	}
}

func TestIsH265Keyframe(t *testing.T) {
	tests := []struct {
		name string
		p    []byte
		want bool
	}{
		{"empty", nil, false},
		{"IDR_W_RADL", []byte{19 << 1, 1, 0xaf}, true},
		{"CRA", []byte{21 << 1, 1}, true},
		{"VPS", []byte{32 << 1, 1}, true},
		{"TRAIL_R", []byte{1 << 1, 1, 0xd0}, false},
		{"AP with SPS", []byte{48 << 1, 1, 0, 2, 33 << 1, 1}, true},
		{"AP bad length", []byte{48 << 1, 1, 0, 9, 33 << 1}, false},
		{"FU IDR start", []byte{49 << 1, 1, 0x80 | 19}, true},
		{"FU IDR middle", []byte{49 << 1, 1, 19}, false},
		{"FU trail start", []byte{49 << 1, 1, 0x80 | 1}, false},
	}
	for _, tt := range tests {
		if got := isH265Keyframe(tt.p); got != tt.want {
			t.Errorf("%s: isH265Keyframe(% x) = %v, want %v", tt.name, tt.p, got, tt.want)
		}
	}
}

func FuzzKeyframe(f *testing.F) {
	for _, s := range [][]byte{{0x90, 0xe0, 0x81, 0x23, 0x05, 0x40, 0x00}, {0x78, 0x00, 0x02, 0x67, 0x42}, {0x7c, 0x85}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		isVP8Keyframe(p)
		isH264Keyframe(p)
		isH265Keyframe(p)
	})
}

// A keyframe request the publisher's connection could not send (no path
// while its ICE restarts) is neither counted nor throttled, and is sent
// once the connection can.
func TestKeyframeRequestRetriedUntilSent(t *testing.T) {
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pub := &participant{identity: "pub", pub: pc}
	u := &upTrack{pub: pub, kind: webrtc.RTPCodecTypeVideo, simulcast: true, createdAt: time.Now()}
	defer u.end()
	u.layers[layerLow] = &webrtc.TrackRemote{}
	// The last request long ago (the clock starts with the process).
	longAgo := nanotime() - int64(time.Minute)
	u.lastKeyReq[layerLow].Store(longAgo)

	u.requestKeyframe(layerLow)
	if n, last := pub.plisSent.Load(), u.lastKeyReq[layerLow].Load(); n != 0 || last != longAgo {
		t.Fatalf("a request the connection could not send: counted %d, throttled from %d (not %d)", n, last, longAgo)
	}
	if !u.keyDeferred[layerLow].Load() {
		t.Fatal("a request the connection could not send is not tried again")
	}
	// The path is back (a connection-less publisher takes the request).
	pub.mu.Lock()
	pub.pub = nil
	pub.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for pub.plisSent.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the request was not sent again within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
