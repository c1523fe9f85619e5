package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lookout-cc/lookout/console/hearings"
	"github.com/lookout-cc/lookout/internal/errclass"
)

// Hearings: the officer's side under /api/v1/hearings (petitions
// permissions), and the resident's under /api/v1/hearing-link, which
// takes no console token: the link's own token travels in the body (never
// in a URL the server logs) and the device cookie binds the link to the
// phone that opened it first.

// deviceCookie is the resident's device's cookie: random, HttpOnly, sent
// only to the link's endpoints.
const (
	deviceCookie     = "lookout_hearing_device"
	deviceCookiePath = "/api/v1/hearing-link"
)

// withLobby adds who waits in the hearing's lobby.
func (a *API) withLobby(h hearings.Hearing) hearings.Hearing {
	if a.p.Hearings != nil && h.State != hearings.StateEnded && h.State != hearings.StateCancelled {
		h.Lobby = a.p.Hearings.Lobby(h.RoomID)
	}
	return h
}

type linkView struct {
	// Path is the resident's page: /h/{token}. The console makes it a
	// full URL with its own origin.
	Path      string    `json:"path"`
	ExpiresAt time.Time `json:"expires_at"`
}

// scheduleHearing answers POST /petitions/{id}/hearings: the hearing, and
// the resident's link (answered once, never stored).
func (a *API) scheduleHearing(c *gin.Context) {
	var in hearings.NewHearing
	if !a.decode(c, &in) {
		return
	}
	p := mustPrincipal(c)
	ctx := c.Request.Context()
	h, err := a.p.Hearings.Schedule(ctx, p.Scope, p.UserID, c.Param("id"), in)
	if err != nil {
		a.fail(c, err)
		return
	}
	token, exp, err := a.p.Hearings.IssueLink(ctx, p.Scope, h.ID)
	if err != nil {
		a.fail(c, err)
		return
	}
	if !a.record(c, h.OrgID, "hearing.schedule", h.ID, "ok", map[string]any{"petition": h.PetitionID, "starts_at": h.StartsAt,
		"officer": h.OfficerID, "others": len(h.Others), "link_expires_at": exp}) {
		return
	}
	h.Link.Active = true
	c.Header("Location", "/api/v1/hearings/"+h.ID)
	c.JSON(http.StatusCreated, gin.H{"hearing": h, "link": linkView{Path: "/h/" + token, ExpiresAt: exp}})
}

// listHearings answers GET /hearings?day=today|YYYY-MM-DD&petition=.
func (a *API) listHearings(c *gin.Context) {
	f := hearings.Filter{PetitionID: c.Query("petition")}
	switch day := c.Query("day"); day {
	case "":
	case "today":
		f.Day = time.Now()
	default:
		d, err := time.ParseInLocation(time.DateOnly, day, time.FixedZone("CST", 8*3600))
		if err != nil {
			a.fail(c, errclass.Invalidf("day", "must be today or YYYY-MM-DD"))
			return
		}
		f.Day = d
	}
	hs, err := a.p.Hearings.List(c.Request.Context(), mustPrincipal(c).Scope, f)
	if err != nil {
		a.fail(c, err)
		return
	}
	for i := range hs {
		hs[i] = a.withLobby(hs[i])
	}
	c.JSON(http.StatusOK, list(hs))
}

func (a *API) getHearing(c *gin.Context) {
	h, err := a.p.Hearings.Get(c.Request.Context(), mustPrincipal(c).Scope, c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, a.withLobby(h))
}

// issueHearingLink answers POST /hearings/{id}/link: a new link; the one
// before stops working.
func (a *API) issueHearingLink(c *gin.Context) {
	p := mustPrincipal(c)
	token, exp, err := a.p.Hearings.IssueLink(c.Request.Context(), p.Scope, c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	h, err := a.p.Hearings.Get(c.Request.Context(), p.Scope, c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	if !a.record(c, h.OrgID, "hearing.link_issue", h.ID, "ok", map[string]any{"expires_at": exp}) {
		return
	}
	c.JSON(http.StatusCreated, linkView{Path: "/h/" + token, ExpiresAt: exp})
}

// hearingStep answers the officer's steps that return the hearing: revoke
// the link, allow another device, admit, reject.
func (a *API) hearingStep(action string, do func(h *hearings.Service, c *gin.Context) (hearings.Hearing, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		h, err := do(a.p.Hearings, c)
		if err != nil {
			a.fail(c, err)
			return
		}
		if !a.record(c, h.OrgID, action, h.ID, "ok", nil) {
			return
		}
		c.JSON(http.StatusOK, a.withLobby(h))
	}
}

func (a *API) hearingHostToken(c *gin.Context) {
	p := mustPrincipal(c)
	g, err := a.p.Hearings.HostToken(c.Request.Context(), p.Scope, c.Param("id"), p.UserID, a.displayName(c))
	if err != nil {
		a.fail(c, err)
		return
	}
	h, err := a.p.Hearings.Get(c.Request.Context(), p.Scope, c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	if !a.record(c, h.OrgID, "room.token", g.Room, "ok", map[string]any{"identity": p.UserID, "role": "host", "hearing": h.ID, "expires_at": g.ExpiresAt}) {
		return
	}
	c.JSON(http.StatusCreated, gin.H{"room_id": g.Room, "token": g.Token, "expires_at": g.ExpiresAt, "identity": p.UserID})
}

// displayName is the caller's name as others in a meeting see it.
func (a *API) displayName(c *gin.Context) string {
	p := mustPrincipal(c)
	if a.p.Users != nil {
		if u, err := a.p.Users.Get(c.Request.Context(), p.Scope, p.UserID); err == nil && u.DisplayName != "" {
			return u.DisplayName
		}
	}
	return p.UserID
}

type noteRequest struct {
	Text string `json:"text"`
}

func (a *API) addHearingNote(c *gin.Context) {
	var in noteRequest
	if !a.decode(c, &in) {
		return
	}
	p := mustPrincipal(c)
	ctx := c.Request.Context()
	h, err := a.p.Hearings.Get(ctx, p.Scope, c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	n, err := a.p.Hearings.AddNote(ctx, p.Scope, h.ID, p.UserID, in.Text)
	if err != nil {
		a.fail(c, err)
		return
	}
	// The note may name people: the audit keeps that one was taken.
	if !a.record(c, h.OrgID, "hearing.note", h.ID, "ok", map[string]any{"characters": len([]rune(n.Text))}) {
		return
	}
	c.JSON(http.StatusCreated, n)
}

func (a *API) endHearing(c *gin.Context) {
	var in hearings.Ending
	if !a.decode(c, &in) {
		return
	}
	p := mustPrincipal(c)
	h, err := a.p.Hearings.End(c.Request.Context(), p.Scope, c.Param("id"), p.UserID, in)
	if err != nil {
		a.fail(c, err)
		return
	}
	recs := make([]map[string]any, 0, len(h.Recordings))
	for _, r := range h.Recordings {
		recs = append(recs, map[string]any{"id": r.ID, "state": r.State, "sha256": r.SHA256, "bytes": r.Bytes})
	}
	if !a.record(c, h.OrgID, "hearing.end", h.ID, "ok", map[string]any{"state": h.State, "outcome": h.Outcome, "recordings": recs}) {
		return
	}
	c.JSON(http.StatusOK, h)
}

func (a *API) hearingRecord(c *gin.Context) {
	r, err := a.p.Hearings.SignedRecord(c.Request.Context(), mustPrincipal(c).Scope, c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, r)
}

func (a *API) hearingRecordKey(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"algorithm": "Ed25519", "public_key": a.p.Hearings.PublicKey()})
}

// playRecording answers GET /hearings/{id}/recordings/{rec}: the file,
// with ranges (a player seeks); each opening is audited.
func (a *API) playRecording(c *gin.Context) {
	p := mustPrincipal(c)
	r, org, f, err := a.p.Hearings.RecordingFile(c.Request.Context(), p.Scope, c.Param("id"), c.Param("rec"))
	if err != nil {
		a.fail(c, err)
		return
	}
	defer f.Close()
	// A player asks again for each range: one audit entry per viewing
	// (the request without a Range or from byte 0).
	if rng := c.GetHeader("Range"); rng == "" || rng == "bytes=0-" {
		if !a.record(c, org, "hearing.recording_play", c.Param("id"), "ok", map[string]any{"recording": r.ID}) {
			return
		}
	}
	st, err := f.Stat()
	if err != nil {
		a.fail(c, err)
		return
	}
	ct := "video/webm"
	switch {
	case r.Kind == "audio":
		ct = "audio/webm"
	case r.Codec == "h264":
		ct = "video/mp4"
	}
	h := c.Writer.Header()
	h.Set("Content-Type", ct)
	h.Set("Cache-Control", "private, no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(c.Writer, c.Request, "", st.ModTime(), f)
}

func (a *API) deleteRecording(c *gin.Context) {
	p := mustPrincipal(c)
	r, org, err := a.p.Hearings.DeleteRecording(c.Request.Context(), p.Scope, c.Param("id"), c.Param("rec"), p.UserID)
	if err != nil {
		a.fail(c, err)
		return
	}
	if !a.record(c, org, "hearing.recording_delete", c.Param("id"), "ok", map[string]any{"recording": r.ID, "sha256": r.SHA256, "reason": "by hand"}) {
		return
	}
	c.JSON(http.StatusOK, r)
}

// The resident's side.

type linkRequest struct {
	Token   string `json:"token"`
	Consent bool   `json:"consent"`
}

// device returns the device cookie's value, making and setting one for a
// device that has none.
func (a *API) device(c *gin.Context) string {
	if v, err := c.Cookie(deviceCookie); err == nil && len(v) == 32 {
		return v
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	v := hex.EncodeToString(b)
	http.SetCookie(c.Writer, &http.Cookie{Name: deviceCookie, Value: v, Path: deviceCookiePath, MaxAge: int(hearings.MaxLinkValidity.Seconds()) + 86400,
		HttpOnly: true, Secure: c.Request.TLS != nil, SameSite: http.SameSiteStrictMode})
	return v
}

// linkRefused answers a refused link: its code and message, and, for a
// link not yet valid, when it opens; nothing else of the hearing.
func (a *API) linkRefused(c *gin.Context, n hearings.Notice, err error) {
	var e *errclass.Error
	if !errors.As(err, &e) {
		a.fail(c, err)
		return
	}
	status := kindStatus[e.Kind]
	body := gin.H{"error": errorDetail{Code: e.Code, Message: e.Message, Field: e.Field}}
	if errors.Is(err, hearings.ErrLinkNotYet) {
		body["opens_at"] = n.StartsAt.Add(-hearings.LinkEarly)
		body["starts_at"] = n.StartsAt
	}
	c.AbortWithStatusJSON(status, body)
}

// openHearingLink answers POST /hearing-link/open {token}: the hearing's
// notice for the resident's page.
func (a *API) openHearingLink(c *gin.Context) {
	var in linkRequest
	if !a.decode(c, &in) {
		return
	}
	n, err := a.p.Hearings.Open(c.Request.Context(), in.Token, a.device(c))
	if err != nil {
		a.auditLinkRefusal(c, in.Token, err)
		a.linkRefused(c, n, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"notice": n})
}

// joinHearingLink answers POST /hearing-link/join {token, consent}: with
// the resident's consent to the recording, a join token of the hearing's
// room, which waits in its lobby.
func (a *API) joinHearingLink(c *gin.Context) {
	var in linkRequest
	if !a.decode(c, &in) {
		return
	}
	n, g, err := a.p.Hearings.Join(c.Request.Context(), in.Token, a.device(c), in.Consent)
	if err != nil {
		a.auditLinkRefusal(c, in.Token, err)
		a.linkRefused(c, n, err)
		return
	}
	if g.First {
		org, _ := a.p.Hearings.OrgOf(c.Request.Context(), n.HearingID)
		if !a.recordAs(c, "resident:"+n.HearingID, org, "hearing.consent", n.HearingID, "ok", map[string]any{"recorded": true}) {
			return
		}
	}
	c.JSON(http.StatusOK, gin.H{"notice": n, "room_id": g.Room, "token": g.Token, "expires_at": g.ExpiresAt})
}

// auditLinkRefusal keeps a refused link of a known hearing (revoked, used
// on another device, the hearing over) in the audit log: an officer sees
// who was turned away. Forged links name no hearing and are only counted.
func (a *API) auditLinkRefusal(c *gin.Context, token string, err error) {
	id := a.p.Hearings.HearingOfLink(token)
	if id == "" || errors.Is(err, hearings.ErrConsentRequired) || errors.Is(err, hearings.ErrLinkNotYet) {
		return
	}
	org, oerr := a.p.Hearings.OrgOf(c.Request.Context(), id)
	if oerr != nil {
		return
	}
	code := "refused"
	var e *errclass.Error
	if errors.As(err, &e) {
		code = e.Code
	}
	_ = a.p.Audit.Record(c.Request.Context(), "resident:"+id, org, "hearing.link_refused", id, code, nil)
}
