package httpapi

import (
	"github.com/lookout-cc/lookout/ingest/cameras"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/lookout-cc/lookout/devices"
)

// Cameras are answered and audited only in their redacted form: their URLs
// may carry the camera's password, which stays in the registry for the
// puller.

// listCameras answers GET /cameras: each camera as GET /cameras/{id}
// answers it, with its state, so that a wall shows every camera's state
// from one call.
func (a *API) listCameras(c *gin.Context) {
	cams := a.p.Devices.ListCameras(mustPrincipal(c).Scope, devices.SiteID(c.Query("site_id")))
	views := make([]cameraView, len(cams))
	for i := range cams {
		views[i] = a.cameraView(cams[i])
	}
	c.JSON(http.StatusOK, list(views))
}

func (a *API) cameraView(cam devices.Camera) cameraView {
	view := cameraView{Camera: cam.Redacted(), State: "unknown"}
	if a.p.Cameras != nil {
		if st, ok := a.p.Cameras.Status(string(cam.ID)); ok {
			view.State, view.Stream = string(st.State), &st
		}
	}
	return view
}

// cameraView is a camera as GET /cameras/{id} answers: the record (its
// URLs redacted), its state, and the stream's figures.
type cameraView struct {
	devices.Camera
	State  string          `json:"state"`
	Stream *cameras.Status `json:"stream,omitempty"`
}

func (a *API) getCamera(c *gin.Context) {
	cam, err := a.p.Devices.GetCamera(mustPrincipal(c).Scope, devices.CameraID(c.Param("id")))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, a.cameraView(cam))
}

func (a *API) createCamera(c *gin.Context) {
	var in devices.NewCamera
	if !a.decode(c, &in) {
		return
	}
	cam, err := a.p.Devices.CreateCamera(c.Request.Context(), mustPrincipal(c).Scope, in)
	if err != nil {
		a.fail(c, err)
		return
	}
	cam = cam.Redacted()
	if !a.record(c, cam.OrgID, "camera.create", string(cam.ID), "ok", cameraDetail(cam)) {
		return
	}
	c.JSON(http.StatusCreated, cam)
}

// updateCamera changes a camera: name, site (and with it the
// organisation), URLs, location or metadata.
func (a *API) updateCamera(c *gin.Context) {
	var patch devices.CameraPatch
	if !a.decode(c, &patch) {
		return
	}
	cam, err := a.p.Devices.UpdateCamera(c.Request.Context(), mustPrincipal(c).Scope, devices.CameraID(c.Param("id")), patch)
	if err != nil {
		a.fail(c, err)
		return
	}
	cam = cam.Redacted()
	if !a.record(c, cam.OrgID, "camera.update", string(cam.ID), "ok", cameraDetail(cam)) {
		return
	}
	c.JSON(http.StatusOK, cam)
}

func (a *API) deleteCamera(c *gin.Context) {
	cam, err := a.p.Devices.DeleteCamera(c.Request.Context(), mustPrincipal(c).Scope, devices.CameraID(c.Param("id")))
	if err != nil {
		a.fail(c, err)
		return
	}
	if !a.record(c, cam.OrgID, "camera.delete", string(cam.ID), "ok", map[string]any{"name": cam.Name, "site": cam.SiteID}) {
		return
	}
	c.Status(http.StatusNoContent)
}

// cameraDetail is what the audit log keeps of a camera: cam must be
// redacted already.
func cameraDetail(cam devices.Camera) map[string]any {
	d := map[string]any{"name": cam.Name, "site": cam.SiteID, "url": cam.URL}
	if cam.SubURL != "" {
		d["sub_url"] = cam.SubURL
	}
	return d
}
