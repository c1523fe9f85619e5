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
