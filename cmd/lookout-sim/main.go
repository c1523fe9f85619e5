// Command lookout-sim plays Lookout's demo devices against a running Lookout
// over real MQTT: reservoir gauges, resettlement-community streetlights that
// answer commands, and a fishing port's AIS receiver; and its demo cameras
// over RTSP, each a looping clip. It makes the demo sites, devices and
// cameras through the API where they are missing, gives each simulated
// device fresh MQTT credentials, and points each demo camera at its own
// RTSP server.
//
//	lookout-sim --api http://127.0.0.1:8080 --mqtt tcp://127.0.0.1:1883 \
//	            --username admin --password ... [--interval 5s] \
//	            [--rtsp 127.0.0.1:0]
//
// The cameras are registered as rtsp://{--rtsp host:port}/{camera id}, so
// when Lookout runs on another machine, give --rtsp an address of this
// machine that Lookout reaches (0.0.0.0 is registered as 127.0.0.1).
//
// SIGUSR1 starts a flood rise at every gauge (and a second one ends it);
// SIGINT or SIGTERM stops the simulator. The embedded default runs the same
// simulator in-process when LOOKOUT_DEMO is on.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lookout-cc/lookout/devices"
	"github.com/lookout-cc/lookout/internal/demo"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "lookout-sim: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("lookout-sim", flag.ContinueOnError)
	apiURL := fs.String("api", "http://127.0.0.1:8080", "Lookout's HTTP address")
	mqttURL := fs.String("mqtt", "tcp://127.0.0.1:1883", "the MQTT broker devices connect to")
	username := fs.String("username", "admin", "a Lookout admin whose organisation holds the demo organisations")
	password := fs.String("password", os.Getenv("LOOKOUT_ADMIN_PASSWORD"), "that admin's password (default $LOOKOUT_ADMIN_PASSWORD)")
	interval := fs.Duration("interval", 5*time.Second, "time between each device's reports")
	rtspAddr := fs.String("rtsp", "127.0.0.1:0", "host:port the demo cameras' RTSP server listens on (port 0: a free one); Lookout pulls them there")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	api := &client{base: *apiURL}
	if err := api.call("POST", "/api/v1/auth/login", map[string]string{"username": *username, "password": *password}, &api.login); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	f, err := demo.LoadSites()
	if err != nil {
		return err
	}
	for _, s := range f.Sites {
		err := api.call("POST", "/api/v1/sites", map[string]any{"id": s.ID, "name": s.Name, "kind": s.Kind, "org_id": s.Org, "lat": s.Lat, "lon": s.Lon}, nil)
		if err != nil && !isConflict(err) {
			return fmt.Errorf("site %s: %w", s.ID, err)
		}
	}
	creds := map[string]devices.Credentials{}
	for _, d := range f.Devices {
		var made struct {
			MQTT devices.Credentials `json:"mqtt"`
		}
		err := api.call("POST", "/api/v1/devices", map[string]any{"id": d.ID, "kind": d.Kind, "name": d.Name, "site_id": d.Site, "lat": d.Lat, "lon": d.Lon}, &made)
		if isConflict(err) {
			err = api.call("POST", "/api/v1/devices/"+d.ID+"/credentials", nil, &made)
		}
		if err != nil {
			return fmt.Errorf("device %s: %w", d.ID, err)
		}
		creds[d.ID] = made.MQTT
	}
	cams, err := serveCameras(api, f.Cameras, *rtspAddr, log)
	if err != nil {
		return err
	}
	defer cams.Close()
	sim := demo.NewSimulator(demo.SimParams{BrokerURL: *mqttURL, Devices: f.Devices, Credentials: creds, Interval: *interval, Log: log})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for {
			select {
			case <-usr1:
				sim.TriggerFlood()
			case <-ctx.Done():
				return
			}
		}
	}()
	log.Info("simulating demo devices and cameras", "devices", len(creds), "broker", *mqttURL, "cameras", len(f.Cameras), "rtsp", cams.Addr(),
		"flood", "kill -USR1 "+fmt.Sprint(os.Getpid()))
	return sim.Run(ctx)
}

// serveCameras starts the demo cameras' RTSP server and creates the demo
// cameras through the API, or points those that exist at it.
func serveCameras(api *client, specs []demo.CameraSpec, addr string, log *slog.Logger) (*demo.CameraServer, error) {
	streams, err := demo.CameraStreams(specs)
	if err != nil {
		return nil, err
	}
	srv := demo.NewCameraServer(demo.CameraServerParams{Addr: addr, Streams: streams, Log: log})
	if err := srv.Start(); err != nil {
		return nil, err
	}
	for _, c := range specs {
		u := srv.URL(c.ID)
		err := api.call("POST", "/api/v1/cameras", map[string]any{"id": c.ID, "name": c.Name, "site_id": c.Site, "url": u, "mode": "always",
			"lat": c.Lat, "lon": c.Lon}, nil)
		if isConflict(err) {
			var have struct{ URL string }
			if err = api.call("GET", "/api/v1/cameras/"+c.ID, nil, &have); err == nil && have.URL != u {
				err = api.call("PATCH", "/api/v1/cameras/"+c.ID, map[string]any{"url": u}, nil)
			}
		}
		if err != nil {
			srv.Close()
			return nil, fmt.Errorf("camera %s: %w", c.ID, err)
		}
	}
	return srv, nil
}

type apiError struct {
	status int
	body   string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.status, e.body) }

func isConflict(err error) bool {
	ae, ok := err.(*apiError)
	return ok && ae.status == http.StatusConflict
}

type client struct {
	base  string
	login struct{ Token string }
}

func (c *client) call(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		js, _ := json.Marshal(body)
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.login.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.login.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return &apiError{status: resp.StatusCode, body: string(data)}
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}
