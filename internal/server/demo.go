package server

import (
	"context"

	"github.com/lookout-cc/lookout/internal/demo"
)

// startDemoData seeds the demo sites and devices, starts the demo cameras'
// RTSP server and registers the demo cameras with its URLs, or moves them
// there when they exist (the server may listen on another port than at the
// last start), and makes the demo's video wall once. It runs before the
// camera hub starts, so the hub pulls the demo cameras at their new URLs
// from the first.
func (s *Server) startDemoData(ctx context.Context) error {
	if !s.cfg.Demo.Enabled {
		return nil
	}
	if s.broker == nil {
		s.log.Info("demo devices and cameras are simulated only with the embedded broker; run lookout-sim against an external one")
		return nil
	}
	scope, err := s.orgs.ScopeOf(s.rootOrg)
	if err != nil {
		return err
	}
	if s.demoCreds, err = demo.SeedSites(ctx, s.registry, scope); err != nil {
		return err
	}
	f, err := demo.LoadSites()
	if err != nil {
		return err
	}
	streams, err := demo.CameraStreams(f.Cameras)
	if err != nil {
		return err
	}
	srv := demo.NewCameraServer(demo.CameraServerParams{Addr: s.cfg.Demo.RTSPAddr, Streams: streams, Log: s.log.With("component", "demo-cameras")})
	if err := srv.Start(); err != nil {
		return err
	}
	created, moved, err := demo.SeedCameras(ctx, s.registry, scope, f.Cameras, srv.URL)
	if err != nil {
		srv.Close()
		return err
	}
	made, err := demo.SeedWall(ctx, s.walls, scope, f.Cameras)
	if err != nil {
		srv.Close()
		return err
	}
	if seeded, err := demo.SeedPetitions(ctx, s.petitions, s.hearings, s.orgs, "demo"); err != nil {
		srv.Close()
		return err
	} else if seeded {
		s.log.Info("demo petitions recorded, a hearing scheduled")
	}
	s.demoCams = srv
	s.log.Info("demo cameras", "rtsp", srv.Addr(), "cameras", len(f.Cameras), "created", created, "moved", moved)
	if made {
		s.log.Info("demo wall created", "wall", demo.WallID)
	}
	return nil
}

// stopDemoData stops the demo RTSP server, after the hub stopped pulling.
func (s *Server) stopDemoData(context.Context) error {
	if s.demoCams != nil {
		s.demoCams.Close()
		s.demoCams = nil
	}
	return nil
}

// startDemo plays the demo devices over the embedded broker, each with its
// own credentials.
func (s *Server) startDemo(context.Context) error {
	if s.demoCreds == nil {
		return nil // the demo is off, or the broker is external
	}
	f, err := demo.LoadSites()
	if err != nil {
		return err
	}
	s.sim = demo.NewSimulator(demo.SimParams{BrokerURL: "tcp://" + s.broker.Addr(), Devices: f.Devices, Credentials: s.demoCreds,
		Interval: s.cfg.Demo.Interval.D(), Log: s.log.With("component", "demo")})
	runCtx, cancel := context.WithCancel(context.Background())
	s.simStop, s.simDone = cancel, make(chan struct{})
	go func() {
		defer close(s.simDone)
		_ = s.sim.Run(runCtx)
	}()
	s.log.Info("demo devices simulated", "devices", len(s.demoCreds))
	return nil
}

func (s *Server) stopDemo(context.Context) error {
	if s.simStop != nil {
		s.simStop()
		<-s.simDone
		s.simStop = nil
	}
	return nil
}
