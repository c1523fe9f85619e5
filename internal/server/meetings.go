package server

import (
	"context"
	"net"
	"strings"
	"time"

	"github.com/lookout-cc/lookout/internal/orgs"
	"github.com/lookout-cc/lookout/sfu/meeting"
	"github.com/lookout-cc/lookout/sfu/rooms"
	"github.com/lookout-cc/lookout/sfu/signal"
	"github.com/lookout-cc/lookout/sfu/turn"
)

// startMeetings starts the meeting SFU on the WebRTC engine, and the TURN
// server when configured.
func (s *Server) startMeetings(context.Context) error {
	s.rooms = s.roomStore()
	// A participant's wall tile names a room of the wall's subtree.
	s.walls.CheckRooms(roomsExist{s.rooms})
	tc := s.cfg.TURN
	if tc.UDPAddr != "" || tc.TCPAddr != "" {
		srv, err := turn.New(turn.Params{UDPAddr: tc.UDPAddr, TCPAddr: tc.TCPAddr, RelayIP: tc.RelayIP,
			RelayPortMin: tc.RelayPortMin, RelayPortMax: tc.RelayPortMax, Secret: s.signer.Derive("turn"),
			Log: s.log.With("component", "turn")})
		if err != nil {
			return err
		}
		s.turn = srv
	}
	m, err := meeting.New(meeting.Params{
		Peers:      s.rtc,
		Rooms:      rooms.InOrg{Store: s.rooms},
		Verify:     s.signer.VerifyJoin,
		ICEServers: s.iceServers,
		Audit:      s.audit,
		Log:        s.log.With("component", "meeting"),
		Metrics:    s.metrics,
		// The first admission to a hearing's room starts its recording;
		// a hearing's tokens end with its link and with the hearing.
		OnAdmit:   s.hearings.OnAdmit,
		CheckJoin: s.hearings.CheckJoin,
	})
	if err != nil {
		if s.turn != nil {
			_ = s.turn.Close()
		}
		return err
	}
	s.meetings = m
	s.hearings.SetMeetings(m)
	return nil
}

func (s *Server) stopMeetings(context.Context) error {
	s.meetings.Close()
	if s.turn != nil {
		return s.turn.Close()
	}
	return nil
}

// roomStore is the meeting rooms' store, made once (the hearings make
// their rooms in it, and start before the meetings).
func (s *Server) roomStore() *rooms.Store {
	if s.rooms == nil {
		s.rooms = rooms.NewStore(s.db, s.orgs)
	}
	return s.rooms
}

// iceServers are a participant's TURN servers with credentials until the
// join token expires.
func (s *Server) iceServers(identity, host string, expires time.Time) []signal.ICEServer {
	if s.turn == nil {
		return nil
	}
	ttl := max(time.Until(expires), time.Minute)
	if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil && ip.IsUnspecified() {
		host = ""
	}
	var out []signal.ICEServer
	for _, is := range s.turn.ICEServers(identity, ttl, host) {
		out = append(out, signal.ICEServer{URLs: is.URLs, Username: is.Username, Credential: is.Credential})
	}
	return out
}

// roomsExist tells the walls whether a room is in a subtree.
type roomsExist struct{ rooms *rooms.Store }

func (r roomsExist) Exists(ctx context.Context, scope orgs.Scope, id string) error {
	if rooms.IsHearing(id) {
		// A hearing is shown to its officers, never on a wall.
		return rooms.ErrRoomNotFound
	}
	_, err := r.rooms.Get(ctx, scope, id)
	return err
}
