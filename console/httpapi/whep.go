package httpapi

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/lookout-cc/lookout/console/auth"
	"github.com/lookout-cc/lookout/devices"
	"github.com/lookout-cc/lookout/ingest/cameras"
	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/sfu/meeting"
	"github.com/lookout-cc/lookout/sfu/source"
	"github.com/lookout-cc/lookout/sfu/whep"
)

// maxOfferBytes bounds a WHEP offer; a browser's is a few kilobytes.
const maxOfferBytes = 64 << 10

// whepOffer answers POST /whep/cameras/{id}: a viewer's SDP offer in,
// 201 with the SDP answer and the session's Location (to DELETE) out.
func (a *API) whepOffer(c *gin.Context) {
	p := mustPrincipal(c)
	cam, err := a.p.Devices.GetCamera(p.Scope, devices.CameraID(c.Param("id")))
	if err != nil {
		a.fail(c, err)
		return
	}
	body, stream, ok := a.readOffer(c)
	if !ok {
		return
	}
	wall, tile, ok := a.offerTile(c)
	if !ok {
		return
	}
	src, stream, release, ok := a.acquire(c, string(cam.ID), stream)
	if !ok {
		return
	}
	if sess := a.answerOffer(c, string(cam.ID), src, release, body, stream); sess != nil && wall != "" {
		sess.SetTile(wall, tile)
	}
}

// offerTile reads an offer's ?wall=&tile=: the wall tile the viewer plays
// it on, so that the server switches the session when the tile changes
// (internal/server's tile follower) without waiting for the viewer to
// ask. The wall must be the caller's and have the tile.
func (a *API) offerTile(c *gin.Context) (wall string, tile int, ok bool) {
	wall = c.Query("wall")
	if wall == "" || a.p.Walls == nil {
		return "", 0, true
	}
	w, err := a.p.Walls.Get(c.Request.Context(), mustPrincipal(c).Scope, wall)
	if err != nil {
		a.fail(c, err)
		return "", 0, false
	}
	tile, err = strconv.Atoi(c.Query("tile"))
	if err != nil || tile < 0 || tile >= len(w.Tiles) {
		a.fail(c, errclass.Invalidf("tile", "must be a tile of wall %s, 0 to %d", wall, len(w.Tiles)-1))
		return "", 0, false
	}
	return wall, tile, true
}

// participantPrefix names a WHEP session that plays a meeting participant
// (participant:{room}/{identity}) where others name a camera.
const participantPrefix = "participant:"

func participantOf(name string) (room, identity string, ok bool) {
	rest, ok := strings.CutPrefix(name, participantPrefix)
	if !ok {
		return "", "", false
	}
	return strings.Cut(rest, "/")
}

// whepParticipant answers POST /whep/rooms/{id}/participants/{identity}:
// the participant's camera video (the top layer they send, or the lowest
// for ?stream=sub) over WHEP, for a wall tile. The participant's meeting
// sees nothing of it.
func (a *API) whepParticipant(c *gin.Context) {
	room, err := a.meetingRoom(c, c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	body, stream, ok := a.readOffer(c)
	if !ok {
		return
	}
	identity := c.Param("identity")
	src, release, err := a.p.Meetings.Tap(room.ID, identity, stream)
	switch {
	case errors.Is(err, meeting.ErrParticipantNotFound):
		writeError(c, http.StatusNotFound, "participant_not_found", "", "no such participant in the meeting now")
		return
	case errors.Is(err, meeting.ErrNoVideo):
		writeError(c, http.StatusConflict, "no_video", "", "the participant publishes no camera video (or one in a codec other than VP8 or H.264)")
		return
	case err != nil:
		a.fail(c, err)
		return
	}
	// Watching a meeting from outside it is on the record: the room's
	// people do not see the wall.
	if !a.record(c, room.OrgID, "meeting.watch", room.ID, "ok", map[string]any{"identity": identity, "stream": stream}) {
		release()
		return
	}
	a.answerOffer(c, participantPrefix+room.ID+"/"+identity, src, release, body, stream)
}

// readOffer reads a WHEP offer's body and its ?stream=; false when it
// answered an error.
func (a *API) readOffer(c *gin.Context) (body []byte, stream string, ok bool) {
	if mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type")); err != nil || mt != "application/sdp" {
		writeError(c, http.StatusUnsupportedMediaType, "unsupported_media_type", "", "the body must be an SDP offer (application/sdp)")
		return nil, "", false
	}
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, maxOfferBytes+1))
	if err != nil {
		writeError(c, http.StatusBadRequest, "invalid_offer", "", "the offer could not be read")
		return nil, "", false
	}
	if len(body) > maxOfferBytes {
		writeError(c, http.StatusRequestEntityTooLarge, "body_too_large", "", "the offer is larger than 64 KiB")
		return nil, "", false
	}
	stream = c.DefaultQuery("stream", cameras.Main)
	if stream != cameras.Main && stream != cameras.Sub {
		a.fail(c, errclass.Invalidf("stream", "must be main or sub"))
		return nil, "", false
	}
	return body, stream, true
}

// answerOffer answers an offer for src, which release gives back if no
// session takes it.
func (a *API) answerOffer(c *gin.Context, name string, src *source.Source, release func(), body []byte, stream string) *whep.Session {
	answer, sess, err := a.p.WHEP.Offer(name, mustPrincipal(c).UserID, src, string(body), release)
	switch {
	case errors.Is(err, whep.ErrBadOffer):
		release()
		writeError(c, http.StatusBadRequest, "invalid_offer", "", strings.TrimPrefix(err.Error(), "bad offer: "))
		return nil
	case errors.Is(err, whep.ErrNoCodec):
		release()
		writeError(c, http.StatusUnprocessableEntity, "no_common_codec", "", "the offer has no video codec the source sends ("+src.Codec()+")")
		return nil
	case err != nil:
		release()
		a.fail(c, err)
		return nil
	}
	sess.SetStream(stream)
	loc := "/api/v1/whep/sessions/" + sess.ID
	c.Header("Location", loc)
	// The WHEP layer extension: POST {"encodingId": "main"|"sub"} there
	// switches the stream without a new offer.
	c.Header("Link", "<"+loc+`/layer>; rel="urn:ietf:params:whep:ext:core:layer"`)
	c.Header("X-Lookout-Stream", stream)
	c.Data(http.StatusCreated, "application/sdp", []byte(answer))
	return sess
}

// layerRequest is the WHEP layer extension's body: encodingId names the
// stream, "main" or "sub".
type layerRequest struct {
	EncodingID string `json:"encodingId"`
	MediaID    string `json:"mediaId"`
}

// whepLayer answers POST /whep/sessions/{id}/layer: the session switches
// to the camera's main or sub stream, without a new offer (a wall tile
// made large, or small again).
func (a *API) whepLayer(c *gin.Context) {
	sess, ok := a.sessionOf(c)
	if !ok {
		return
	}
	var in layerRequest
	if !a.decode(c, &in) {
		return
	}
	if in.EncodingID != cameras.Main && in.EncodingID != cameras.Sub {
		a.fail(c, errclass.Invalidf("encodingId", "must be main or sub"))
		return
	}
	if _, _, ok := participantOf(sess.Camera()); ok {
		writeError(c, http.StatusConflict, "not_a_camera", "", "the session plays a meeting participant: make a new offer for the other stream")
		return
	}
	src, stream, release, ok := a.acquire(c, sess.Camera(), in.EncodingID)
	if !ok {
		return
	}
	if a.switched(c, sess.Switch(src, release), src) {
		sess.SetStream(stream)
		c.JSON(http.StatusOK, gin.H{"stream": stream})
	}
}

// cameraRequest names the camera a session switches to, and its stream.
type cameraRequest struct {
	Camera string `json:"camera"`
	Stream string `json:"stream"`
}

// whepCamera answers POST /whep/sessions/{id}/camera: the session plays
// another camera (of the caller's scope) without a new offer, so a wall
// tile given another camera shows it as soon as the camera's cached
// keyframe arrives. A camera of another codec answers 409 codec_mismatch:
// the viewer then makes a new offer for it.
func (a *API) whepCamera(c *gin.Context) {
	sess, ok := a.sessionOf(c)
	if !ok {
		return
	}
	var in cameraRequest
	if !a.decode(c, &in) {
		return
	}
	if in.Stream == "" {
		in.Stream = cameras.Main
	}
	if in.Stream != cameras.Main && in.Stream != cameras.Sub {
		a.fail(c, errclass.Invalidf("stream", "must be main or sub"))
		return
	}
	if in.Camera == "" {
		a.fail(c, errclass.Invalidf("camera", "must name a camera"))
		return
	}
	cam, err := a.p.Devices.GetCamera(mustPrincipal(c).Scope, devices.CameraID(in.Camera))
	if err != nil {
		a.fail(c, err)
		return
	}
	src, stream, release, ok := a.acquire(c, string(cam.ID), in.Stream)
	if !ok {
		return
	}
	if sess.Plays(src) {
		// The server switched it already (the session's wall tile
		// changed), or it plays this camera anyway.
		release()
		c.JSON(http.StatusOK, gin.H{"camera": cam.ID, "stream": stream, "already": true})
		return
	}
	if a.switched(c, sess.SwitchCamera(string(cam.ID), src, release), src) {
		sess.SetStream(stream)
		c.JSON(http.StatusOK, gin.H{"camera": cam.ID, "stream": stream, "already": false})
	}
}

// whepHangup answers DELETE /whep/sessions/{id}: the viewer leaves. Only
// who may see the session's camera may end it.
func (a *API) whepHangup(c *gin.Context) {
	sess, ok := a.sessionOf(c)
	if !ok {
		return
	}
	_ = a.p.WHEP.Hangup(sess.ID)
	c.Status(http.StatusNoContent)
}

// acquire takes a camera's stream for a session; otherwise it has answered
// (503 camera_not_pulled when the hub does not pull the camera) and
// returns false.
func (a *API) acquire(c *gin.Context, camera, stream string) (*source.Source, string, func(), bool) {
	src, got, release, err := a.p.Cameras.Acquire(camera, stream)
	if errors.Is(err, cameras.ErrNotFound) {
		writeError(c, http.StatusServiceUnavailable, "camera_not_pulled", "", "the camera is not being pulled now; try again shortly")
		return nil, "", nil, false
	}
	if err != nil {
		a.fail(c, err)
		return nil, "", nil, false
	}
	return src, got, release, true
}

// sessionOf finds the session of the path's {id} that the caller may
// handle; otherwise it has answered and returns false.
func (a *API) sessionOf(c *gin.Context) (*whep.Session, bool) {
	sess, ok := a.p.WHEP.Session(c.Param("id"))
	if !ok {
		writeError(c, http.StatusNotFound, "session_not_found", "", "no such WHEP session")
		return nil, false
	}
	return sess, a.mayHandle(c, sess)
}

// switched answers a failed switch of a session to src; true when err is
// nil and the caller answers the success.
func (a *API) switched(c *gin.Context, err error, src *source.Source) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, whep.ErrSessionNotFound):
		writeError(c, http.StatusNotFound, "session_not_found", "", "no such WHEP session")
	case errors.Is(err, whep.ErrCodecMismatch):
		writeError(c, http.StatusConflict, "codec_mismatch", "", "the camera sends "+src.Codec()+", which this session does not play; make a new offer")
	default:
		a.fail(c, err)
	}
	return false
}

// mayHandle lets the session's own viewer end or switch it (and an admin
// whose subtree holds its camera or room end it, to clear a wall);
// otherwise it has answered and returns false.
func (a *API) mayHandle(c *gin.Context, sess *whep.Session) bool {
	p := mustPrincipal(c)
	if room, _, ok := participantOf(sess.Camera()); ok {
		if !p.Role.Can(auth.PermMeetingsRead) {
			writeError(c, http.StatusForbidden, "forbidden", "", "your role does not allow this")
			return false
		}
		if _, err := a.p.Rooms.Get(c.Request.Context(), p.Scope, room); err != nil {
			a.fail(c, err)
			return false
		}
	} else {
		if !p.Role.Can(auth.PermDevicesRead) {
			writeError(c, http.StatusForbidden, "forbidden", "", "your role does not allow this")
			return false
		}
		if _, err := a.p.Devices.GetCamera(p.Scope, devices.CameraID(sess.Camera())); err != nil {
			a.fail(c, err)
			return false
		}
	}
	// Only the session's own viewer changes what it plays; an admin of
	// its subtree may also end it (to clear a wall).
	if sess.Owner != p.UserID && (p.Role != auth.RoleAdmin || c.Request.Method != http.MethodDelete) {
		writeError(c, http.StatusForbidden, "not_your_session", "", "the session is another user's")
		return false
	}
	return true
}
