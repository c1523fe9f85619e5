package signal

import "encoding/json"

// Server message types.
const (
	TypeJoined            = "joined"             // {participant, room, participants, ice_servers, spotlight}
	TypeParticipantJoined = "participant_joined" // {participant}
	TypeParticipantLeft   = "participant_left"   // {identity, reason}
	TypeTrackPublished    = "track_published"    // {identity, track}
	TypeTrackUnpublished  = "track_unpublished"  // {identity, track}
	TypeMuteChanged       = "mute_changed"       // {identity, kind, muted, by}
	TypeSpeakers          = "speakers"           // {speakers}
	TypeRoomLocked        = "room_locked"        // {locked, by}
	TypeSpotlight         = "spotlight"          // {identity, by}
	TypeUnmuteRequest     = "unmute_request"     // {kind, by}: the host asks this participant to open their microphone
	TypeRemoved           = "removed"            // {by}: the host removed this participant; the connection closes
	TypeLayerChanged      = "layer_changed"      // {identity, track, layer, paused, reason}
	TypeError             = "error"              // {code, message, field, id}
	TypePong              = "pong"               // {}
	// TypeLobby tells one who joined with a lobby token that they wait for
	// a host ({state: waiting}), and tells hosts who waits ({lobby}).
	TypeLobby = "lobby"
)

// Why a participant left.
const (
	LeftLeft         = "left"         // said goodbye
	LeftRemoved      = "removed"      // removed by a host
	LeftDisconnected = "disconnected" // the signaling connection closed without a goodbye
	LeftTimeout      = "timeout"      // the media connection failed (ICE timed out)
	LeftReplaced     = "replaced"     // the same identity joined again from elsewhere
	LeftClosed       = "closed"       // the room was closed (deleted, or the server stopping)
	LeftRejected     = "rejected"     // a host did not admit them from the lobby
)

// LobbyEntry is one who waits in the lobby, as hosts see them.
type LobbyEntry struct {
	Identity string `json:"identity"`
	Name     string `json:"name"`
	Role     string `json:"role"`
	Since    string `json:"since"` // RFC 3339
}

// Participant is a participant as others see them.
type Participant struct {
	Identity string      `json:"identity"`
	Name     string      `json:"name"`
	Role     string      `json:"role"`
	Tracks   []TrackInfo `json:"tracks"`
}

// TrackInfo is a published track.
type TrackInfo struct {
	// ID is the track id subscribers see (the MediaStreamTrack id in the
	// server's offer); StreamID groups a participant's tracks.
	ID       string `json:"id"`
	StreamID string `json:"stream_id"`
	Kind     string `json:"kind"`   // audio or video
	Source   string `json:"source"` // camera, microphone, screen, screen_audio
	Codec    string `json:"codec"`
	// Simulcast is set when the publisher sends layers (rid h, m, l).
	Simulcast bool `json:"simulcast"`
	Muted     bool `json:"muted"`
}

// RoomInfo is the room as a participant sees it.
type RoomInfo struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Locked bool   `json:"locked"`
}

// ICEServer is a STUN or TURN server, in the browser's RTCIceServer shape.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Speaker is one active speaker and their smoothed level (0-1).
type Speaker struct {
	Identity string  `json:"identity"`
	Level    float64 `json:"level"`
}

// Self is the joining participant's own grant.
type Self struct {
	Identity string   `json:"identity"`
	Name     string   `json:"name"`
	Role     string   `json:"role"`
	Rights   []string `json:"rights"`
}

// ServerMessage is one message of the server; the fields of its type are
// set.
type ServerMessage struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`

	// joined
	Self         *Self         `json:"self,omitempty"`
	Room         *RoomInfo     `json:"room,omitempty"`
	Participants []Participant `json:"participants,omitempty"`
	ICEServers   []ICEServer   `json:"ice_servers,omitempty"`

	SDP           string       `json:"sdp,omitempty"`
	Target        string       `json:"target,omitempty"`
	Candidate     string       `json:"candidate,omitempty"`
	SDPMid        string       `json:"sdp_mid,omitempty"`
	SDPMLineIndex *int         `json:"sdp_mline_index,omitempty"`
	Participant   *Participant `json:"participant,omitempty"`
	Identity      string       `json:"identity,omitempty"`
	Reason        string       `json:"reason,omitempty"`
	Track         *TrackInfo   `json:"track,omitempty"`
	Kind          string       `json:"kind,omitempty"`
	Muted         *bool        `json:"muted,omitempty"`
	By            string       `json:"by,omitempty"`
	Speakers      []Speaker    `json:"speakers,omitempty"`
	Locked        *bool        `json:"locked,omitempty"`
	Spotlight     *string      `json:"spotlight,omitempty"`
	Layer         string       `json:"layer,omitempty"`
	Paused        *bool        `json:"paused,omitempty"`
	Text          string       `json:"text,omitempty"`
	Name          string       `json:"name,omitempty"`
	At            string       `json:"at,omitempty"`
	// lobby: State "waiting" to the one waiting; Lobby (possibly empty)
	// to hosts.
	State string        `json:"state,omitempty"`
	Lobby *[]LobbyEntry `json:"lobby,omitempty"`

	// error
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	Field   string `json:"field,omitempty"`
}

// Encode marshals a server message.
func (m *ServerMessage) Encode() []byte {
	b, err := json.Marshal(m)
	if err != nil {
		// Every field is a plain value; this cannot fail.
		panic(err)
	}
	return b
}

// ErrorMessage is the message telling a client of a refusal; id echoes the
// client message's id.
func ErrorMessage(e *Error, id string) *ServerMessage {
	return &ServerMessage{Type: TypeError, ID: id, Code: e.Code, Message: e.Message, Field: e.Field}
}

// Ptr returns a pointer to v, for the optional fields.
func Ptr[T any](v T) *T { return &v }
