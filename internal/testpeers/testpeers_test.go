package testpeers

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	paho "github.com/eclipse/paho.mqtt.golang"
	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/pion/rtp"
)

func mqttConnect(url, user, pass string) error {
	o := paho.NewClientOptions().AddBroker(url).SetClientID("peer-test-" + user).SetUsername(user).SetPassword(pass).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(3 * time.Second)
	c := paho.NewClient(o)
	tok := c.Connect()
	tok.WaitTimeout(5 * time.Second)
	if tok.Error() == nil {
		c.Disconnect(50)
	}
	return tok.Error()
}

func TestMosquittoWithUsersAndRestart(t *testing.T) {
	m := StartMosquitto(t, MosquittoOptions{Users: map[string]string{"gauge-1": "s3cret-pass"}})
	if err := mqttConnect(m.URL, "gauge-1", "s3cret-pass"); err != nil {
		t.Fatalf("known user: %v", err)
	}
	if err := mqttConnect(m.URL, "gauge-1", "wrong"); err == nil {
		t.Fatal("wrong password admitted")
	}
	m.Stop()
	if err := mqttConnect(m.URL, "gauge-1", "s3cret-pass"); err == nil {
		t.Fatal("stopped broker admitted a client")
	}
	m.Start()
	if err := mqttConnect(m.URL, "gauge-1", "s3cret-pass"); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

func TestInfluxDBWritesAndQueriesThrough2xAPI(t *testing.T) {
	db := StartInfluxDB(t)
	client := influxdb2.NewClient(db.URL, db.Token)
	defer client.Close()
	ctx := context.Background()
	w := client.WriteAPIBlocking(db.Org, db.Bucket)
	ts := time.Now().Add(-time.Minute).Truncate(time.Second)
	if err := w.WriteRecord(ctx, "telemetry,device=gauge-1 water_level_m=1712.4 "+strconv.FormatInt(ts.UnixNano(), 10)); err != nil {
		t.Fatalf("write: %v", err)
	}
	q := `from(bucket: "` + db.Bucket + `") |> range(start: -1h) |> filter(fn: (r) => r._measurement == "telemetry")`
	res, err := client.QueryAPI(db.Org).Query(ctx, q)
	if err != nil {
		t.Fatalf("flux query: %v", err)
	}
	var got []float64
	for res.Next() {
		got = append(got, res.Record().Value().(float64))
	}
	if res.Err() != nil || len(got) != 1 || got[0] != 1712.4 {
		t.Fatalf("query gave %v, %v", got, res.Err())
	}
	bad := influxdb2.NewClient(db.URL, "lookout:wrong")
	defer bad.Close()
	if err := bad.WriteAPIBlocking(db.Org, db.Bucket).WriteRecord(ctx, "telemetry v=1"); err == nil {
		t.Fatal("wrong password could write")
	}

	// Down and back up, with the data kept.
	db.Stop()
	if resp, err := http.Get(db.URL + "/ping"); err == nil {
		resp.Body.Close()
		t.Fatal("stopped influxd answered")
	}
	db.Start()
	res, err = client.QueryAPI(db.Org).Query(ctx, q)
	if err != nil || !res.Next() {
		t.Fatalf("after restart: %v", err)
	}
}

// The camera stand-in serves real H.264 that a gortsplib client can pull,
// over TCP and over UDP, with a keyframe within the GOP.
func TestRTSPCameraServesH264(t *testing.T) {
	cam := StartRTSPCamera(t, RTSPOptions{})
	for _, transport := range []gortsplib.Transport{gortsplib.TransportTCP, gortsplib.TransportUDP} {
		t.Run(transport.String(), func(t *testing.T) {
			u, err := base.ParseURL(cam.URL)
			if err != nil {
				t.Fatal(err)
			}
			c := gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &transport}
			if err := c.Start2(); err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			desc, _, err := c.Describe(u)
			if err != nil {
				t.Fatal(err)
			}
			var forma *format.H264
			medi := desc.FindFormat(&forma)
			if medi == nil {
				t.Fatalf("no H.264 in %v", desc.Medias)
			}
			dec, err := forma.CreateDecoder()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
				t.Fatal(err)
			}
			idr := make(chan struct{}, 1)
			c.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
				au, err := dec.Decode(pkt)
				if err != nil {
					if err != rtph264.ErrMorePacketsNeeded && err != rtph264.ErrNonStartingPacketAndNoPrevious {
						t.Errorf("decode: %v", err)
					}
					return
				}
				if h264.IsRandomAccess(au) {
					select {
					case idr <- struct{}{}:
					default:
					}
				}
			})
			if _, err := c.Play(nil); err != nil {
				t.Fatal(err)
			}
			select {
			case <-idr:
			case <-time.After(5 * time.Second): // GOP is 2 s
				t.Fatal("no keyframe within 5 s")
			}
		})
	}

	// The camera drops and comes back.
	cam.Stop()
	u, _ := base.ParseURL(cam.URL)
	c := gortsplib.Client{Scheme: u.Scheme, Host: u.Host}
	if err := c.Start2(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Describe(u); err == nil {
		t.Fatal("stopped camera still described")
	}
	c.Close()
	cam.Start()
}

// The H.265 option publishes real HEVC (libx265), pulled with a keyframe.
func TestRTSPCameraServesH265(t *testing.T) {
	cam := StartRTSPCamera(t, RTSPOptions{Codec: "h265", Size: "320x180"})
	u, err := base.ParseURL(cam.URL)
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
		t.Fatal(err)
	}
	var forma *format.H265
	medi := desc.FindFormat(&forma)
	if medi == nil {
		t.Fatalf("no H.265 in %v", desc.Medias)
	}
	dec, err := forma.CreateDecoder()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		t.Fatal(err)
	}
	idr := make(chan struct{}, 1)
	c.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		au, err := dec.Decode(pkt)
		if err == nil && h265.IsRandomAccess(au) {
			select {
			case idr <- struct{}{}:
			default:
			}
		}
	})
	if _, err := c.Play(nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-idr:
	case <-time.After(5 * time.Second):
		t.Fatal("no H.265 keyframe within 5 s")
	}
}

// A reserved port refuses connections and cannot be listened on while
// held; once released, a camera can take it.
func TestReserveAddr(t *testing.T) {
	addr, release := ReserveAddr(t)
	if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
		c.Close()
		t.Fatal("a connection to the reserved port was accepted")
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("a connection to the reserved port: %v, want refused", err)
	}
	if l, err := net.Listen("tcp", addr); err == nil {
		l.Close()
		t.Fatal("the reserved port was listened on while held")
	}
	release()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the released port: %v", err)
	}
	l.Close()
}
