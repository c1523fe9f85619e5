package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"

	"go.yaml.in/yaml/v3"

	"github.com/lookout-cc/lookout/configs"
	"github.com/lookout-cc/lookout/devices"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// SiteFile is configs/demo/sites.yaml.
type SiteFile struct {
	Sites []struct {
		ID     string          `yaml:"id"`
		Name   string          `yaml:"name"`
		Kind   string          `yaml:"kind"`
		Org    string          `yaml:"org"`
		Lat    float64         `yaml:"lat"`
		Lon    float64         `yaml:"lon"`
		Levels *devices.Levels `yaml:"levels"`
	} `yaml:"sites"`
	Devices []DeviceSpec `yaml:"devices"`
	Cameras []CameraSpec `yaml:"cameras"`
}

// CameraSpec is one demo camera: it plays its clip from the demo RTSP
// server (CameraServer) at the path of its id.
type CameraSpec struct {
	ID   string  `yaml:"id"`
	Name string  `yaml:"name"`
	Site string  `yaml:"site"`
	Lat  float64 `yaml:"lat"`
	Lon  float64 `yaml:"lon"`
	// Clip is the file name of its clip under internal/demo/clips.
	Clip string `yaml:"clip"`
}

// CameraStreams loads the cameras' clips, by path (the camera's id), for
// a CameraServer.
func CameraStreams(cams []CameraSpec) (map[string]*Clip, error) {
	out := make(map[string]*Clip, len(cams))
	byFile := map[string]*Clip{} // a clip shared by two cameras is parsed once
	for _, c := range cams {
		clip := byFile[c.Clip]
		if clip == nil {
			var err error
			if clip, err = LoadClip(c.Clip); err != nil {
				return nil, fmt.Errorf("demo camera %s: %w", c.ID, err)
			}
			byFile[c.Clip] = clip
		}
		out[c.ID] = clip
	}
	return out, nil
}

// DeviceSpec is one demo device and how it is simulated.
type DeviceSpec struct {
	ID   string  `yaml:"id"`
	Kind string  `yaml:"kind"`
	Name string  `yaml:"name"`
	Site string  `yaml:"site"`
	Lat  float64 `yaml:"lat"`
	Lon  float64 `yaml:"lon"`
	Sim  struct {
		BaseM  float64 `yaml:"base_m"`
		DailyM float64 `yaml:"daily_m"`
	} `yaml:"sim"`
}

// LoadSites reads the demo sites and devices shipped in the binary.
func LoadSites() (SiteFile, error) {
	var f SiteFile
	data, err := fs.ReadFile(configs.Files, "demo/sites.yaml")
	if err != nil {
		return f, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return f, fmt.Errorf("demo/sites.yaml: %w", err)
	}
	return f, nil
}

// SeedSites creates the demo sites and devices that do not exist yet, and
// gives every demo device fresh MQTT credentials for the simulator, which
// it returns by device id. Only demo devices are touched.
func SeedSites(ctx context.Context, reg *devices.Registry, scope orgs.Scope) (map[string]devices.Credentials, error) {
	f, err := LoadSites()
	if err != nil {
		return nil, err
	}
	for _, s := range f.Sites {
		_, err := reg.CreateSite(ctx, scope, devices.NewSite{ID: devices.SiteID(s.ID), Name: s.Name, Kind: s.Kind, OrgID: orgs.ID(s.Org), Lat: s.Lat, Lon: s.Lon, Levels: s.Levels})
		if err != nil && !errors.Is(err, devices.ErrSiteExists) {
			return nil, fmt.Errorf("demo site %s: %w", s.ID, err)
		}
	}
	creds := map[string]devices.Credentials{}
	for _, d := range f.Devices {
		_, c, err := reg.CreateDevice(ctx, scope, devices.NewDevice{ID: devices.ID(d.ID), Kind: d.Kind, Name: d.Name, SiteID: devices.SiteID(d.Site), Lat: d.Lat, Lon: d.Lon})
		if errors.Is(err, devices.ErrDeviceExists) {
			c, err = reg.RotateCredentials(ctx, scope, devices.ID(d.ID))
		}
		if err != nil {
			return nil, fmt.Errorf("demo device %s: %w", d.ID, err)
		}
		creds[d.ID] = c
	}
	return creds, nil
}

// SeedCameras creates the demo cameras that do not exist yet, each pulled
// always from url(its id), and points those that exist at that URL when it
// has changed (the demo RTSP server may listen on another port after a
// restart); the rest of an existing camera stays as it is. It returns how
// many it created and how many it updated.
func SeedCameras(ctx context.Context, reg *devices.Registry, scope orgs.Scope, cams []CameraSpec, url func(path string) string) (created, updated int, err error) {
	for _, c := range cams {
		u := url(c.ID)
		_, err := reg.CreateCamera(ctx, scope, devices.NewCamera{ID: devices.CameraID(c.ID), Name: c.Name, SiteID: devices.SiteID(c.Site),
			URL: u, Mode: devices.CameraAlways, Lat: c.Lat, Lon: c.Lon})
		if errors.Is(err, devices.ErrCameraExists) {
			var have devices.Camera
			have, err = reg.GetCamera(scope, devices.CameraID(c.ID))
			if err == nil && have.URL != u {
				if _, err = reg.UpdateCamera(ctx, scope, devices.CameraID(c.ID), devices.CameraPatch{URL: &u}); err == nil {
					updated++
				}
			}
		} else if err == nil {
			created++
		}
		if err != nil {
			return created, updated, fmt.Errorf("demo camera %s: %w", c.ID, err)
		}
	}
	return created, updated, nil
}
