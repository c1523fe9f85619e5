package devices

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// Registry keeps sites, devices and cameras in the state database, with an
// in-memory index of devices for the hot paths (MQTT authentication, topic
// checks, telemetry validation), which must not query per message, and one
// of cameras for alert correlation.
type Registry struct {
	db   *sql.DB
	orgs *orgs.Store
	now  func() time.Time

	mu      sync.RWMutex
	devices map[ID]*entry

	// camMu guards cameras. Writers hold it across their database
	// statement, so the index and the table never disagree, and so does
	// DeleteSite, so no camera is added to a site being deleted.
	camMu   sync.RWMutex
	cameras map[CameraID]Camera

	// OnAccessChanged is called after a device's password changed, or the
	// device was disabled or deleted, so that the broker closes the
	// sessions opened before.
	OnAccessChanged func(ID)
	// OnRemoved is called after a device was disabled or deleted, with
	// the reason, so that its active commands end.
	OnRemoved func(id ID, reason string)
	// OnSiteChanged is called after a site changed (its characteristic
	// levels, which alert rules refer to).
	OnSiteChanged func(SiteID)
	// OnChange is called after a device or camera was created, updated
	// or deleted: kind "device" or "camera", action "created", "updated"
	// or "deleted", the owner, the id and the record (a camera's with its
	// URL redacted), for the events stream and the alert rules.
	OnChange func(kind, action string, org orgs.ID, id string, record any)
}

type entry struct {
	dev    Device
	secret []byte // SHA-256 of the MQTT password; nil: no MQTT access
}

// NewRegistry loads the device and camera indexes from db.
func NewRegistry(ctx context.Context, db *sql.DB, tree *orgs.Store) (*Registry, error) {
	r := &Registry{db: db, orgs: tree, now: time.Now, devices: map[ID]*entry{}, cameras: map[CameraID]Camera{}}
	if err := r.loadCameras(ctx); err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `SELECT `+deviceColumns+`, mqtt_secret_hash FROM devices`)
	if err != nil {
		return nil, fmt.Errorf("load devices: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e entry
		if e.dev, err = scanDevice(rows, &e.secret); err != nil {
			return nil, fmt.Errorf("load devices: %w", err)
		}
		r.devices[e.dev.ID] = &e
	}
	return r, rows.Err()
}

const siteColumns = `id, name, kind, org_id, lat, lon, created_at, levels`

func scanSite(row interface{ Scan(...any) error }) (Site, error) {
	var s Site
	var created int64
	var levels string
	err := row.Scan(&s.ID, &s.Name, &s.Kind, &s.OrgID, &s.Lat, &s.Lon, &created, &levels)
	s.CreatedAt = time.UnixMilli(created)
	if err == nil && levels != "{}" {
		s.Levels = &Levels{}
		err = json.Unmarshal([]byte(levels), s.Levels)
	}
	return s, err
}

func encodeLevels(l *Levels) string {
	if l == nil {
		return "{}"
	}
	b, _ := json.Marshal(l)
	return string(b)
}

// ErrSiteHasDevices refuses deleting a site that still has devices.
var ErrSiteHasDevices = errclass.New(errclass.Conflict, "site_has_devices", "the site has devices; move or delete them first")

// UpdateSite changes a site inside scope.
func (r *Registry) UpdateSite(ctx context.Context, scope orgs.Scope, id SiteID, p SitePatch) (Site, error) {
	s, err := r.GetSite(ctx, scope, id)
	if err != nil {
		return Site{}, err
	}
	if p.Name != nil {
		if err := checkName(*p.Name); err != nil {
			return Site{}, err
		}
		s.Name = strings.TrimSpace(*p.Name)
	}
	if p.Lat != nil {
		s.Lat = *p.Lat
	}
	if p.Lon != nil {
		s.Lon = *p.Lon
	}
	if err := checkLocation(s.Lat, s.Lon); err != nil {
		return Site{}, err
	}
	if p.Levels != nil {
		if err := p.Levels.check(s.Kind); err != nil {
			return Site{}, err
		}
		s.Levels = p.Levels
	}
	if _, err := r.db.ExecContext(ctx, `UPDATE sites SET name = ?, lat = ?, lon = ?, levels = ? WHERE id = ?`,
		s.Name, s.Lat, s.Lon, encodeLevels(s.Levels), s.ID); err != nil {
		return Site{}, fmt.Errorf("update site: %w", err)
	}
	if r.OnSiteChanged != nil {
		r.OnSiteChanged(s.ID)
	}
	return s, nil
}

// DeleteSite removes a site inside scope that has no devices
// (ErrSiteHasDevices) and no cameras (ErrSiteHasCameras).
func (r *Registry) DeleteSite(ctx context.Context, scope orgs.Scope, id SiteID) (Site, error) {
	s, err := r.GetSite(ctx, scope, id)
	if err != nil {
		return Site{}, err
	}
	r.mu.RLock()
	for _, e := range r.devices {
		if e.dev.SiteID == id {
			r.mu.RUnlock()
			return Site{}, ErrSiteHasDevices
		}
	}
	r.mu.RUnlock()
	r.camMu.Lock()
	defer r.camMu.Unlock()
	if r.siteHasCamerasLocked(id) {
		return Site{}, ErrSiteHasCameras
	}
	if _, err := r.db.ExecContext(ctx, `DELETE FROM sites WHERE id = ?`, id); err != nil {
		return Site{}, fmt.Errorf("delete site: %w", err)
	}
	return s, nil
}

const deviceColumns = `id, kind, name, site_id, org_id, lat, lon, meta, created_at, disabled`

func scanDevice(row interface{ Scan(...any) error }, extra ...any) (Device, error) {
	var d Device
	var created int64
	var meta string
	err := row.Scan(append([]any{&d.ID, &d.Kind, &d.Name, &d.SiteID, &d.OrgID, &d.Lat, &d.Lon, &meta, &created, &d.Disabled}, extra...)...)
	d.CreatedAt = time.UnixMilli(created)
	if err == nil && meta != "{}" {
		err = json.Unmarshal([]byte(meta), &d.Meta)
	}
	return d, err
}

// CreateSite adds a site owned by an organisation inside scope.
func (r *Registry) CreateSite(ctx context.Context, scope orgs.Scope, in NewSite) (Site, error) {
	if err := in.validate(); err != nil {
		return Site{}, err
	}
	if err := r.orgs.CheckInScope(scope, in.OrgID, "org_id"); err != nil {
		return Site{}, err
	}
	s := Site{ID: in.ID, Name: strings.TrimSpace(in.Name), Kind: in.Kind, OrgID: in.OrgID, Lat: in.Lat, Lon: in.Lon,
		Levels: in.Levels, CreatedAt: r.now().Truncate(time.Millisecond)}
	res, err := r.db.ExecContext(ctx, `INSERT INTO sites(`+siteColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING`,
		s.ID, s.Name, s.Kind, s.OrgID, s.Lat, s.Lon, s.CreatedAt.UnixMilli(), encodeLevels(s.Levels))
	if err != nil {
		return Site{}, fmt.Errorf("insert site: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Site{}, ErrSiteExists
	}
	return s, nil
}

// GetSite returns a site inside scope.
func (r *Registry) GetSite(ctx context.Context, scope orgs.Scope, id SiteID) (Site, error) {
	s, err := scanSite(r.db.QueryRowContext(ctx, `SELECT `+siteColumns+` FROM sites WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Site{}, ErrSiteNotFound
	}
	if err != nil {
		return Site{}, err
	}
	if !r.orgs.Contains(scope, s.OrgID) {
		return Site{}, orgs.ErrOutOfScope
	}
	return s, nil
}

// ListSites returns the sites inside scope.
func (r *Registry) ListSites(ctx context.Context, scope orgs.Scope) ([]Site, error) {
	cond, args := scope.SQL("org_id")
	rows, err := r.db.QueryContext(ctx, `SELECT `+siteColumns+` FROM sites WHERE `+cond+` ORDER BY id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Site{}
	for rows.Next() {
		s, err := scanSite(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// CreateDevice adds a device at a site inside scope and returns it with its
// MQTT credentials. The password is shown only here: only its hash is kept.
func (r *Registry) CreateDevice(ctx context.Context, scope orgs.Scope, in NewDevice) (Device, Credentials, error) {
	if err := in.validate(); err != nil {
		return Device{}, Credentials{}, err
	}
	site, err := r.GetSite(ctx, scope, in.SiteID)
	if errors.Is(err, ErrSiteNotFound) {
		return Device{}, Credentials{}, errclass.Invalidf("site_id", "no such site")
	}
	if err != nil {
		return Device{}, Credentials{}, err
	}
	creds, secret := newCredentials(in.ID)
	d := Device{ID: in.ID, Kind: in.Kind, Name: strings.TrimSpace(in.Name), SiteID: site.ID, OrgID: site.OrgID,
		Lat: in.Lat, Lon: in.Lon, Meta: in.Meta, CreatedAt: r.now().Truncate(time.Millisecond)}
	if err := r.insertDevice(ctx, d, secret); err != nil {
		return Device{}, Credentials{}, err
	}
	r.changed("device", "created", d.OrgID, d.ID, d)
	return d, creds, nil
}

func (r *Registry) insertDevice(ctx context.Context, d Device, secret []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.devices[d.ID]; dup {
		return ErrDeviceExists
	}
	_, err := r.db.ExecContext(ctx, `INSERT INTO devices(`+deviceColumns+`, mqtt_secret_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.Kind, d.Name, d.SiteID, d.OrgID, d.Lat, d.Lon, encodeMeta(d.Meta), d.CreatedAt.UnixMilli(), d.Disabled, secret)
	if err != nil {
		return fmt.Errorf("insert device: %w", err)
	}
	r.devices[d.ID] = &entry{dev: d, secret: secret}
	return nil
}

// GetDevice returns a device inside scope.
func (r *Registry) GetDevice(scope orgs.Scope, id ID) (Device, error) {
	d, ok := r.Lookup(id)
	if !ok {
		return Device{}, ErrDeviceNotFound
	}
	if !r.orgs.Contains(scope, d.OrgID) {
		return Device{}, orgs.ErrOutOfScope
	}
	return d, nil
}

// UpdateDevice changes a device inside scope. Moving it to another site
// needs that site in scope too, and takes that site's organisation.
// Disabling it closes its MQTT sessions, refuses new ones, and ends its
// active commands.
func (r *Registry) UpdateDevice(ctx context.Context, scope orgs.Scope, id ID, p DevicePatch) (Device, error) {
	cur, err := r.GetDevice(scope, id)
	if err != nil {
		return Device{}, err
	}
	d := cur
	if p.Name != nil {
		if err := checkName(*p.Name); err != nil {
			return Device{}, err
		}
		d.Name = strings.TrimSpace(*p.Name)
	}
	if p.SiteID != nil && *p.SiteID != d.SiteID {
		site, err := r.GetSite(ctx, scope, *p.SiteID)
		if errors.Is(err, ErrSiteNotFound) || errors.Is(err, orgs.ErrOutOfScope) {
			return Device{}, errclass.Invalidf("site_id", "no such site")
		}
		if err != nil {
			return Device{}, err
		}
		d.SiteID, d.OrgID = site.ID, site.OrgID
	}
	if p.Lat != nil {
		d.Lat = *p.Lat
	}
	if p.Lon != nil {
		d.Lon = *p.Lon
	}
	if err := checkLocation(d.Lat, d.Lon); err != nil {
		return Device{}, err
	}
	if p.Meta != nil {
		if err := checkMeta(*p.Meta); err != nil {
			return Device{}, err
		}
		d.Meta = *p.Meta
	}
	if p.Disabled != nil {
		d.Disabled = *p.Disabled
	}
	r.mu.Lock()
	_, err = r.db.ExecContext(ctx, `UPDATE devices SET name = ?, site_id = ?, org_id = ?, lat = ?, lon = ?, meta = ?, disabled = ? WHERE id = ?`,
		d.Name, d.SiteID, d.OrgID, d.Lat, d.Lon, encodeMeta(d.Meta), d.Disabled, d.ID)
	if err == nil {
		if e, ok := r.devices[id]; ok {
			e.dev = d
		}
	}
	r.mu.Unlock()
	if err != nil {
		return Device{}, fmt.Errorf("update device: %w", err)
	}
	if d.Disabled && !cur.Disabled {
		r.accessEnded(id, "device disabled")
	}
	r.changed("device", "updated", d.OrgID, d.ID, d)
	return d, nil
}

// DeleteDevice removes a device inside scope: it can no longer connect,
// its open sessions close, and its active commands end. Its telemetry,
// commands and audit entries stay in the record.
func (r *Registry) DeleteDevice(ctx context.Context, scope orgs.Scope, id ID) (Device, error) {
	d, err := r.GetDevice(scope, id)
	if err != nil {
		return Device{}, err
	}
	r.mu.Lock()
	_, err = r.db.ExecContext(ctx, `DELETE FROM devices WHERE id = ?`, id)
	if err == nil {
		delete(r.devices, id)
	}
	r.mu.Unlock()
	if err != nil {
		return Device{}, fmt.Errorf("delete device: %w", err)
	}
	r.accessEnded(id, "device deleted")
	r.changed("device", "deleted", d.OrgID, d.ID, d)
	return d, nil
}

func (r *Registry) accessEnded(id ID, reason string) {
	if r.OnAccessChanged != nil {
		r.OnAccessChanged(id)
	}
	if r.OnRemoved != nil {
		r.OnRemoved(id, reason)
	}
}

// ListDevices returns the devices inside scope, optionally of one site.
func (r *Registry) ListDevices(scope orgs.Scope, site SiteID) []Device {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := []Device{}
	for _, e := range r.devices {
		if (site == "" || e.dev.SiteID == site) && r.orgs.Contains(scope, e.dev.OrgID) {
			out = append(out, e.dev)
		}
	}
	slicesSortByID(out)
	return out
}

func (r *Registry) changed(kind, action string, org orgs.ID, id ID, record any) {
	if r.OnChange != nil {
		r.OnChange(kind, action, org, string(id), record)
	}
}

// SiteDevices returns a site's devices regardless of scope, by id, for
// alert rules (each scoped by its own organisation), never for answering
// a user.
func (r *Registry) SiteDevices(site SiteID) []Device {
	return r.devicesWhere(func(d Device) bool { return d.SiteID == site })
}

// DevicesOfKind returns the devices of a kind regardless of scope, by id,
// for alert rules, never for answering a user.
func (r *Registry) DevicesOfKind(kind string) []Device {
	return r.devicesWhere(func(d Device) bool { return d.Kind == kind })
}

func (r *Registry) devicesWhere(keep func(Device) bool) []Device {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := []Device{}
	for _, e := range r.devices {
		if keep(e.dev) {
			out = append(out, e.dev)
		}
	}
	slicesSortByID(out)
	return out
}

// SiteByID returns a site regardless of scope, for alert rules, never for
// answering a user.
func (r *Registry) SiteByID(id SiteID) (Site, bool) {
	s, err := scanSite(r.db.QueryRow(`SELECT `+siteColumns+` FROM sites WHERE id = ?`, id))
	return s, err == nil
}

// Lookup returns a device regardless of scope, for ingestion and the
// broker, never for answering a user.
func (r *Registry) Lookup(id ID) (Device, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.devices[id]
	if !ok {
		return Device{}, false
	}
	return e.dev, true
}

// VesselID is the device id of the vessel with an MMSI.
func VesselID(mmsi uint32) ID { return ID(fmt.Sprintf("vessel-%d", mmsi)) }

// VesselInfo is what an AIS receiver learned of a vessel.
type VesselInfo struct {
	MMSI     uint32
	Name     string // "" when not yet known
	ShipType int    // 0 when not yet known
	Lat, Lon float64
}

// EnsureVessel returns the device of a vessel seen by an AIS receiver,
// creating it (kind vessel, in the receiver's site and organisation, with
// no MQTT access) on first sight, and updating its name and ship type when
// a static report brings them.
func (r *Registry) EnsureVessel(ctx context.Context, receiver Device, v VesselInfo) (Device, error) {
	id := VesselID(v.MMSI)
	r.mu.RLock()
	e, ok := r.devices[id]
	var cur Device
	if ok {
		cur = e.dev
	}
	r.mu.RUnlock()
	shipType := ""
	if v.ShipType > 0 {
		shipType = fmt.Sprint(v.ShipType)
	}
	if !ok {
		d := Device{ID: id, Kind: "vessel", Name: fmt.Sprintf("MMSI %d", v.MMSI), SiteID: receiver.SiteID, OrgID: receiver.OrgID,
			Lat: v.Lat, Lon: v.Lon, Meta: map[string]string{"mmsi": fmt.Sprint(v.MMSI)}, CreatedAt: r.now().Truncate(time.Millisecond)}
		if v.Name != "" {
			d.Name = v.Name
		}
		if shipType != "" {
			d.Meta["ship_type"] = shipType
		}
		if err := r.insertDevice(ctx, d, nil); err != nil && !errors.Is(err, ErrDeviceExists) {
			return Device{}, err
		} else if err == nil {
			r.changed("device", "created", d.OrgID, d.ID, d)
		}
		return d, nil
	}
	if (v.Name == "" || v.Name == cur.Name) && (shipType == "" || cur.Meta["ship_type"] == shipType) {
		return cur, nil
	}
	upd := cur
	upd.Meta = maps.Clone(cur.Meta)
	if upd.Meta == nil {
		upd.Meta = map[string]string{}
	}
	if v.Name != "" {
		upd.Name = v.Name
	}
	if shipType != "" {
		upd.Meta["ship_type"] = shipType
	}
	if _, err := r.db.ExecContext(ctx, `UPDATE devices SET name = ?, meta = ? WHERE id = ?`, upd.Name, encodeMeta(upd.Meta), id); err != nil {
		return Device{}, fmt.Errorf("update vessel: %w", err)
	}
	r.mu.Lock()
	if e, ok := r.devices[id]; ok {
		e.dev = upd
	}
	r.mu.Unlock()
	return upd, nil
}
