package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lookout-cc/lookout/devices"
	"github.com/lookout-cc/lookout/ingest/tsdb"
	"github.com/lookout-cc/lookout/internal/errclass"
)

func (a *API) listSites(c *gin.Context) {
	sites, err := a.p.Devices.ListSites(c.Request.Context(), mustPrincipal(c).Scope)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, list(sites))
}

func (a *API) getSite(c *gin.Context) {
	s, err := a.p.Devices.GetSite(c.Request.Context(), mustPrincipal(c).Scope, devices.SiteID(c.Param("id")))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, s)
}

func (a *API) createSite(c *gin.Context) {
	var in devices.NewSite
	if !a.decode(c, &in) {
		return
	}
	p := mustPrincipal(c)
	s, err := a.p.Devices.CreateSite(c.Request.Context(), p.Scope, in)
	if err != nil {
		a.fail(c, err)
		return
	}
	if !a.record(c, s.OrgID, "site.create", string(s.ID), "ok", map[string]any{"name": s.Name, "kind": s.Kind}) {
		return
	}
	c.JSON(http.StatusCreated, s)
}

func (a *API) updateSite(c *gin.Context) {
	var patch devices.SitePatch
	if !a.decode(c, &patch) {
		return
	}
	s, err := a.p.Devices.UpdateSite(c.Request.Context(), mustPrincipal(c).Scope, devices.SiteID(c.Param("id")), patch)
	if err != nil {
		a.fail(c, err)
		return
	}
	if !a.record(c, s.OrgID, "site.update", string(s.ID), "ok", map[string]any{"name": s.Name, "levels": s.Levels}) {
		return
	}
	c.JSON(http.StatusOK, s)
}

// deleteSite removes a site without devices; one with devices is 409.
func (a *API) deleteSite(c *gin.Context) {
	s, err := a.p.Devices.DeleteSite(c.Request.Context(), mustPrincipal(c).Scope, devices.SiteID(c.Param("id")))
	if err != nil {
		a.fail(c, err)
		return
	}
	if !a.record(c, s.OrgID, "site.delete", string(s.ID), "ok", nil) {
		return
	}
	c.Status(http.StatusNoContent)
}

func (a *API) listDevices(c *gin.Context) {
	c.JSON(http.StatusOK, list(a.p.Devices.ListDevices(mustPrincipal(c).Scope, devices.SiteID(c.Query("site_id")))))
}

// TelemetryReader is what the API reads of the time-series store.
type TelemetryReader interface {
	Query(ctx context.Context, q tsdb.Query) ([]tsdb.Sample, error)
	Latest(ctx context.Context, device string) ([]tsdb.Point, error)
}

// latestValue is one metric's newest reading.
type latestValue struct {
	TS    int64    `json:"ts"`
	Value *float64 `json:"value,omitempty"`
	Text  *string  `json:"text,omitempty"`
}

type deviceView struct {
	devices.Device
	// LastSeen is the time of the newest reading, null before the first.
	LastSeen *time.Time             `json:"last_seen"`
	Latest   map[string]latestValue `json:"latest"`
	// Online and State come from the device's status topic and Last Will:
	// online, offline, or unknown before it said either.
	Online     bool       `json:"online"`
	State      string     `json:"state"`
	StateSince *time.Time `json:"state_since"`
	// Desired holds, per metric that commands set, what the operators set
	// it to and what the device reports, so the console can show both.
	Desired map[string]desiredView `json:"desired"`
}

// desiredView is one metric's desired value next to the reported one.
type desiredView struct {
	Value float64 `json:"value"`
	// Reported is the device's newest reading of the metric, null before
	// the first; InSync says whether the two agree.
	Reported   *float64        `json:"reported"`
	ReportedTS *int64          `json:"reported_ts"`
	InSync     bool            `json:"in_sync"`
	Command    devices.Command `json:"command"`
}

func (a *API) getDevice(c *gin.Context) {
	d, err := a.p.Devices.GetDevice(mustPrincipal(c).Scope, devices.ID(c.Param("id")))
	if err != nil {
		a.fail(c, err)
		return
	}
	latest, err := a.p.Telemetry.Latest(c.Request.Context(), string(d.ID))
	if err != nil {
		a.fail(c, errclass.New(errclass.Unavailable, "tsdb_unavailable", "the time-series store did not answer"))
		return
	}
	v := deviceView{Device: d, Latest: map[string]latestValue{}}
	state, since := a.p.Presence.Get(d.ID)
	v.State, v.Online = state, state == devices.StateOnline
	if !since.IsZero() {
		t := since.UTC()
		v.StateSince = &t
	}
	var newest int64
	for _, p := range latest {
		lv := latestValue{TS: p.TS}
		if p.IsText {
			lv.Text = &p.Text
		} else {
			lv.Value = &p.Value
		}
		v.Latest[p.Metric] = lv
		newest = max(newest, p.TS)
	}
	if newest > 0 {
		t := time.UnixMilli(newest).UTC()
		v.LastSeen = &t
	}
	desired, err := a.p.Commands.Desired(c.Request.Context(), d)
	if err != nil {
		a.fail(c, err)
		return
	}
	v.Desired = map[string]desiredView{}
	for _, want := range desired {
		dv := desiredView{Value: want.Value, Command: want.Command}
		if got, ok := v.Latest[want.Metric]; ok && got.Value != nil {
			dv.Reported, dv.ReportedTS = got.Value, &got.TS
			dv.InSync = *got.Value == want.Value
		}
		v.Desired[want.Metric] = dv
	}
	c.JSON(http.StatusOK, v)
}

// maxTelemetryRange bounds one telemetry query.
const maxTelemetryRange = 400 * 24 * time.Hour

// deviceTelemetry answers GET /devices/{id}/telemetry?metric=&from=&to=&step=.
// from and to are Unix ms or RFC 3339 (default: the last 24 hours); step is
// a duration ("5m") or a number of seconds.
func (a *API) deviceTelemetry(c *gin.Context) {
	d, err := a.p.Devices.GetDevice(mustPrincipal(c).Scope, devices.ID(c.Param("id")))
	if err != nil {
		a.fail(c, err)
		return
	}
	q := tsdb.Query{Device: string(d.ID), Metric: c.Query("metric")}
	if q.Metric == "" {
		a.fail(c, errclass.Invalidf("metric", "is required"))
		return
	}
	now := time.Now()
	if q.To, err = parseTime(c.Query("to"), now); err != nil {
		a.fail(c, errclass.Invalidf("to", "must be Unix milliseconds or RFC 3339"))
		return
	}
	if q.From, err = parseTime(c.Query("from"), q.To.Add(-24*time.Hour)); err != nil {
		a.fail(c, errclass.Invalidf("from", "must be Unix milliseconds or RFC 3339"))
		return
	}
	if !q.From.Before(q.To) || q.To.Sub(q.From) > maxTelemetryRange {
		a.fail(c, errclass.Invalidf("from", "must be before to, at most 400 days apart"))
		return
	}
	if raw := c.Query("step"); raw != "" {
		if q.Step, err = parseStep(raw); err != nil || q.Step < time.Millisecond || q.Step > 31*24*time.Hour {
			a.fail(c, errclass.Invalidf("step", "must be a duration from 1ms to 31 days, like 60s or 5m, or a number of seconds"))
			return
		}
	}
	samples, err := a.p.Telemetry.Query(c.Request.Context(), q)
	if errors.Is(err, tsdb.ErrTooManySamples) {
		a.fail(c, err)
		return
	}
	if err != nil {
		a.p.Log.WarnContext(c.Request.Context(), "telemetry query failed", "device", d.ID, "err", err)
		a.fail(c, errclass.New(errclass.Unavailable, "tsdb_unavailable", "the time-series store did not answer"))
		return
	}
	c.JSON(http.StatusOK, gin.H{"points": samples})
}

func parseTime(raw string, def time.Time) (time.Time, error) {
	if raw == "" {
		return def, nil
	}
	if ms, err := strconv.ParseInt(raw, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	return time.Parse(time.RFC3339Nano, raw)
}

func parseStep(raw string) (time.Duration, error) {
	if secs, err := strconv.ParseFloat(raw, 64); err == nil {
		return time.Duration(secs * float64(time.Second)), nil
	}
	return time.ParseDuration(raw)
}

type createdDevice struct {
	devices.Device
	// MQTT holds the device's credentials, shown only in this answer.
	MQTT devices.Credentials `json:"mqtt"`
}

func (a *API) createDevice(c *gin.Context) {
	var in devices.NewDevice
	if !a.decode(c, &in) {
		return
	}
	p := mustPrincipal(c)
	d, creds, err := a.p.Devices.CreateDevice(c.Request.Context(), p.Scope, in)
	if err != nil {
		a.fail(c, err)
		return
	}
	if !a.record(c, d.OrgID, "device.create", string(d.ID), "ok", map[string]any{"kind": d.Kind, "site": d.SiteID}) {
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, createdDevice{Device: d, MQTT: creds})
}

// updateDevice changes a device: name, site, location, metadata, or
// disabled (which closes its MQTT sessions and ends its active commands).
func (a *API) updateDevice(c *gin.Context) {
	var patch devices.DevicePatch
	if !a.decode(c, &patch) {
		return
	}
	d, err := a.p.Devices.UpdateDevice(c.Request.Context(), mustPrincipal(c).Scope, devices.ID(c.Param("id")), patch)
	if err != nil {
		a.fail(c, err)
		return
	}
	detail := map[string]any{"name": d.Name, "site": d.SiteID, "disabled": d.Disabled}
	if !a.record(c, d.OrgID, "device.update", string(d.ID), "ok", detail) {
		return
	}
	c.JSON(http.StatusOK, d)
}

// deleteDevice removes a device; its history (telemetry, commands, audit)
// stays.
func (a *API) deleteDevice(c *gin.Context) {
	d, err := a.p.Devices.DeleteDevice(c.Request.Context(), mustPrincipal(c).Scope, devices.ID(c.Param("id")))
	if err != nil {
		a.fail(c, err)
		return
	}
	if !a.record(c, d.OrgID, "device.delete", string(d.ID), "ok", map[string]any{"kind": d.Kind, "site": d.SiteID}) {
		return
	}
	c.Status(http.StatusNoContent)
}

// rotateCredentials gives a device a new MQTT password, shown only in this
// answer; the old one stops authenticating at once.
func (a *API) rotateCredentials(c *gin.Context) {
	p := mustPrincipal(c)
	creds, err := a.p.Devices.RotateCredentials(c.Request.Context(), p.Scope, devices.ID(c.Param("id")))
	if err != nil {
		a.fail(c, err)
		return
	}
	d, _ := a.p.Devices.GetDevice(p.Scope, devices.ID(c.Param("id")))
	if !a.record(c, d.OrgID, "device.credentials.rotate", string(d.ID), "ok", nil) {
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"mqtt": creds})
}

// sendCommand answers POST /devices/{id}/commands with 202 and the command,
// pending or already sent; GET /commands/{id} follows it.
func (a *API) sendCommand(c *gin.Context) {
	var req devices.CommandRequest
	if !a.decode(c, &req) {
		return
	}
	p := mustPrincipal(c)
	cmd, err := a.p.Commands.Send(c.Request.Context(), p.Scope, p.UserID, devices.ID(c.Param("id")), req)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Header("Location", "/api/v1/commands/"+cmd.ID)
	c.JSON(http.StatusAccepted, cmd)
}

func (a *API) getCommand(c *gin.Context) {
	cmd, err := a.p.Commands.Get(mustPrincipal(c).Scope, c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, cmd)
}

// sendGroup answers POST /command-groups: one command to every device of a
// site that takes it, or to a list of devices, with a result per device
// and a summary (202); GET /command-groups/{id} follows them.
func (a *API) sendGroup(c *gin.Context) {
	var req devices.GroupRequest
	if !a.decode(c, &req) {
		return
	}
	p := mustPrincipal(c)
	g, err := a.p.Commands.SendGroup(c.Request.Context(), p.Scope, p.UserID, req)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Header("Location", "/api/v1/command-groups/"+g.ID)
	c.JSON(http.StatusAccepted, g)
}

func (a *API) getGroup(c *gin.Context) {
	g, err := a.p.Commands.GetGroup(c.Request.Context(), mustPrincipal(c).Scope, c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, g)
}
