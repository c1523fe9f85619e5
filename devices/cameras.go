package devices

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// CameraID identifies a camera; it is chosen at creation.
type CameraID string

// Camera is a video source at a site, pulled over RTSP. It takes its site's
// organisation, like a device.
//
// URL and SubURL may carry the camera's credentials
// (rtsp://user:password@host/...) and are secrets: they are kept as given
// for the puller, never logged, and answered to users only in the form
// Redacted returns.
type Camera struct {
	ID     CameraID `json:"id"`
	Name   string   `json:"name"`
	SiteID SiteID   `json:"site_id"`
	OrgID  orgs.ID  `json:"org_id"`
	URL    string   `json:"url"`
	// SubURL is the camera's low-resolution stream, for small tiles; ""
	// when it has none.
	SubURL string `json:"sub_url,omitempty"`
	// Mode is how the camera is pulled: "always" (its picture is ready at
	// once, and its last seconds are kept for alerts) or "on_demand"
	// (while someone watches, and for a while after).
	Mode      string            `json:"mode"`
	Lat       float64           `json:"lat"`
	Lon       float64           `json:"lon"`
	Meta      map[string]string `json:"meta,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
}

// Camera pulling modes.
const (
	CameraAlways   = "always"
	CameraOnDemand = "on_demand"
)

func checkMode(m string) error {
	if m != CameraAlways && m != CameraOnDemand {
		return errclass.Invalidf("mode", "must be always or on_demand")
	}
	return nil
}

// Errors about cameras.
var (
	ErrCameraNotFound = errclass.New(errclass.NotFound, "camera_not_found", "camera not found")
	ErrCameraExists   = errclass.New(errclass.Conflict, "camera_exists", "a camera with this id exists")
	// ErrSiteHasCameras refuses deleting a site that still has cameras.
	ErrSiteHasCameras = errclass.New(errclass.Conflict, "site_has_cameras", "the site has cameras; move or delete them first")
)

// NewCamera is what a caller gives to create a camera.
type NewCamera struct {
	ID     CameraID          `json:"id"`
	Name   string            `json:"name"`
	SiteID SiteID            `json:"site_id"`
	URL    string            `json:"url"`
	SubURL string            `json:"sub_url"`
	Mode   string            `json:"mode"` // "" is always
	Lat    float64           `json:"lat"`
	Lon    float64           `json:"lon"`
	Meta   map[string]string `json:"meta"`
}

// CameraPatch changes some fields of a camera; nil fields stay. An empty
// SubURL removes the sub-stream. Moving a camera to another site moves it
// to that site's organisation.
type CameraPatch struct {
	Name   *string            `json:"name"`
	SiteID *SiteID            `json:"site_id"`
	URL    *string            `json:"url"`
	SubURL *string            `json:"sub_url"`
	Mode   *string            `json:"mode"`
	Lat    *float64           `json:"lat"`
	Lon    *float64           `json:"lon"`
	Meta   *map[string]string `json:"meta"`
}

func (n NewCamera) validate() error {
	if !orgs.IDPattern.MatchString(string(n.ID)) {
		return errclass.Invalidf("id", "must be 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit")
	}
	if err := checkName(n.Name); err != nil {
		return err
	}
	if n.SiteID == "" {
		return errclass.Invalidf("site_id", "is required")
	}
	if err := checkStreamURL("url", n.URL); err != nil {
		return err
	}
	if n.SubURL != "" {
		if err := checkStreamURL("sub_url", n.SubURL); err != nil {
			return err
		}
	}
	if n.Mode != "" {
		if err := checkMode(n.Mode); err != nil {
			return err
		}
	}
	if err := checkMeta(n.Meta); err != nil {
		return err
	}
	return checkLocation(n.Lat, n.Lon)
}

// maxURLBytes bounds a camera URL.
const maxURLBytes = 2048

// checkStreamURL accepts an rtsp:// or rtsps:// URL with a host. Its
// messages never repeat the URL, which may hold a password.
func checkStreamURL(field, raw string) error {
	const rule = "must be an rtsp:// or rtsps:// URL with a host"
	if raw == "" {
		return errclass.Invalidf(field, "is required")
	}
	if len(raw) > maxURLBytes {
		return errclass.Invalidf(field, "must be at most %d bytes", maxURLBytes)
	}
	if strings.ContainsFunc(raw, unicode.IsSpace) {
		return errclass.Invalidf(field, "must not contain spaces")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") || u.Hostname() == "" {
		return errclass.Invalidf(field, rule)
	}
	// An '@' after the host means a user name or password held a '/',
	// '?' or '#' that was not percent-encoded, so part of the secret was
	// read as host or path, where Redacted would not hide it.
	if strings.Contains(u.EscapedPath(), "@") || strings.Contains(u.RawQuery, "@") || strings.Contains(u.Fragment, "@") {
		return errclass.Invalidf(field, "has an '@' after the host: percent-encode '/', '?', '#' and '@' in the user name and password")
	}
	return nil
}

// Redacted returns the camera with the passwords in URL and SubURL replaced
// by "***"; user names stay. A password given as a query parameter
// (password=, pwd=, ...) is replaced too. This is the form the API answers
// with and the audit log records.
func (c Camera) Redacted() Camera {
	c.URL = redactURL(c.URL)
	c.SubURL = redactURL(c.SubURL)
	return c
}

// secretQueryKeys are the query parameters, lowercase, that some cameras
// take a password in.
var secretQueryKeys = []string{"password", "passwd", "pass", "pwd"}

func redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		// Stored URLs were validated; should one not parse, nothing of it
		// can be shown safely.
		return "***"
	}
	hidePassword := false
	if u.User != nil {
		_, hidePassword = u.User.Password()
		u.User = url.User(u.User.Username())
	}
	if u.RawQuery != "" {
		params := strings.Split(u.RawQuery, "&")
		for i, p := range params {
			k, _, ok := strings.Cut(p, "=")
			if ok && slices.Contains(secretQueryKeys, strings.ToLower(k)) {
				params[i] = k + "=***"
			}
		}
		u.RawQuery = strings.Join(params, "&")
	}
	out := u.String()
	if hidePassword {
		// url.UserPassword would escape the stars; the first '@' is the
		// end of the user name, in which String escapes any '@'.
		out = strings.Replace(out, "@", ":***@", 1)
	}
	return out
}

// CameraDistance is a camera and its distance from a point.
type CameraDistance struct {
	Camera    Camera
	DistanceM float64
}

const cameraColumns = `id, name, site_id, org_id, url, sub_url, mode, lat, lon, meta, created_at`

func scanCamera(row interface{ Scan(...any) error }) (Camera, error) {
	var c Camera
	var created int64
	var meta string
	err := row.Scan(&c.ID, &c.Name, &c.SiteID, &c.OrgID, &c.URL, &c.SubURL, &c.Mode, &c.Lat, &c.Lon, &meta, &created)
	c.CreatedAt = time.UnixMilli(created)
	if err == nil && meta != "{}" {
		err = json.Unmarshal([]byte(meta), &c.Meta)
	}
	return c, err
}

// loadCameras fills the camera index from the database.
func (r *Registry) loadCameras(ctx context.Context) error {
	rows, err := r.db.QueryContext(ctx, `SELECT `+cameraColumns+` FROM cameras`)
	if err != nil {
		return fmt.Errorf("load cameras: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		c, err := scanCamera(rows)
		if err != nil {
			return fmt.Errorf("load cameras: %w", err)
		}
		r.cameras[c.ID] = c
	}
	return rows.Err()
}

// createCamera adds a camera at a site inside scope. The camera takes the
// site's organisation.
func (r *Registry) createCamera(ctx context.Context, scope orgs.Scope, in NewCamera) (Camera, error) {
	if err := in.validate(); err != nil {
		return Camera{}, err
	}
	// The write lock is held from the site check to the insert, so that
	// DeleteSite, which takes it too, never removes the site in between.
	r.camMu.Lock()
	defer r.camMu.Unlock()
	site, err := r.GetSite(ctx, scope, in.SiteID)
	if errors.Is(err, ErrSiteNotFound) {
		return Camera{}, errclass.Invalidf("site_id", "no such site")
	}
	if err != nil {
		return Camera{}, err
	}
	if _, dup := r.cameras[in.ID]; dup {
		return Camera{}, ErrCameraExists
	}
	c := Camera{ID: in.ID, Name: strings.TrimSpace(in.Name), SiteID: site.ID, OrgID: site.OrgID, URL: in.URL, SubURL: in.SubURL,
		Mode: cmp.Or(in.Mode, CameraAlways), Lat: in.Lat, Lon: in.Lon, Meta: cloneMeta(in.Meta), CreatedAt: r.now().Truncate(time.Millisecond)}
	_, err = r.db.ExecContext(ctx, `INSERT INTO cameras(`+cameraColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Name, c.SiteID, c.OrgID, c.URL, c.SubURL, c.Mode, c.Lat, c.Lon, encodeMeta(c.Meta), c.CreatedAt.UnixMilli())
	if err != nil {
		return Camera{}, fmt.Errorf("insert camera: %w", err)
	}
	r.cameras[c.ID] = c
	return c, nil
}

// GetCamera returns a camera inside scope, with its real URLs.
func (r *Registry) GetCamera(scope orgs.Scope, id CameraID) (Camera, error) {
	r.camMu.RLock()
	c, ok := r.cameras[id]
	r.camMu.RUnlock()
	if !ok {
		return Camera{}, ErrCameraNotFound
	}
	if !r.orgs.Contains(scope, c.OrgID) {
		return Camera{}, orgs.ErrOutOfScope
	}
	return c, nil
}

// ListCameras returns the cameras inside scope, optionally of one site,
// sorted by id.
func (r *Registry) ListCameras(scope orgs.Scope, site SiteID) []Camera {
	r.camMu.RLock()
	defer r.camMu.RUnlock()
	out := []Camera{}
	for _, c := range r.cameras {
		if (site == "" || c.SiteID == site) && r.orgs.Contains(scope, c.OrgID) {
			out = append(out, c)
		}
	}
	sortCameras(out)
	return out
}

// updateCamera changes a camera inside scope. Moving it to another site
// needs that site in scope too, and takes that site's organisation.
func (r *Registry) updateCamera(ctx context.Context, scope orgs.Scope, id CameraID, p CameraPatch) (Camera, error) {
	r.camMu.Lock()
	defer r.camMu.Unlock()
	c, ok := r.cameras[id]
	if !ok {
		return Camera{}, ErrCameraNotFound
	}
	if !r.orgs.Contains(scope, c.OrgID) {
		return Camera{}, orgs.ErrOutOfScope
	}
	if p.Name != nil {
		if err := checkName(*p.Name); err != nil {
			return Camera{}, err
		}
		c.Name = strings.TrimSpace(*p.Name)
	}
	if p.SiteID != nil && *p.SiteID != c.SiteID {
		site, err := r.GetSite(ctx, scope, *p.SiteID)
		if errors.Is(err, ErrSiteNotFound) || errors.Is(err, orgs.ErrOutOfScope) {
			return Camera{}, errclass.Invalidf("site_id", "no such site")
		}
		if err != nil {
			return Camera{}, err
		}
		c.SiteID, c.OrgID = site.ID, site.OrgID
	}
	if p.URL != nil {
		if err := checkStreamURL("url", *p.URL); err != nil {
			return Camera{}, err
		}
		c.URL = *p.URL
	}
	if p.SubURL != nil {
		if *p.SubURL != "" {
			if err := checkStreamURL("sub_url", *p.SubURL); err != nil {
				return Camera{}, err
			}
		}
		c.SubURL = *p.SubURL
	}
	if p.Mode != nil {
		if err := checkMode(*p.Mode); err != nil {
			return Camera{}, err
		}
		c.Mode = *p.Mode
	}
	if p.Lat != nil {
		c.Lat = *p.Lat
	}
	if p.Lon != nil {
		c.Lon = *p.Lon
	}
	if err := checkLocation(c.Lat, c.Lon); err != nil {
		return Camera{}, err
	}
	if p.Meta != nil {
		if err := checkMeta(*p.Meta); err != nil {
			return Camera{}, err
		}
		c.Meta = cloneMeta(*p.Meta)
	}
	_, err := r.db.ExecContext(ctx, `UPDATE cameras SET name = ?, site_id = ?, org_id = ?, url = ?, sub_url = ?, mode = ?, lat = ?, lon = ?, meta = ? WHERE id = ?`,
		c.Name, c.SiteID, c.OrgID, c.URL, c.SubURL, c.Mode, c.Lat, c.Lon, encodeMeta(c.Meta), c.ID)
	if err != nil {
		return Camera{}, fmt.Errorf("update camera: %w", err)
	}
	r.cameras[id] = c
	return c, nil
}

// deleteCamera removes a camera inside scope and returns it.
func (r *Registry) deleteCamera(ctx context.Context, scope orgs.Scope, id CameraID) (Camera, error) {
	r.camMu.Lock()
	defer r.camMu.Unlock()
	c, ok := r.cameras[id]
	if !ok {
		return Camera{}, ErrCameraNotFound
	}
	if !r.orgs.Contains(scope, c.OrgID) {
		return Camera{}, orgs.ErrOutOfScope
	}
	if _, err := r.db.ExecContext(ctx, `DELETE FROM cameras WHERE id = ?`, id); err != nil {
		return Camera{}, fmt.Errorf("delete camera: %w", err)
	}
	delete(r.cameras, id)
	return c, nil
}

// CamerasOfSite returns the cameras of a site, sorted by id, regardless of
// scope: it serves alert correlation, whose caller scopes what it shows.
func (r *Registry) CamerasOfSite(site SiteID) []Camera {
	r.camMu.RLock()
	defer r.camMu.RUnlock()
	out := []Camera{}
	for _, c := range r.cameras {
		if c.SiteID == site {
			out = append(out, c)
		}
	}
	sortCameras(out)
	return out
}

// CamerasNear returns the cameras within radiusM metres (great-circle, see
// DistanceM) of a point, nearest first, equally near ones by id, regardless
// of scope: it serves alert correlation, whose caller scopes what it shows.
func (r *Registry) CamerasNear(lat, lon, radiusM float64) []CameraDistance {
	r.camMu.RLock()
	defer r.camMu.RUnlock()
	out := []CameraDistance{}
	for _, c := range r.cameras {
		if d := DistanceM(lat, lon, c.Lat, c.Lon); d <= radiusM {
			out = append(out, CameraDistance{Camera: c, DistanceM: d})
		}
	}
	slices.SortFunc(out, func(a, b CameraDistance) int {
		return cmp.Or(cmp.Compare(a.DistanceM, b.DistanceM), strings.Compare(string(a.Camera.ID), string(b.Camera.ID)))
	})
	return out
}

// siteHasCamerasLocked reports whether a site has cameras; camMu is held.
func (r *Registry) siteHasCamerasLocked(site SiteID) bool {
	for _, c := range r.cameras {
		if c.SiteID == site {
			return true
		}
	}
	return false
}

func sortCameras(cs []Camera) {
	slices.SortFunc(cs, func(a, b Camera) int { return strings.Compare(string(a.ID), string(b.ID)) })
}

// cloneMeta copies a caller's metadata, so the registry's copy is its own;
// empty metadata becomes nil.
func cloneMeta(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

// CreateCamera adds a camera inside scope (see createCamera), then tells
// OnChange.
func (r *Registry) CreateCamera(ctx context.Context, scope orgs.Scope, in NewCamera) (Camera, error) {
	c, err := r.createCamera(ctx, scope, in)
	if err == nil {
		r.changed("camera", "created", c.OrgID, ID(c.ID), c.Redacted()) // after the lock: the hook may read the registry
	}
	return c, err
}

// UpdateCamera changes a camera inside scope (see updateCamera), then
// tells OnChange.
func (r *Registry) UpdateCamera(ctx context.Context, scope orgs.Scope, id CameraID, p CameraPatch) (Camera, error) {
	c, err := r.updateCamera(ctx, scope, id, p)
	if err == nil {
		r.changed("camera", "updated", c.OrgID, ID(c.ID), c.Redacted()) // after the lock: the hook may read the registry
	}
	return c, err
}

// DeleteCamera removes a camera inside scope (see deleteCamera), then
// tells OnChange.
func (r *Registry) DeleteCamera(ctx context.Context, scope orgs.Scope, id CameraID) (Camera, error) {
	c, err := r.deleteCamera(ctx, scope, id)
	if err == nil {
		r.changed("camera", "deleted", c.OrgID, ID(c.ID), c.Redacted()) // after the lock: the hook may read the registry
	}
	return c, err
}
