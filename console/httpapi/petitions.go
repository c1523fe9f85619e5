package httpapi

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/lookout-cc/lookout/console/auth"
	"github.com/lookout-cc/lookout/console/petitions"
	"github.com/lookout-cc/lookout/internal/errclass"
)

// maySeePII says whether the caller reads petitioners' personal data whole.
func maySeePII(c *gin.Context) bool { return mustPrincipal(c).Role.Can(auth.PermPetitionsPII) }

// listPetitions answers GET /petitions?state=&limit=: the petitions of the
// caller's subtree, newest first, the petitioners masked.
func (a *API) listPetitions(c *gin.Context) {
	f := petitions.Filter{State: c.Query("state")}
	if raw := c.Query("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			a.fail(c, errclass.Invalidf("limit", "must be 1 to 1000"))
			return
		}
		f.Limit = n
	}
	ps, err := a.p.Petitions.List(c.Request.Context(), mustPrincipal(c).Scope, f)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, list(ps))
}

// getPetition answers GET /petitions/{id}: whole for roles that read
// personal data (each such read is audited), masked for the others.
func (a *API) getPetition(c *gin.Context) {
	whole := maySeePII(c)
	p, err := a.p.Petitions.Get(c.Request.Context(), mustPrincipal(c).Scope, c.Param("id"), whole)
	if err != nil {
		a.fail(c, err)
		return
	}
	if whole && !a.record(c, p.OrgID, "petition.read_personal_data", p.ID, "ok", nil) {
		return
	}
	c.JSON(http.StatusOK, p)
}

// createPetition answers POST /petitions: 201 with the petition as the
// caller may see it. The audit entry holds the petitioner masked.
func (a *API) createPetition(c *gin.Context) {
	var in petitions.NewPetition
	if !a.decode(c, &in) {
		return
	}
	pr := mustPrincipal(c)
	p, err := a.p.Petitions.Create(c.Request.Context(), pr.Scope, pr.UserID, in)
	if err != nil {
		a.fail(c, err)
		return
	}
	masked := petitions.Petitioner{Name: petitions.MaskName(p.Petitioner.Name), Phone: petitions.MaskPhone(p.Petitioner.Phone),
		IDNumber: petitions.MaskIDNumber(p.Petitioner.IDNumber), Masked: true}
	if !a.record(c, p.OrgID, "petition.create", p.ID, "ok", map[string]any{"subject": p.Subject, "site_id": p.SiteID, "petitioner": masked}) {
		return
	}
	if !maySeePII(c) {
		p.Petitioner = masked
	}
	c.Header("Location", "/api/v1/petitions/"+p.ID)
	c.JSON(http.StatusCreated, p)
}

type petitionStep struct {
	Step string `json:"step"`
	Note string `json:"note"`
}

// stepPetition answers POST /petitions/{id}/steps {"step","note"}: the
// petition moves to the step's state (409 invalid_step when its state
// does not allow it), audited as petition.<step>.
func (a *API) stepPetition(c *gin.Context) {
	var in petitionStep
	if !a.decode(c, &in) {
		return
	}
	pr := mustPrincipal(c)
	p, err := a.p.Petitions.Step(c.Request.Context(), pr.Scope, pr.UserID, c.Param("id"), in.Step, in.Note)
	if err != nil {
		a.fail(c, err)
		return
	}
	if !a.record(c, p.OrgID, "petition."+in.Step, p.ID, p.State, map[string]any{"note": in.Note}) {
		return
	}
	c.JSON(http.StatusOK, p)
}
