// Package devices is the registry of sites, devices and cameras: what
// exists, where, owned by which organisation, and the MQTT credentials each
// device connects with. It imports no transport (gin, paho, pion): the HTTP layer, the
// broker and ingestion call it.
package devices

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// ID identifies a device; it is chosen at creation and is the device's MQTT
// user name and topic segment.
type ID string

// SiteID identifies a site.
type SiteID string

// Site kinds.
var SiteKinds = []string{"reservoir", "port", "community", "street"}

// Device kinds.
var Kinds = []string{"water_level", "streetlight", "vessel", "ais_receiver", "generic"}

// Site is a place Lookout watches.
type Site struct {
	ID        SiteID    `json:"id"`
	Name      string    `json:"name"`
	Kind      string    `json:"kind"`
	OrgID     orgs.ID   `json:"org_id"`
	Lat       float64   `json:"lat"`
	Lon       float64   `json:"lon"`
	Levels    *Levels   `json:"levels,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Levels are a reservoir's characteristic water levels, metres above
// datum. Alert rules refer to them, so one rule set serves every reservoir.
type Levels struct {
	Dead        *float64 `json:"dead_m,omitempty" yaml:"dead_m"`
	FloodLimit  *float64 `json:"flood_limit_m,omitempty" yaml:"flood_limit_m"` // 汛限水位
	Normal      *float64 `json:"normal_m,omitempty" yaml:"normal_m"`           // 正常蓄水位
	DesignFlood *float64 `json:"design_flood_m,omitempty" yaml:"design_flood_m"`
	CheckFlood  *float64 `json:"check_flood_m,omitempty" yaml:"check_flood_m"`
}

// check validates the levels: each finite, and in their natural order where
// given (dead <= flood-limit <= normal <= design flood <= check flood).
func (l *Levels) check(kind string) error {
	if l == nil {
		return nil
	}
	if kind != "reservoir" {
		return errclass.Invalidf("levels", "only reservoirs have characteristic water levels")
	}
	order := []struct {
		name string
		v    *float64
	}{{"levels.dead_m", l.Dead}, {"levels.flood_limit_m", l.FloodLimit}, {"levels.normal_m", l.Normal},
		{"levels.design_flood_m", l.DesignFlood}, {"levels.check_flood_m", l.CheckFlood}}
	var prevName string
	var prev *float64
	for _, o := range order {
		if o.v == nil {
			continue
		}
		if math.IsNaN(*o.v) || math.IsInf(*o.v, 0) || *o.v < -500 || *o.v > 9000 {
			return errclass.Invalidf(o.name, "must be a height in metres between -500 and 9000")
		}
		if prev != nil && *o.v < *prev {
			return errclass.Invalidf(o.name, "must not be below %s (%g m)", prevName, *prev)
		}
		prevName, prev = o.name, o.v
	}
	return nil
}

// Device is a sensor or actuator that talks MQTT.
type Device struct {
	ID     ID                `json:"id"`
	Kind   string            `json:"kind"`
	Name   string            `json:"name"`
	SiteID SiteID            `json:"site_id"`
	OrgID  orgs.ID           `json:"org_id"`
	Lat    float64           `json:"lat"`
	Lon    float64           `json:"lon"`
	Meta   map[string]string `json:"meta,omitempty"`
	// Disabled devices keep their record and history, but may not
	// connect and take no commands.
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
}

// Errors returned by the registry.
var (
	ErrSiteNotFound   = errclass.New(errclass.NotFound, "site_not_found", "site not found")
	ErrSiteExists     = errclass.New(errclass.Conflict, "site_exists", "a site with this id exists")
	ErrDeviceNotFound = errclass.New(errclass.NotFound, "device_not_found", "device not found")
	ErrDeviceExists   = errclass.New(errclass.Conflict, "device_exists", "a device with this id exists")
	ErrDeviceDisabled = errclass.New(errclass.Conflict, "device_disabled", "the device is disabled; enable it first")
)

// NewSite is what a caller gives to create a site.
type NewSite struct {
	ID     SiteID  `json:"id"`
	Name   string  `json:"name"`
	Kind   string  `json:"kind"`
	OrgID  orgs.ID `json:"org_id"`
	Lat    float64 `json:"lat"`
	Lon    float64 `json:"lon"`
	Levels *Levels `json:"levels"`
}

// SitePatch changes some fields of a site; nil fields stay.
type SitePatch struct {
	Name   *string  `json:"name"`
	Lat    *float64 `json:"lat"`
	Lon    *float64 `json:"lon"`
	Levels *Levels  `json:"levels"`
}

func (n NewSite) validate() error {
	if !orgs.IDPattern.MatchString(string(n.ID)) {
		return errclass.Invalidf("id", "must be 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit")
	}
	if err := checkName(n.Name); err != nil {
		return err
	}
	if !slices.Contains(SiteKinds, n.Kind) {
		return errclass.Invalidf("kind", "must be one of %s", strings.Join(SiteKinds, ", "))
	}
	if err := n.Levels.check(n.Kind); err != nil {
		return err
	}
	return checkLocation(n.Lat, n.Lon)
}

// NewDevice is what a caller gives to create a device.
type NewDevice struct {
	ID     ID                `json:"id"`
	Kind   string            `json:"kind"`
	Name   string            `json:"name"`
	SiteID SiteID            `json:"site_id"`
	Lat    float64           `json:"lat"`
	Lon    float64           `json:"lon"`
	Meta   map[string]string `json:"meta"`
}

// DevicePatch changes some fields of a device; nil fields stay. Moving a
// device to another site moves it to that site's organisation.
type DevicePatch struct {
	Name     *string            `json:"name"`
	SiteID   *SiteID            `json:"site_id"`
	Lat      *float64           `json:"lat"`
	Lon      *float64           `json:"lon"`
	Meta     *map[string]string `json:"meta"`
	Disabled *bool              `json:"disabled"`
}

func checkMeta(m map[string]string) error {
	if len(m) > 32 {
		return errclass.Invalidf("meta", "at most 32 keys")
	}
	for k, v := range m {
		if len(k) > 64 || len(v) > 256 {
			return errclass.Invalidf("meta", "keys at most 64 and values at most 256 bytes")
		}
	}
	return nil
}

func (n NewDevice) validate() error {
	if !orgs.IDPattern.MatchString(string(n.ID)) {
		return errclass.Invalidf("id", "must be 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit")
	}
	if !slices.Contains(Kinds, n.Kind) {
		return errclass.Invalidf("kind", "must be one of %s", strings.Join(Kinds, ", "))
	}
	if err := checkName(n.Name); err != nil {
		return err
	}
	if n.SiteID == "" {
		return errclass.Invalidf("site_id", "is required")
	}
	if err := checkMeta(n.Meta); err != nil {
		return err
	}
	return checkLocation(n.Lat, n.Lon)
}

func checkName(n string) error {
	if n = strings.TrimSpace(n); n == "" || len(n) > 200 {
		return errclass.Invalidf("name", "must be 1-200 characters")
	}
	return nil
}

func checkLocation(lat, lon float64) error {
	if math.IsNaN(lat) || lat < -90 || lat > 90 {
		return errclass.Invalidf("lat", "must be between -90 and 90")
	}
	if math.IsNaN(lon) || lon < -180 || lon > 180 {
		return errclass.Invalidf("lon", "must be between -180 and 180")
	}
	return nil
}

func encodeMeta(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m)
	return string(b)
}
