// Package devices is the registry of sites and devices: what exists, where,
// owned by which organisation, and the MQTT credentials each device connects
// with. It imports no transport (gin, paho, pion): the HTTP layer, the
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
	CreatedAt time.Time `json:"created_at"`
}

// Device is a sensor or actuator that talks MQTT.
type Device struct {
	ID        ID                `json:"id"`
	Kind      string            `json:"kind"`
	Name      string            `json:"name"`
	SiteID    SiteID            `json:"site_id"`
	OrgID     orgs.ID           `json:"org_id"`
	Lat       float64           `json:"lat"`
	Lon       float64           `json:"lon"`
	Meta      map[string]string `json:"meta,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
}

// Errors returned by the registry.
var (
	ErrSiteNotFound   = errclass.New(errclass.NotFound, "site_not_found", "site not found")
	ErrSiteExists     = errclass.New(errclass.Conflict, "site_exists", "a site with this id exists")
	ErrDeviceNotFound = errclass.New(errclass.NotFound, "device_not_found", "device not found")
	ErrDeviceExists   = errclass.New(errclass.Conflict, "device_exists", "a device with this id exists")
)

// NewSite is what a caller gives to create a site.
type NewSite struct {
	ID    SiteID  `json:"id"`
	Name  string  `json:"name"`
	Kind  string  `json:"kind"`
	OrgID orgs.ID `json:"org_id"`
	Lat   float64 `json:"lat"`
	Lon   float64 `json:"lon"`
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
	if len(n.Meta) > 32 {
		return errclass.Invalidf("meta", "at most 32 keys")
	}
	for k, v := range n.Meta {
		if len(k) > 64 || len(v) > 256 {
			return errclass.Invalidf("meta", "keys at most 64 and values at most 256 bytes")
		}
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
