// Package signal is the meeting signaling protocol (docs/signaling.md):
// JSON messages over a WebSocket between a participant and the SFU. This
// file holds the messages and the decoder of what clients send, which
// refuses anything malformed, unknown or oversized with a clear error and
// never panics (it is fuzzed).
package signal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// MaxMessage bounds one message from a client; an SDP of a browser with
// simulcast is a few kilobytes.
const MaxMessage = 64 << 10

// Client message types.
const (
	TypeJoin      = "join"      // {token}: the first message, once
	TypeOffer     = "offer"     // {sdp, tracks}: the publisher connection's offer (publishing, or an ICE restart)
	TypeAnswer    = "answer"    // {sdp}: the answer to the server's offer of the subscriber connection
	TypeCandidate = "candidate" // {target, candidate, sdp_mid, sdp_mline_index}: trickle ICE
	TypeRestart   = "restart"   // {}: ask for an ICE restart of the subscriber connection
	TypeMute      = "mute"      // {kind, muted}: the client's own audio or video
	TypeLayer     = "layer"     // {identity, quality}: the tile size a participant is shown at
	TypeHost      = "host"      // {action, identity?, kind?, locked?}: host controls
	TypeChat      = "chat"      // {text}: a chat message, for clients without data channels
	TypeLeave     = "leave"     // {}: goodbye
	TypePing      = "ping"      // {}: keep-alive, answered with pong
)

// Host control actions.
const (
	HostMute      = "mute"      // identity, kind: mute one participant's audio or video
	HostRemove    = "remove"    // identity: remove a participant
	HostLock      = "lock"      // locked: lock or unlock the room
	HostSpotlight = "spotlight" // identity ("" ends it): roll call, one participant to everyone's main view
	HostAdmit     = "admit"     // identity: let one who waits in the lobby in
	HostReject    = "reject"    // identity: turn one who waits in the lobby away (refused until the room ends)
)

// ClientMessage is one decoded message of a client; the fields of its type
// are set.
type ClientMessage struct {
	Type string `json:"type"`
	// ID, when the client sets it, comes back on the answer or error.
	ID string `json:"id,omitempty"`

	Token string `json:"token,omitempty"`
	SDP   string `json:"sdp,omitempty"`
	// Tracks names the source of each track of an offer by its track id
	// (the browser's MediaStreamTrack.id): camera, microphone, screen or
	// screen_audio.
	Tracks map[string]string `json:"tracks,omitempty"`
	// Target is the connection a candidate is for: publisher (the client
	// offers) or subscriber (the server offers).
	Target        string `json:"target,omitempty"`
	Candidate     string `json:"candidate,omitempty"`
	SDPMid        string `json:"sdp_mid,omitempty"`
	SDPMLineIndex *int   `json:"sdp_mline_index,omitempty"`
	Kind          string `json:"kind,omitempty"` // audio or video
	Muted         *bool  `json:"muted,omitempty"`
	Identity      string `json:"identity,omitempty"`
	Quality       string `json:"quality,omitempty"` // high, medium, low, off
	Action        string `json:"action,omitempty"`
	Locked        *bool  `json:"locked,omitempty"`
	Text          string `json:"text,omitempty"`
}

// Connection targets.
const (
	TargetPublisher  = "publisher"
	TargetSubscriber = "subscriber"
)

// Track sources.
const (
	SourceCamera      = "camera"
	SourceMicrophone  = "microphone"
	SourceScreen      = "screen"
	SourceScreenAudio = "screen_audio"
)

// MaxChat bounds one chat message's text, in bytes.
const MaxChat = 2000

// MaxTracks bounds the tracks one offer may name.
const MaxTracks = 8

// Error is a refusal the client is told of: {"type": "error", "code",
// "message", "field"}.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Code + ": " + e.Field + ": " + e.Message
	}
	return e.Code + ": " + e.Message
}

// Error codes.
const (
	CodeTooLarge    = "too_large"
	CodeBadJSON     = "bad_json"
	CodeUnknownType = "unknown_type"
	CodeBadField    = "bad_field"
)

func badField(field, format string, args ...any) *Error {
	return &Error{Code: CodeBadField, Field: field, Message: fmt.Sprintf(format, args...)}
}

// fields lists what each type may carry, besides type and id.
var fields = map[string][]string{
	TypeJoin:      {"token"},
	TypeOffer:     {"sdp", "tracks"},
	TypeAnswer:    {"sdp"},
	TypeCandidate: {"target", "candidate", "sdp_mid", "sdp_mline_index"},
	TypeRestart:   {},
	TypeChat:      {"text"},
	TypeMute:      {"kind", "muted"},
	TypeLayer:     {"identity", "quality"},
	TypeHost:      {"action", "identity", "kind", "locked"},
	TypeLeave:     {},
	TypePing:      {},
}

// Decode reads one client message: one JSON object of a known type, with
// only that type's fields, each valid.
func Decode(data []byte) (ClientMessage, error) {
	if len(data) > MaxMessage {
		return ClientMessage{}, &Error{Code: CodeTooLarge, Message: fmt.Sprintf("a message is at most %d bytes", MaxMessage)}
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return ClientMessage{}, &Error{Code: CodeBadJSON, Message: "a message is one JSON object"}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return ClientMessage{}, &Error{Code: CodeBadJSON, Message: "trailing data after the JSON object"}
	}
	var typ string
	if err := json.Unmarshal(raw["type"], &typ); err != nil || typ == "" {
		return ClientMessage{}, badField("type", "is required, a string")
	}
	allowed, known := fields[typ]
	if !known {
		return ClientMessage{}, &Error{Code: CodeUnknownType, Field: "type", Message: fmt.Sprintf("unknown message type %q", truncate(typ, 32))}
	}
	for k := range raw {
		if k != "type" && k != "id" && !contains(allowed, k) {
			return ClientMessage{}, badField(truncate(k, 64), "is not a field of a %s message", typ)
		}
	}
	var m ClientMessage
	strict := json.NewDecoder(bytes.NewReader(data))
	strict.DisallowUnknownFields()
	if err := strict.Decode(&m); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return ClientMessage{}, badField(te.Field, "has the wrong type")
		}
		return ClientMessage{}, &Error{Code: CodeBadJSON, Message: "the message does not decode"}
	}
	if len(m.ID) > 64 {
		return ClientMessage{}, badField("id", "at most 64 bytes")
	}
	return m, m.check()
}

// check validates the fields of a decoded message's type.
func (m *ClientMessage) check() error {
	switch m.Type {
	case TypeJoin:
		if m.Token == "" || len(m.Token) > 4096 {
			return badField("token", "is required, the join token (at most 4096 bytes)")
		}
	case TypeOffer, TypeAnswer:
		if !strings.HasPrefix(m.SDP, "v=0") {
			return badField("sdp", "is required, an SDP starting with v=0")
		}
		if len(m.Tracks) > MaxTracks {
			return badField("tracks", "at most %d tracks", MaxTracks)
		}
		for id, src := range m.Tracks {
			if id == "" || len(id) > 128 {
				return badField("tracks", "a track id is 1-128 bytes")
			}
			if !contains([]string{SourceCamera, SourceMicrophone, SourceScreen, SourceScreenAudio}, src) {
				return badField("tracks", "a source is camera, microphone, screen or screen_audio")
			}
		}
	case TypeChat:
		if strings.TrimSpace(m.Text) == "" || len(m.Text) > MaxChat || !utf8.ValidString(m.Text) {
			return badField("text", "is 1-%d bytes of UTF-8 text", MaxChat)
		}
	case TypeCandidate:
		if m.Target != TargetPublisher && m.Target != TargetSubscriber {
			return badField("target", "must be publisher or subscriber")
		}
		if len(m.Candidate) > 1024 {
			return badField("candidate", "at most 1024 bytes")
		}
		if m.Candidate != "" && !strings.HasPrefix(m.Candidate, "candidate:") {
			return badField("candidate", "is an ICE candidate line (candidate:...), or empty for the end of candidates")
		}
		if len(m.SDPMid) > 32 || (m.SDPMLineIndex != nil && (*m.SDPMLineIndex < 0 || *m.SDPMLineIndex > 64)) {
			return badField("sdp_mid", "names one media of the session")
		}
	case TypeMute:
		if m.Kind != "audio" && m.Kind != "video" {
			return badField("kind", "must be audio or video")
		}
		if m.Muted == nil {
			return badField("muted", "is required")
		}
	case TypeLayer:
		if m.Identity == "" || len(m.Identity) > 64 {
			return badField("identity", "is required, a participant's identity")
		}
		if !contains([]string{"high", "medium", "low", "off"}, m.Quality) {
			return badField("quality", "must be high, medium, low or off")
		}
	case TypeHost:
		switch m.Action {
		case HostMute:
			if m.Identity == "" {
				return badField("identity", "is required")
			}
			if m.Kind != "audio" && m.Kind != "video" {
				return badField("kind", "must be audio or video")
			}
		case HostRemove, HostAdmit, HostReject:
			if m.Identity == "" {
				return badField("identity", "is required")
			}
		case HostLock:
			if m.Locked == nil {
				return badField("locked", "is required")
			}
		case HostSpotlight:
		default:
			return badField("action", "must be mute, remove, lock, spotlight, admit or reject")
		}
		if len(m.Identity) > 64 {
			return badField("identity", "at most 64 bytes")
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
