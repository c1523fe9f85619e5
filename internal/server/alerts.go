package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/lookout-cc/lookout/configs"
	"github.com/lookout-cc/lookout/console/alerts"
	"github.com/lookout-cc/lookout/console/events"
	"github.com/lookout-cc/lookout/devices"
	"github.com/lookout-cc/lookout/ingest/clips"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// startAlerts makes the events stream, the alert store, the rules and the
// engine that evaluates them; the ingest pipeline (started next) hands
// the engine every point. Rules from files load later, once the demo's
// sites exist.
func (s *Server) startAlerts(ctx context.Context) error {
	s.events = events.NewBus(events.Params{ReplaySize: s.cfg.Alerts.EventReplay})
	store, err := alerts.NewStore(ctx, s.db, s.audit, s.orgs, s.log.With("component", "alerts"))
	if err != nil {
		return err
	}
	store.OnEvent = func(typ string, org orgs.ID, data any) {
		s.publishEvent(typ, org, data)
		if ev, ok := data.(alerts.AlertEvent); ok && ev.Action == "raised" {
			s.saveAlertClips(ev.Alert)
		}
	}
	engine, err := alerts.NewEngine(alerts.EngineParams{Store: store, Devices: s.registry, Orgs: s.orgs, Cameras: cameraFinder{s.registry},
		FeedRadiusM: s.cfg.Alerts.FeedRadiusM, History: s.tsdb, Log: s.log.With("component", "alerts"), Metrics: s.metrics})
	if err != nil {
		return err
	}
	engine.Start()
	rules, err := alerts.NewRules(ctx, s.db, s.orgs, s.registry, s.audit, engine)
	if err != nil {
		engine.Close()
		return err
	}
	s.registry.OnSiteChanged = engine.SiteChanged
	s.registry.OnChange = func(kind, action string, org orgs.ID, id string, record any) {
		s.publishEvent(kind, org, map[string]any{"action": action, kind: record})
		if kind == "device" && action != "created" {
			engine.DeviceChanged(devices.ID(id)) // moved or gone: its rules start afresh
		}
		if kind == "camera" {
			s.cameraChanged(action, id)
		}
	}
	s.alerts, s.alertEngine, s.rules = store, engine, rules
	// The other components' changes go to the events stream too.
	s.presence.OnChange = chainPresence(s.presence.OnChange, func(id devices.ID, state string, at time.Time) {
		if d, ok := s.registry.Lookup(id); ok {
			s.publishEvent("device", d.OrgID, map[string]any{"action": "presence", "device_id": id, "state": state, "at": at})
		}
	})
	prev := s.commands.OnChange
	s.commands.OnChange = func(c devices.Command) {
		if prev != nil {
			prev(c)
		}
		s.publishEvent("command", c.OrgID, c)
	}
	return nil
}

func chainPresence(a, b func(devices.ID, string, time.Time)) func(devices.ID, string, time.Time) {
	return func(id devices.ID, state string, at time.Time) {
		if a != nil {
			a(id, state, at)
		}
		b(id, state, at)
	}
}

func (s *Server) publishEvent(typ string, org orgs.ID, data any) {
	// After the stream is closed (stopping) there is nobody to tell.
	if _, err := s.events.Publish(typ, org, data); err != nil && !errors.Is(err, events.ErrClosed) {
		s.log.Error("event not published", "type", typ, "err", err)
	}
}

func (s *Server) stopAlerts(context.Context) error {
	s.alertEngine.Close()
	s.events.Close()
	return nil
}

// loadRuleFiles loads the rules of alerts.rule_files, and the demo's when
// the demo's sites were made (on the embedded broker), inside the root
// organisation. A bad file stops the start
// with the file, the rule and the field named.
func (s *Server) loadRuleFiles(ctx context.Context) error {
	var files []alerts.RuleFile
	if s.sim != nil {
		data, err := fs.ReadFile(configs.Files, "demo/rules.yaml")
		if err != nil {
			return err
		}
		files = append(files, alerts.RuleFile{Name: "demo/rules.yaml", Data: data})
	}
	for _, path := range s.cfg.Alerts.RuleFiles {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("alerts.rule_files: %w", err)
		}
		files = append(files, alerts.RuleFile{Name: path, Data: data})
	}
	scope, err := s.orgs.ScopeOf(s.rootOrg)
	if err != nil {
		return err
	}
	n, err := s.rules.LoadFiles(ctx, scope, files)
	if err != nil {
		return err // the component's name says "alert rules"
	}
	if n > 0 {
		s.log.Info("alert rules loaded from files", "rules", n, "files", len(files))
	}
	return nil
}

// cameraFinder gives the engine the registry's cameras.
type cameraFinder struct{ r *devices.Registry }

func (f cameraFinder) CamerasOfSite(site devices.SiteID) []alerts.FeedCamera {
	var out []alerts.FeedCamera
	for _, c := range f.r.CamerasOfSite(site) {
		out = append(out, alerts.FeedCamera{ID: string(c.ID), SiteID: c.SiteID, OrgID: c.OrgID, Lat: c.Lat, Lon: c.Lon})
	}
	return out
}

func (f cameraFinder) CamerasNear(lat, lon, radiusM float64) []alerts.FeedCamera {
	var out []alerts.FeedCamera
	for _, c := range f.r.CamerasNear(lat, lon, radiusM) {
		out = append(out, alerts.FeedCamera{ID: string(c.Camera.ID), SiteID: c.Camera.SiteID, OrgID: c.Camera.OrgID, Lat: c.Camera.Lat, Lon: c.Camera.Lon})
	}
	return out
}

// TriggerDemoFlood starts a simulated flood at the demo's reservoir gauges
// (a second call ends it); false when the demo is not running.
func (s *Server) TriggerDemoFlood() bool {
	if s.sim == nil {
		return false
	}
	s.sim.TriggerFlood()
	return true
}

// alertClipCameras is how many of an alert's cameras (its first feeds
// that keep a pre-alert buffer) get a clip saved.
const alertClipCameras = 2

// saveAlertClips saves, in the background, the moments before an alert
// from the first cameras that show it and keep a pre-alert buffer, and
// records the clips with the alert.
func (s *Server) saveAlertClips(a *alerts.Alert) {
	if s.clips == nil || s.cameras == nil || s.cfg.Cameras.Prebuffer.D() <= 0 {
		return
	}
	s.alertClipsMu.Lock()
	defer s.alertClipsMu.Unlock()
	if s.alertClipsOver {
		return // stopping: the cameras and their buffers are going
	}
	scope, err := s.orgs.ScopeOf(s.rootOrg)
	if err != nil {
		return
	}
	n := 0
	for _, f := range a.Feeds {
		if n == alertClipCameras {
			break
		}
		buf := s.cameras.Buffer(f.CameraID)
		if buf == nil {
			continue
		}
		avail, ok := buf.Available()
		if !ok {
			continue
		}
		cam, err := s.registry.GetCamera(scope, devices.CameraID(f.CameraID))
		if err != nil {
			continue
		}
		n++
		from := a.StartedAt.Add(-s.cfg.Cameras.Prebuffer.D())
		if from.Before(avail.From) {
			from = avail.From // the camera has not been pulled that long
		}
		req := clips.Request{Camera: f.CameraID, Org: cam.OrgID, From: from, To: a.StartedAt, Actor: "alerts",
			Note: fmt.Sprintf("告警 %s: %s (%s)", a.ID, a.RuleName, a.DeviceID)}
		s.alertClips.Add(1)
		go func() {
			defer s.alertClips.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := s.clips.Create(ctx, req)
			if err != nil {
				s.log.Warn("clip for an alert not saved", "alert", a.ID, "camera", req.Camera, "err", err)
				return
			}
			if err := s.audit.Record(ctx, "alerts", c.OrgID, "clip.create", c.ID, "ok",
				map[string]any{"camera": c.CameraID, "alert": a.ID, "from": c.From, "to": c.To, "bytes": c.Bytes}); err != nil {
				s.log.Error("audit entry not written", "action", "clip.create", "err", err)
			}
			if err := s.alerts.AttachClip(ctx, a.ID, c.ID); err != nil {
				s.log.Warn("clip not recorded with its alert", "alert", a.ID, "clip", c.ID, "err", err)
			}
		}()
	}
}
