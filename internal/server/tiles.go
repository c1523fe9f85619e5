package server

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/lookout-cc/lookout/console/events"
	"github.com/lookout-cc/lookout/console/walls"
)

// followTiles switches, on the server, the WHEP sessions that play a wall
// tile (their viewer said which, with ?wall=&tile=) when the tile's camera
// changes: the picture changes when the wall does, not when each screen's
// browser, busy playing sixteen videos, gets round to asking. The screens
// still ask (POST /whep/sessions/{id}/camera), and are told the session
// plays the camera already. Tiles on a patrol are left to the screens,
// which compute the patrol's step themselves.
func (s *Server) followTiles(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	isWall := func(e events.Event) bool { return e.Type == events.TypeWall }
	sub := s.events.Subscribe(isWall, "")
	defer func() { sub.Close() }()
	for {
		var ev events.Event
		var ok bool
		select {
		case <-stop:
			return
		case ev, ok = <-sub.C():
		}
		if !ok {
			if !errors.Is(sub.Err(), events.ErrLagging) {
				return // the bus is closed
			}
			// Behind: the screens ask for what they show anyway.
			sub = s.events.Subscribe(isWall, "")
			continue
		}
		var w walls.Wall
		if err := json.Unmarshal(ev.Data, &w); err != nil || len(w.Tiles) == 0 {
			continue // a deleted wall, or not a wall
		}
		for i, tile := range w.Tiles {
			src := tile.Source
			if tile.AlertID == "" && (tile.Patrol != nil || w.Patrol != nil) {
				continue
			}
			if src == nil || src.Kind != walls.SourceCamera {
				continue
			}
			for _, sess := range s.whep.TileSessions(w.ID, i) {
				if sess.Camera() == src.ID {
					continue
				}
				stream := sess.Stream()
				if stream == "" {
					stream = "main"
				}
				source, got, release, err := s.cameras.Acquire(src.ID, stream)
				if err != nil {
					continue // not pulled: the screen will be told when it asks
				}
				if err := sess.SwitchCamera(src.ID, source, release); err == nil {
					sess.SetStream(got)
				}
			}
		}
	}
}

// startTiles starts following the walls' tiles (after the cameras and the
// WHEP server it switches sessions with).
func (s *Server) startTiles(context.Context) error {
	if s.whep == nil || s.cameras == nil {
		return nil
	}
	s.tilesStop, s.tilesDone = make(chan struct{}), make(chan struct{})
	go s.followTiles(s.tilesStop, s.tilesDone)
	return nil
}

func (s *Server) stopTiles(context.Context) error {
	if s.tilesStop != nil {
		close(s.tilesStop)
		<-s.tilesDone
	}
	return nil
}
