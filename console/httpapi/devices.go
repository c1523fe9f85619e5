package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/lookout-cc/lookout/devices"
)

func (a *API) listSites(c *gin.Context) {
	sites, err := a.p.Devices.ListSites(c.Request.Context(), mustPrincipal(c).Scope)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, list(sites))
}

func (a *API) getSite(c *gin.Context) {
	s, err := a.p.Devices.GetSite(c.Request.Context(), mustPrincipal(c).Scope, devices.SiteID(c.Param("id")))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, s)
}

func (a *API) createSite(c *gin.Context) {
	var in devices.NewSite
	if !a.decode(c, &in) {
		return
	}
	p := mustPrincipal(c)
	s, err := a.p.Devices.CreateSite(c.Request.Context(), p.Scope, in)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.p.Log.InfoContext(c.Request.Context(), "site created", "site", s.ID, "org", s.OrgID, "by", p.UserID)
	c.JSON(http.StatusCreated, s)
}

func (a *API) listDevices(c *gin.Context) {
	c.JSON(http.StatusOK, list(a.p.Devices.ListDevices(mustPrincipal(c).Scope, devices.SiteID(c.Query("site_id")))))
}

func (a *API) getDevice(c *gin.Context) {
	d, err := a.p.Devices.GetDevice(mustPrincipal(c).Scope, devices.ID(c.Param("id")))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, d)
}

type createdDevice struct {
	devices.Device
	// MQTT holds the device's credentials, shown only in this answer.
	MQTT devices.Credentials `json:"mqtt"`
}

func (a *API) createDevice(c *gin.Context) {
	var in devices.NewDevice
	if !a.decode(c, &in) {
		return
	}
	p := mustPrincipal(c)
	d, creds, err := a.p.Devices.CreateDevice(c.Request.Context(), p.Scope, in)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.p.Log.InfoContext(c.Request.Context(), "device created", "device", d.ID, "site", d.SiteID, "by", p.UserID)
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, createdDevice{Device: d, MQTT: creds})
}
