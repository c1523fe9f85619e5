package testpeers

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"
)

// describe sends DESCRIBE to rawURL (credentials in it, if any).
func describe(t *testing.T, rawURL string) (*description.Session, error) {
	t.Helper()
	u, err := base.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	c := gortsplib.Client{Scheme: u.Scheme, Host: u.Host}
	if err := c.Start2(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	return desc, err
}

func statusCode(err error) base.StatusCode {
	var bad liberrors.ErrClientBadStatusCode
	if errors.As(err, &bad) {
		return bad.Code
	}
	return 0
}

// A camera with credentials answers 401 without them or with wrong ones,
// in digest (the default) and in basic; with the right ones it serves, and
// then it plays too (SETUP is checked as well).
func TestRTSPCameraDemandsCredentials(t *testing.T) {
	for _, basic := range []bool{false, true} {
		name := map[bool]string{false: "digest", true: "basic"}[basic]
		t.Run(name, func(t *testing.T) {
			cam := StartRTSPCamera(t, RTSPOptions{Size: "160x90", User: "admin", Password: "s3cr@t/pw", BasicAuth: basic})
			if _, err := describe(t, cam.URL); statusCode(err) != base.StatusUnauthorized {
				t.Fatalf("no credentials: %v, want 401", err)
			}
			if _, err := describe(t, cam.CredentialURL("admin", "wrong")); statusCode(err) != base.StatusUnauthorized {
				t.Fatalf("wrong password: %v, want 401", err)
			}
			u, err := base.ParseURL(cam.CredentialURL("admin", "s3cr@t/pw"))
			if err != nil {
				t.Fatal(err)
			}
			c := gortsplib.Client{Scheme: u.Scheme, Host: u.Host}
			if err := c.Start2(); err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			desc, _, err := c.Describe(u)
			if err != nil {
				t.Fatalf("right password: %v", err)
			}
			if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
				t.Fatalf("setup: %v", err)
			}
			if _, err := c.Play(nil); err != nil {
				t.Fatalf("play: %v", err)
			}
		})
	}
}

// Only the camera's own path is served.
func TestRTSPCameraUnknownPathIs404(t *testing.T) {
	cam := StartRTSPCamera(t, RTSPOptions{Size: "160x90"})
	if _, err := describe(t, cam.URL+"-other"); statusCode(err) != base.StatusNotFound {
		t.Fatalf("unknown path: %v, want 404", err)
	}
}

// The other codecs publish what they say: M-JPEG video, and AAC with no
// video at all.
func TestRTSPCameraOtherCodecs(t *testing.T) {
	t.Run("mjpeg", func(t *testing.T) {
		cam := StartRTSPCamera(t, RTSPOptions{Codec: "mjpeg", Size: "160x96", FPS: 10})
		desc, err := describe(t, cam.URL)
		if err != nil {
			t.Fatal(err)
		}
		var mj *format.MJPEG
		if desc.FindFormat(&mj) == nil {
			t.Fatalf("no M-JPEG in %+v", desc.Medias)
		}
	})
	t.Run("audio", func(t *testing.T) {
		cam := StartRTSPCamera(t, RTSPOptions{Codec: "audio"})
		desc, err := describe(t, cam.URL)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range desc.Medias {
			if m.Type != description.MediaTypeAudio {
				t.Fatalf("a %s media in the audio-only stream", m.Type)
			}
		}
	})
}

// A camera can be started on an address chosen before it exists.
func TestRTSPCameraOnGivenAddr(t *testing.T) {
	addr := FreeAddr(t)
	cam := StartRTSPCamera(t, RTSPOptions{Size: "160x90", Addr: addr})
	if want := "rtsp://" + addr + "/cam"; cam.URL != want {
		t.Fatalf("URL %s, want %s", cam.URL, want)
	}
	if _, err := describe(t, cam.URL); err != nil {
		t.Fatal(err)
	}
}

// A frozen camera keeps its readers connected and sends them nothing until
// thawed.
func TestRTSPCameraFreezes(t *testing.T) {
	cam := StartRTSPCamera(t, RTSPOptions{Size: "160x90"})
	u, err := base.ParseURL(cam.URL)
	if err != nil {
		t.Fatal(err)
	}
	tcp := gortsplib.TransportTCP
	c := gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tcp, ReadTimeout: 30 * time.Second}
	if err := c.Start2(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		t.Fatal(err)
	}
	var got atomic.Int64
	c.OnPacketRTPAny(func(*description.Media, format.Format, *rtp.Packet) { got.Add(1) })
	if _, err := c.Play(nil); err != nil {
		t.Fatal(err)
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5 s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitUntil("packets", func() bool { return got.Load() > 0 })
	cam.Freeze()
	// Packets in flight arrive while ffmpeg publishes some more; from then
	// on, none.
	published := cam.Packets()
	waitUntil("publishing goes on", func() bool { return cam.Packets() > published+10 })
	frozenAt, published := got.Load(), cam.Packets()
	waitUntil("publishing goes on", func() bool { return cam.Packets() > published+25 })
	if n := got.Load(); n != frozenAt {
		t.Fatalf("%d packets arrived while frozen", n-frozenAt)
	}
	cam.Thaw()
	waitUntil("packets after thaw", func() bool { return got.Load() > frozenAt })
}
