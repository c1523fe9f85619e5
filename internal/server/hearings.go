package server

import (
	"context"
	"path/filepath"
	"time"

	"github.com/lookout-cc/lookout/console/hearings"
	"github.com/lookout-cc/lookout/console/petitions"
)

// recordingSweepEvery is how often the hearings' recordings past their retention
// are deleted.
const recordingSweepEvery = time.Hour

// startPetitions opens the petitions and their hearings (before the
// meetings: the SFU tells the hearings of admissions), marks recordings a
// stop interrupted, and sweeps expired recordings every hour.
func (s *Server) startPetitions(ctx context.Context) error {
	seal, err := petitions.NewSealer(s.signer.Derive("petitions personal data"))
	if err != nil {
		return err
	}
	s.petitions = petitions.NewStore(s.db, s.orgs, seal, siteOrgs{s.registry})
	h, err := hearings.New(hearings.Params{DB: s.db, Tree: s.orgs, Petitions: s.petitions, Rooms: s.roomStore(), Signer: s.signer,
		RecordingsDir: filepath.Join(s.cfg.DataDir, "recordings"), Retention: s.cfg.Hearings.RecordingRetention.D(),
		Audit: s.audit, Log: s.log.With("component", "hearings")})
	if err != nil {
		return err
	}
	if err := h.Recover(ctx); err != nil {
		return err
	}
	s.hearings = h
	sweepCtx, cancel := context.WithCancel(context.Background())
	s.stopHearings, s.hearingsDone = cancel, make(chan struct{})
	go func() {
		defer close(s.hearingsDone)
		t := time.NewTicker(recordingSweepEvery)
		defer t.Stop()
		for {
			if n, err := h.Sweep(sweepCtx); err != nil && sweepCtx.Err() == nil {
				s.log.Error("hearing recordings not swept", "err", err)
			} else if n > 0 {
				s.log.Info("hearing recordings past their retention deleted", "count", n)
			}
			select {
			case <-sweepCtx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

func (s *Server) stopPetitions(context.Context) error {
	s.stopHearings()
	<-s.hearingsDone
	return nil
}
