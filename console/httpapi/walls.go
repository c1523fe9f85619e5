package httpapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/lookout-cc/lookout/console/events"
	"github.com/lookout-cc/lookout/console/walls"
	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
)

func (a *API) listWalls(c *gin.Context) {
	ws, err := a.p.Walls.List(c.Request.Context(), mustPrincipal(c).Scope)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, list(ws))
}

func (a *API) getWall(c *gin.Context) {
	w, err := a.p.Walls.Get(c.Request.Context(), mustPrincipal(c).Scope, c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, w)
}

func (a *API) createWall(c *gin.Context) {
	var in walls.NewWall
	if !a.decode(c, &in) {
		return
	}
	p := mustPrincipal(c)
	w, err := a.p.Walls.Create(c.Request.Context(), p.Scope, p.UserID, in)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.publishWall(c, w.OrgID, w)
	if !a.record(c, w.OrgID, "wall.create", w.ID, "ok", map[string]any{"name": w.Name, "layout": w.Layout, "alert_area": w.AlertArea}) {
		return
	}
	c.Header("Location", "/api/v1/walls/"+w.ID)
	c.JSON(http.StatusCreated, w)
}

// updateWall answers PATCH /walls/{id}: name, layout, patrol (null
// clears), alert area; with version, only if the wall is at it.
func (a *API) updateWall(c *gin.Context) {
	var in walls.Patch
	if !a.decode(c, &in) {
		return
	}
	p := mustPrincipal(c)
	w, err := a.p.Walls.Update(c.Request.Context(), p.Scope, p.UserID, c.Param("id"), in)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.publishWall(c, w.OrgID, w)
	changed := map[string]any{"version": w.Version}
	if in.Name != nil {
		changed["name"] = w.Name
	}
	if in.Layout != nil {
		changed["layout"] = w.Layout
	}
	if in.AlertArea != nil || in.Layout != nil {
		changed["alert_area"] = w.AlertArea
	}
	if in.Patrol.Set {
		changed["patrol"] = w.Patrol
	}
	if !a.record(c, w.OrgID, "wall.update", w.ID, "ok", changed) {
		return
	}
	c.JSON(http.StatusOK, w)
}

// setWallTile answers PUT /walls/{id}/tiles/{index}: the tile shows a
// source, a patrol, or nothing.
func (a *API) setWallTile(c *gin.Context) {
	var in walls.TileInput
	if !a.decode(c, &in) {
		return
	}
	index, err := strconv.Atoi(c.Param("index"))
	if err != nil {
		a.fail(c, errclass.Invalidf("index", "must be a tile number"))
		return
	}
	p := mustPrincipal(c)
	w, err := a.p.Walls.SetTile(c.Request.Context(), p.Scope, p.UserID, c.Param("id"), index, in)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.publishWall(c, w.OrgID, w)
	t := w.Tiles[index]
	if !a.record(c, w.OrgID, "wall.tile", w.ID, "ok", map[string]any{"index": index, "source": t.Source, "patrol": t.Patrol, "version": w.Version}) {
		return
	}
	c.JSON(http.StatusOK, w)
}

func (a *API) deleteWall(c *gin.Context) {
	w, err := a.p.Walls.Delete(c.Request.Context(), mustPrincipal(c).Scope, c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	a.publishWall(c, w.OrgID, walls.Deleted{ID: w.ID, Deleted: true})
	if !a.record(c, w.OrgID, "wall.delete", w.ID, "ok", map[string]any{"name": w.Name}) {
		return
	}
	c.Status(http.StatusNoContent)
}

// publishWall announces a wall's change on the events stream: the wall
// itself, or walls.Deleted.
func (a *API) publishWall(c *gin.Context, org orgs.ID, data any) {
	if a.p.Events == nil {
		return
	}
	if _, err := a.p.Events.Publish(events.TypeWall, org, data); err != nil && !errors.Is(err, events.ErrClosed) {
		a.p.Log.ErrorContext(c.Request.Context(), "wall event not published", "err", err)
	}
}
