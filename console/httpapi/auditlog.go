package httpapi

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/lookout-cc/lookout/internal/audit"
	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// record audits a step the request made. The step has happened already;
// an entry that cannot be written is logged as an error and answered 500,
// so the caller learns the record is incomplete.
func (a *API) record(c *gin.Context, org orgs.ID, action, target, result string, detail map[string]any) bool {
	actor := "anonymous"
	if p, ok := principalOf(c); ok {
		actor = p.UserID
	}
	return a.recordAs(c, actor, org, action, target, result, detail)
}

func (a *API) recordAs(c *gin.Context, actor string, org orgs.ID, action, target, result string, detail map[string]any) bool {
	if err := a.p.Audit.Record(c.Request.Context(), actor, org, action, target, result, detail); err != nil {
		a.p.Log.ErrorContext(c.Request.Context(), "audit entry not written", "action", action, "target", target, "err", err)
		writeError(c, http.StatusInternalServerError, "audit_failed", "", "the step was done but could not be written to the audit log")
		return false
	}
	return true
}

// listAudit answers GET /audit?actor=&action=&target=&from=&to=&before=&limit=,
// newest first, limited to the caller's subtree.
func (a *API) listAudit(c *gin.Context) {
	f := audit.Filter{Actor: c.Query("actor"), Action: c.Query("action"), Target: c.Query("target")}
	var err error
	if raw := c.Query("from"); raw != "" {
		if f.From, err = parseTime(raw, f.From); err != nil {
			a.fail(c, errclass.Invalidf("from", "must be Unix milliseconds or RFC 3339"))
			return
		}
	}
	if raw := c.Query("to"); raw != "" {
		if f.To, err = parseTime(raw, f.To); err != nil {
			a.fail(c, errclass.Invalidf("to", "must be Unix milliseconds or RFC 3339"))
			return
		}
	}
	for name, dst := range map[string]*int64{"before": &f.Before} {
		if raw := c.Query(name); raw != "" {
			if *dst, err = strconv.ParseInt(raw, 10, 64); err != nil || *dst < 0 {
				a.fail(c, errclass.Invalidf(name, "must be an entry number"))
				return
			}
		}
	}
	if raw := c.Query("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 1000 {
			a.fail(c, errclass.Invalidf("limit", "must be 1-1000"))
			return
		}
		f.Limit = n
	}
	es, err := a.p.Audit.List(c.Request.Context(), mustPrincipal(c).Scope, f)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, list(es))
}
