package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/lookout-cc/lookout/console/users"
	"github.com/lookout-cc/lookout/internal/orgs"
)

type listResponse[T any] struct {
	Items     []T `json:"items"`
	ItemCount int `json:"item_count"`
}

func list[T any](items []T) listResponse[T] {
	if items == nil {
		items = []T{}
	}
	return listResponse[T]{Items: items, ItemCount: len(items)}
}

func (a *API) healthz(c *gin.Context) {
	st, ok := a.p.Health.Run(c.Request.Context())
	status := http.StatusOK
	word := "ok"
	if !ok {
		status, word = http.StatusServiceUnavailable, "unavailable"
	}
	c.JSON(status, gin.H{"status": word, "version": a.p.Version, "components": st})
}

func (a *API) listOrgs(c *gin.Context) {
	c.JSON(http.StatusOK, list(a.p.Orgs.List(mustPrincipal(c).Scope)))
}

func (a *API) getOrg(c *gin.Context) {
	o, err := a.p.Orgs.Get(mustPrincipal(c).Scope, orgs.ID(c.Param("id")))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, o)
}

func (a *API) createOrg(c *gin.Context) {
	var in orgs.NewOrg
	if !a.decode(c, &in) {
		return
	}
	p := mustPrincipal(c)
	o, err := a.p.Orgs.Create(c.Request.Context(), p.Scope, in)
	if err != nil {
		a.fail(c, err)
		return
	}
	if !a.record(c, o.ID, "org.create", string(o.ID), "ok", map[string]any{"parent": o.ParentID, "name": o.Name, "kind": o.Kind}) {
		return
	}
	c.JSON(http.StatusCreated, o)
}

func (a *API) listUsers(c *gin.Context) {
	us, err := a.p.Users.List(c.Request.Context(), mustPrincipal(c).Scope, orgs.ID(c.Query("org_id")))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, list(us))
}

func (a *API) getUser(c *gin.Context) {
	u, err := a.p.Users.Get(c.Request.Context(), mustPrincipal(c).Scope, c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, u)
}

func (a *API) createUser(c *gin.Context) {
	var in users.NewUser
	if !a.decode(c, &in) {
		return
	}
	p := mustPrincipal(c)
	u, err := a.p.Users.Create(c.Request.Context(), p.Scope, in)
	if err != nil {
		a.fail(c, err)
		return
	}
	if !a.record(c, u.OrgID, "user.create", u.ID, "ok", map[string]any{"role": u.Role}) {
		return
	}
	c.JSON(http.StatusCreated, u)
}

func (a *API) updateUser(c *gin.Context) {
	var patch users.Patch
	if !a.decode(c, &patch) {
		return
	}
	p := mustPrincipal(c)
	u, err := a.p.Users.Update(c.Request.Context(), p.Scope, p.UserID, c.Param("id"), patch)
	if err != nil {
		a.fail(c, err)
		return
	}
	changed := map[string]any{}
	if patch.DisplayName != nil {
		changed["display_name"] = *patch.DisplayName
	}
	if patch.OrgID != nil {
		changed["org_id"] = *patch.OrgID
	}
	if patch.Role != nil {
		changed["role"] = *patch.Role
	}
	if patch.Disabled != nil {
		changed["disabled"] = *patch.Disabled
	}
	if patch.Password != nil {
		changed["password"] = "changed" // never the password itself
	}
	if !a.record(c, u.OrgID, "user.update", u.ID, "ok", changed) {
		return
	}
	c.JSON(http.StatusOK, u)
}
