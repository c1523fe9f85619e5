package server

import (
	"context"
	"path/filepath"

	"github.com/lookout-cc/lookout/devices"
	"github.com/lookout-cc/lookout/ingest/cameras"
	"github.com/lookout-cc/lookout/ingest/clips"
	"github.com/lookout-cc/lookout/ingest/rtsp"
	"github.com/lookout-cc/lookout/sfu/rtc"
	"github.com/lookout-cc/lookout/sfu/whep"
)

// startWebRTC opens the SFU's ICE ports and the WHEP server on them.
func (s *Server) startWebRTC(context.Context) error {
	eng, err := rtc.New(rtc.Params{UDPAddr: s.cfg.WebRTC.UDPAddr, TCPAddr: s.cfg.WebRTC.TCPAddr, PublicIPs: s.cfg.WebRTC.PublicIPs,
		DirectSend: s.cfg.WebRTC.DirectSend, DirectReceive: s.cfg.WebRTC.DirectReceive, Log: s.log.With("component", "webrtc"), Metrics: s.metrics})
	if err != nil {
		return err
	}
	s.rtc = eng
	s.whep = whep.New(whep.Params{Peers: eng, Log: s.log.With("component", "whep")})
	return nil
}

func (s *Server) stopWebRTC(context.Context) error {
	s.whep.Close()
	return s.rtc.Close()
}

// startCameras pulls every camera of the registry, and follows the
// registry's changes; each camera's state changes are events. Always-on
// cameras keep their last seconds, which clips are cut from.
func (s *Server) startCameras(context.Context) error {
	cc := s.cfg.Cameras
	hub, err := cameras.New(cameras.Params{Log: s.log.With("component", "cameras"), Linger: cc.OnDemandLinger.D(),
		Transport: cc.RTSPTransport, OnStatus: s.cameraStatus, Prebuffer: cc.Prebuffer.D(), PrebufferMaxBytes: cc.PrebufferMaxBytes,
		Metrics: s.metrics})
	if err != nil {
		return err
	}
	s.cameras = hub
	cs, err := clips.NewStore(clips.StoreParams{DB: s.db, Dir: filepath.Join(s.cfg.DataDir, "clips"), Buffers: s.cameras})
	if err != nil {
		s.cameras.Close()
		return err
	}
	s.clips = cs
	scope, err := s.orgs.ScopeOf(s.rootOrg)
	if err != nil {
		return err
	}
	for _, c := range s.registry.ListCameras(scope, "") {
		s.pullCamera(c)
	}
	return nil
}

func (s *Server) stopCameras(context.Context) error {
	s.alertClipsMu.Lock()
	s.alertClipsOver = true
	s.alertClipsMu.Unlock()
	s.alertClips.Wait() // they read the buffers and write the database
	s.cameras.Close()
	return nil
}

// pullCamera gives the hub a camera as the registry has it now.
func (s *Server) pullCamera(c devices.Camera) {
	if err := s.cameras.Set(cameras.Spec{ID: string(c.ID), URL: c.URL, SubURL: c.SubURL, Mode: c.Mode}); err != nil {
		s.log.Error("camera not pulled", "camera", c.ID, "err", err)
	}
}

// cameraChanged follows a change of the registry's cameras.
func (s *Server) cameraChanged(action, id string) {
	if s.cameras == nil {
		return
	}
	if action == "deleted" {
		s.cameras.Remove(id)
		return
	}
	scope, err := s.orgs.ScopeOf(s.rootOrg)
	if err != nil {
		return
	}
	if c, err := s.registry.GetCamera(scope, devices.CameraID(id)); err == nil {
		s.pullCamera(c) // the record with its real URL, not the event's redacted one
	}
}

// cameraStatus puts a camera's state change on the events stream.
func (s *Server) cameraStatus(id string, st rtsp.Status) {
	scope, err := s.orgs.ScopeOf(s.rootOrg)
	if err != nil {
		return
	}
	c, err := s.registry.GetCamera(scope, devices.CameraID(id))
	if err != nil {
		return
	}
	s.publishEvent("camera", c.OrgID, map[string]any{"action": "state", "camera_id": id, "status": st})
}
