package server

import (
	"context"

	"github.com/lookout-cc/lookout/console/alerts"
	"github.com/lookout-cc/lookout/console/walls"
)

// startWalls makes the wall store and starts the Pinner, which puts the
// cameras of alerts on the walls' alert areas. It starts after the alerts
// (it follows their events) and before ingest, so no alert is raised
// before it listens.
func (s *Server) startWalls(context.Context) error {
	s.walls = walls.NewStore(s.db, s.orgs, s.registry)
	s.pinner = walls.NewPinner(walls.PinnerParams{Store: s.walls, Orgs: s.orgs, Events: s.events, Audit: s.audit,
		OpenAlerts: s.openAlerts, Log: s.log.With("component", "walls")})
	s.pinner.Start()
	return nil
}

func (s *Server) stopWalls(context.Context) error {
	s.pinner.Close()
	return nil
}

// openAlerts returns every open alert, for the Pinner to reconcile with.
func (s *Server) openAlerts(ctx context.Context) ([]*alerts.Alert, error) {
	scope, err := s.orgs.ScopeOf(s.rootOrg)
	if err != nil {
		return nil, err
	}
	return s.alerts.List(ctx, scope, alerts.Filter{State: "open", Limit: 1000})
}
