package httpapi

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/lookout-cc/lookout/console/auth"
	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
	"github.com/lookout-cc/lookout/sfu/meeting"
	"github.com/lookout-cc/lookout/sfu/rooms"
)

func (a *API) listRooms(c *gin.Context) {
	rs, err := a.p.Rooms.List(c.Request.Context(), mustPrincipal(c).Scope)
	if err != nil {
		a.fail(c, err)
		return
	}
	rs = slices.DeleteFunc(rs, func(r rooms.Room) bool { return rooms.IsHearing(r.ID) })
	c.JSON(http.StatusOK, list(rs))
}

// meetingRoom is a meeting room in the caller's scope; a hearing's room
// is not one (rooms.HearingPrefix): the hearings' API holds it.
func (a *API) meetingRoom(c *gin.Context, id string) (rooms.Room, error) {
	if rooms.IsHearing(id) {
		return rooms.Room{}, rooms.ErrRoomNotFound
	}
	return a.p.Rooms.Get(c.Request.Context(), mustPrincipal(c).Scope, id)
}

// roomView is a room as GET /rooms/{id} answers: the record, and who is
// in it now.
type roomView struct {
	rooms.Room
	Participants []meeting.ParticipantInfo `json:"participants"`
}

func (a *API) getRoom(c *gin.Context) {
	r, err := a.meetingRoom(c, c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	view := roomView{Room: r, Participants: []meeting.ParticipantInfo{}}
	if a.p.Meetings != nil {
		view.Participants = a.p.Meetings.RoomParticipants(r.ID)
	}
	c.JSON(http.StatusOK, view)
}

func (a *API) createRoom(c *gin.Context) {
	var in rooms.NewRoom
	if !a.decode(c, &in) {
		return
	}
	p := mustPrincipal(c)
	r, err := a.p.Rooms.Create(c.Request.Context(), p.Scope, p.UserID, in)
	if err != nil {
		a.fail(c, err)
		return
	}
	if !a.record(c, r.OrgID, "room.create", r.ID, "ok", map[string]any{"name": r.Name, "max_participants": r.MaxParticipants}) {
		return
	}
	c.Header("Location", "/api/v1/rooms/"+r.ID)
	c.JSON(http.StatusCreated, r)
}

type roomPatch struct {
	Locked *bool `json:"locked"`
}

// updateRoom answers PATCH /rooms/{id} {"locked": bool}: a locked room
// admits no one new.
func (a *API) updateRoom(c *gin.Context) {
	var in roomPatch
	if !a.decode(c, &in) {
		return
	}
	if in.Locked == nil {
		a.fail(c, errclass.Invalidf("locked", "is required"))
		return
	}
	if rooms.IsHearing(c.Param("id")) {
		a.fail(c, rooms.ErrRoomNotFound)
		return
	}
	r, err := a.p.Rooms.SetLocked(c.Request.Context(), mustPrincipal(c).Scope, c.Param("id"), *in.Locked)
	if err != nil {
		a.fail(c, err)
		return
	}
	action := "room.unlock"
	if r.Locked {
		action = "room.lock"
	}
	if a.p.Meetings != nil {
		a.p.Meetings.SetLocked(r.ID, r.Locked, mustPrincipal(c).UserID)
	}
	if !a.record(c, r.OrgID, action, r.ID, "ok", nil) {
		return
	}
	c.JSON(http.StatusOK, r)
}

func (a *API) deleteRoom(c *gin.Context) {
	if rooms.IsHearing(c.Param("id")) {
		a.fail(c, rooms.ErrRoomNotFound)
		return
	}
	r, err := a.p.Rooms.Delete(c.Request.Context(), mustPrincipal(c).Scope, c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	if a.p.Meetings != nil {
		// Whoever is in it leaves (reason closed).
		a.p.Meetings.CloseRoom(r.ID)
	}
	if !a.record(c, r.OrgID, "room.delete", r.ID, "ok", nil) {
		return
	}
	c.Status(http.StatusNoContent)
}

// tokenRequest asks for a join token for one participant.
type tokenRequest struct {
	Identity string           `json:"identity"`
	Name     string           `json:"name"`
	Role     string           `json:"role"`
	Rights   *auth.RoomRights `json:"rights"`
	TTLS     int              `json:"ttl_s"`
}

// Join tokens: the roles a participant may have, and their default rights.
var roomRoles = map[string]auth.RoomRights{
	"host":        {Publish: true, Subscribe: true, PublishData: true, Admin: true},
	"participant": {Publish: true, Subscribe: true, PublishData: true},
	"viewer":      {Subscribe: true},
}

const (
	defaultJoinTTL = 4 * time.Hour
	maxJoinTTL     = 24 * time.Hour
)

// issueRoomToken answers POST /rooms/{id}/tokens: a signed join token for
// one identity, with its role's rights (or those given), until it expires.
// The token is answered once and never stored or logged.
func (a *API) issueRoomToken(c *gin.Context) {
	var in tokenRequest
	if !a.decode(c, &in) {
		return
	}
	r, err := a.meetingRoom(c, c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	in.Name = strings.TrimSpace(in.Name)
	switch {
	case !orgs.IDPattern.MatchString(in.Identity):
		err = errclass.Invalidf("identity", "must be 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit")
	case in.Name == "" || len([]rune(in.Name)) > 100:
		err = errclass.Invalidf("name", "must be 1-100 characters: the name the others see")
	case in.Role == "":
		in.Role = "participant"
	}
	if err == nil {
		if _, known := roomRoles[in.Role]; !known {
			roles := make([]string, 0, len(roomRoles))
			for k := range roomRoles {
				roles = append(roles, k)
			}
			slices.Sort(roles)
			err = errclass.Invalidf("role", "must be one of %s", strings.Join(roles, ", "))
		}
	}
	ttl := defaultJoinTTL
	if err == nil && in.TTLS != 0 {
		ttl = time.Duration(in.TTLS) * time.Second
		if ttl < time.Minute || ttl > maxJoinTTL {
			err = errclass.Invalidf("ttl_s", "must be 60 to %d seconds", int(maxJoinTTL.Seconds()))
		}
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	rights := roomRoles[in.Role]
	if in.Rights != nil {
		rights = *in.Rights
	}
	token, exp, err := a.p.Signer.IssueJoin(auth.JoinClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: in.Identity}, Name: in.Name, Room: r.ID,
		Org: string(r.OrgID), Role: in.Role, Rights: rights}, ttl)
	if err != nil {
		a.fail(c, err)
		return
	}
	if !a.record(c, r.OrgID, "room.token", r.ID, "ok", map[string]any{"identity": in.Identity, "role": in.Role, "rights": rights, "expires_at": exp}) {
		return
	}
	c.JSON(http.StatusCreated, gin.H{"token": token, "expires_at": exp.UTC(), "room_id": r.ID, "identity": in.Identity, "role": in.Role, "rights": rights})
}
