package httpapi

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/lookout-cc/lookout/console/alerts"
	"github.com/lookout-cc/lookout/devices"
	"github.com/lookout-cc/lookout/internal/errclass"
)

func (a *API) listRules(c *gin.Context) {
	c.JSON(http.StatusOK, list(a.p.Rules.List(mustPrincipal(c).Scope)))
}

func (a *API) getRule(c *gin.Context) {
	r, err := a.p.Rules.Get(mustPrincipal(c).Scope, c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, r)
}

// createRule adds a rule; it is audited with the rule store's write.
func (a *API) createRule(c *gin.Context) {
	var in alerts.Rule
	if !a.decode(c, &in) {
		return
	}
	p := mustPrincipal(c)
	r, err := a.p.Rules.Create(c.Request.Context(), p.Scope, p.UserID, in)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Header("Location", "/api/v1/rules/"+r.ID)
	c.JSON(http.StatusCreated, r)
}

// updateRule replaces a rule (PUT: the whole rule).
func (a *API) updateRule(c *gin.Context) {
	var in alerts.Rule
	if !a.decode(c, &in) {
		return
	}
	if in.ID != "" && in.ID != c.Param("id") {
		a.fail(c, errclass.Invalidf("id", "does not match the rule in the path"))
		return
	}
	p := mustPrincipal(c)
	r, err := a.p.Rules.Update(c.Request.Context(), p.Scope, p.UserID, c.Param("id"), in)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, r)
}

func (a *API) deleteRule(c *gin.Context) {
	p := mustPrincipal(c)
	if _, err := a.p.Rules.Delete(c.Request.Context(), p.Scope, p.UserID, c.Param("id")); err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// listAlerts answers GET /alerts?state=&severity=&site_id=&device_id=&rule_id=&limit=,
// newest first; state "open" is active, acknowledged or dispatched.
func (a *API) listAlerts(c *gin.Context) {
	f := alerts.Filter{State: c.Query("state"), Severity: alerts.Severity(c.Query("severity")), SiteID: devices.SiteID(c.Query("site_id")),
		DeviceID: devices.ID(c.Query("device_id")), RuleID: c.Query("rule_id")}
	if raw := c.Query("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 1000 {
			a.fail(c, errclass.Invalidf("limit", "must be 1 to 1000"))
			return
		}
		f.Limit = n
	}
	p := mustPrincipal(c)
	as, err := a.p.Alerts.List(c.Request.Context(), p.Scope, f)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, list(as))
}

func (a *API) getAlert(c *gin.Context) {
	al, err := a.p.Alerts.Get(c.Request.Context(), mustPrincipal(c).Scope, c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, al)
}

// alertStep answers POST /alerts/{id}/{ack,dispatch,resolve,close} with
// {"note"} (and for dispatch "org_id" and/or "department").
func (a *API) alertStep(step string) gin.HandlerFunc {
	return func(c *gin.Context) {
		var in alerts.StepInput
		if c.Request.ContentLength != 0 && !a.decode(c, &in) {
			return
		}
		p := mustPrincipal(c)
		al, err := a.p.Alerts.Step(c.Request.Context(), p.Scope, c.Param("id"), step, p.UserID, in)
		if err != nil {
			a.fail(c, err)
			return
		}
		c.JSON(http.StatusOK, al)
	}
}
