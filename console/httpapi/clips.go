package httpapi

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lookout-cc/lookout/devices"
	"github.com/lookout-cc/lookout/ingest/clips"
	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// Clips are spans of an always-on camera's pre-alert buffer saved as MP4.
// Reading them takes devices:read, like watching the camera. Making one
// takes devices:command: it is an operational step of the duty operators
// and commanders during an incident (save what the camera saw), like
// sending a device a command, not a change of configuration, which
// devices:write (the admins') is for. Both are scoped by the camera's
// organisation; a clip keeps the one its camera had when it was made.

// clipRequest is POST /cameras/{id}/clips's body. from and to are Unix
// milliseconds or RFC 3339 strings.
type clipRequest struct {
	From json.RawMessage `json:"from"`
	To   json.RawMessage `json:"to"`
	Note string          `json:"note"`
}

// clipView is a clip as the API answers it, with where to fetch it.
type clipView struct {
	clips.Clip
	URL string `json:"url"`
}

func viewClip(c clips.Clip) clipView {
	return clipView{Clip: c, URL: "/api/v1/clips/" + c.ID}
}

// spanTime reads a time given as Unix milliseconds (a number, or a string
// of digits) or RFC 3339.
func spanTime(raw json.RawMessage, field string) (time.Time, error) {
	bad := errclass.Invalidf(field, "must be Unix milliseconds or an RFC 3339 time")
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, errclass.Invalidf(field, "is required: Unix milliseconds or an RFC 3339 time")
	}
	var ms int64
	if err := json.Unmarshal(raw, &ms); err == nil {
		return time.UnixMilli(ms), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}, bad
	}
	t, err := parseTime(s, time.Time{})
	if err != nil || t.IsZero() {
		return time.Time{}, bad
	}
	return t, nil
}

// createClip answers POST /cameras/{id}/clips: 201 with the clip, 409 when
// the span is not in the camera's buffer (the message says what is) or the
// camera keeps none.
func (a *API) createClip(c *gin.Context) {
	p := mustPrincipal(c)
	cam, err := a.p.Devices.GetCamera(p.Scope, devices.CameraID(c.Param("id")))
	if err != nil {
		a.fail(c, err)
		return
	}
	var in clipRequest
	if !a.decode(c, &in) {
		return
	}
	from, err := spanTime(in.From, "from")
	if err != nil {
		a.fail(c, err)
		return
	}
	to, err := spanTime(in.To, "to")
	if err != nil {
		a.fail(c, err)
		return
	}
	clip, err := a.p.Clips.Create(c.Request.Context(), clips.Request{Camera: string(cam.ID), Org: cam.OrgID, From: from, To: to,
		Note: in.Note, Actor: p.UserID})
	if err != nil {
		a.fail(c, err)
		return
	}
	detail := map[string]any{"camera": cam.ID, "from": clip.From, "to": clip.To, "duration_ms": clip.DurationMS, "bytes": clip.Bytes}
	if clip.Note != "" {
		detail["note"] = clip.Note
	}
	if !a.record(c, cam.OrgID, "clip.create", clip.ID, "ok", detail) {
		return
	}
	v := viewClip(clip)
	c.Header("Location", v.URL)
	c.JSON(http.StatusCreated, v)
}

// listClips answers GET /cameras/{id}/clips?limit=: the camera's clips,
// newest first.
func (a *API) listClips(c *gin.Context) {
	cam, err := a.p.Devices.GetCamera(mustPrincipal(c).Scope, devices.CameraID(c.Param("id")))
	if err != nil {
		a.fail(c, err)
		return
	}
	limit := 100
	if raw := c.Query("limit"); raw != "" {
		if limit, err = strconv.Atoi(raw); err != nil || limit < 1 || limit > 1000 {
			a.fail(c, errclass.Invalidf("limit", "must be 1-1000"))
			return
		}
	}
	cs, err := a.p.Clips.List(c.Request.Context(), string(cam.ID), limit)
	if err != nil {
		a.fail(c, err)
		return
	}
	// A clip keeps the organisation its camera had: after the camera
	// moved to another organisation, its earlier clips stay with the
	// first one.
	scope := mustPrincipal(c).Scope
	out := make([]clipView, 0, len(cs))
	for _, cl := range cs {
		if a.p.Orgs.Contains(scope, cl.OrgID) {
			out = append(out, viewClip(cl))
		}
	}
	c.JSON(http.StatusOK, list(out))
}

// getClip answers GET /clips/{id} (or {id}.mp4): the MP4 file, with Range
// requests answered (206), as a <video> element or a download asks.
func (a *API) getClip(c *gin.Context) {
	clip, err := a.p.Clips.Get(c.Request.Context(), strings.TrimSuffix(c.Param("id"), ".mp4"))
	if err != nil {
		a.fail(c, err)
		return
	}
	if !a.p.Orgs.Contains(mustPrincipal(c).Scope, clip.OrgID) {
		a.fail(c, orgs.ErrOutOfScope)
		return
	}
	f, err := a.p.Clips.Open(clip)
	if errors.Is(err, fs.ErrNotExist) {
		writeError(c, http.StatusNotFound, "clip_file_missing", "", "the clip is indexed but its file is gone from the data directory")
		return
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	defer f.Close()
	name := clip.CameraID + "_" + clip.From.UTC().Format("20060102T150405Z") + ".mp4"
	h := c.Writer.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("Content-Disposition", `inline; filename="`+name+`"`)
	h.Set("ETag", `"`+clip.ID+`"`) // a clip never changes
	h.Set("Cache-Control", "private, max-age=86400")
	http.ServeContent(c.Writer, c.Request, name, clip.CreatedAt, f)
}
