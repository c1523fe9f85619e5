package httpapi

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/lookout-cc/lookout/devices"
	"github.com/lookout-cc/lookout/ingest/cameras"
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
	if mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type")); err != nil || mt != "application/sdp" {
		writeError(c, http.StatusUnsupportedMediaType, "unsupported_media_type", "", "the body must be an SDP offer (application/sdp)")
		return
	}
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, maxOfferBytes+1))
	if err != nil {
		writeError(c, http.StatusBadRequest, "invalid_offer", "", "the offer could not be read")
		return
	}
	if len(body) > maxOfferBytes {
		writeError(c, http.StatusRequestEntityTooLarge, "body_too_large", "", "the offer is larger than 64 KiB")
		return
	}
	src, release, err := a.p.Cameras.Acquire(string(cam.ID))
	if errors.Is(err, cameras.ErrNotFound) {
		writeError(c, http.StatusServiceUnavailable, "camera_not_pulled", "", "the camera is not being pulled yet; try again shortly")
		return
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	answer, sess, err := a.p.WHEP.Offer(string(cam.ID), p.UserID, src, string(body), release)
	switch {
	case errors.Is(err, whep.ErrBadOffer):
		release()
		writeError(c, http.StatusBadRequest, "invalid_offer", "", strings.TrimPrefix(err.Error(), "bad offer: "))
		return
	case errors.Is(err, whep.ErrNoCodec):
		release()
		writeError(c, http.StatusUnprocessableEntity, "no_common_codec", "", "the offer has no video codec the camera sends ("+src.Codec()+")")
		return
	case err != nil:
		release()
		a.fail(c, err)
		return
	}
	c.Header("Location", "/api/v1/whep/sessions/"+sess.ID)
	c.Data(http.StatusCreated, "application/sdp", []byte(answer))
}

// whepHangup answers DELETE /whep/sessions/{id}: the viewer leaves. Only
// who may see the session's camera may end it.
func (a *API) whepHangup(c *gin.Context) {
	sess, ok := a.p.WHEP.Session(c.Param("id"))
	if !ok {
		writeError(c, http.StatusNotFound, "session_not_found", "", "no such WHEP session")
		return
	}
	if _, err := a.p.Devices.GetCamera(mustPrincipal(c).Scope, devices.CameraID(sess.Camera)); err != nil {
		a.fail(c, err)
		return
	}
	_ = a.p.WHEP.Hangup(sess.ID)
	c.Status(http.StatusNoContent)
}
