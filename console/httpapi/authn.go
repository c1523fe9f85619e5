package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lookout-cc/lookout/console/auth"
	"github.com/lookout-cc/lookout/console/users"
)

const principalKey = "lookout.principal"

func principalOf(c *gin.Context) (auth.Principal, bool) {
	v, ok := c.Get(principalKey)
	if !ok {
		return auth.Principal{}, false
	}
	p, ok := v.(auth.Principal)
	return p, ok
}

func mustPrincipal(c *gin.Context) auth.Principal {
	p, _ := principalOf(c)
	return p
}

// authenticate admits a request that carries a valid console token of a
// user who exists and is enabled. Role and organisation come from the user
// record, not the token, so a change takes effect at the next request.
func (a *API) authenticate(c *gin.Context) {
	h := c.GetHeader("Authorization")
	scheme, token, found := strings.Cut(h, " ")
	if h == "" {
		a.fail(c, auth.ErrTokenMissing)
		return
	}
	if !found || !strings.EqualFold(scheme, "Bearer") || token == "" {
		a.fail(c, auth.ErrTokenInvalid)
		return
	}
	claims, err := a.p.Signer.Verify(token)
	if err != nil {
		a.fail(c, err)
		return
	}
	u, err := a.p.Users.Lookup(c.Request.Context(), claims.Subject)
	if errors.Is(err, users.ErrNotFound) || (err == nil && u.Disabled) {
		a.fail(c, auth.ErrTokenInvalid)
		return
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	scope, err := a.p.Orgs.ScopeOf(u.OrgID)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Set(principalKey, auth.Principal{UserID: u.ID, OrgID: u.OrgID, Role: u.Role, Scope: scope})
	c.Next()
}

// requireAny admits callers whose role grants one of ps; the handler
// checks the one that applies.
func (a *API) requireAny(ps ...auth.Permission) gin.HandlerFunc {
	return func(c *gin.Context) {
		role := mustPrincipal(c).Role
		for _, p := range ps {
			if role.Can(p) {
				c.Next()
				return
			}
		}
		writeError(c, http.StatusForbidden, "forbidden", "", "your role does not allow this")
	}
}

// require admits callers whose role grants permission p.
func (a *API) require(p auth.Permission) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !mustPrincipal(c).Role.Can(p) {
			writeError(c, http.StatusForbidden, "forbidden", "", "your role does not allow this")
			return
		}
		c.Next()
	}
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type loginResponse struct {
	Token     string     `json:"token"`
	ExpiresAt time.Time  `json:"expires_at"`
	User      users.User `json:"user"`
}

// login checks a user name and password. Wrong user and wrong password get
// the same 401; repeated failures, per user name and per client address, are
// answered 429 with Retry-After before any password is checked.
func (a *API) login(c *gin.Context) {
	var req loginRequest
	if !a.decode(c, &req) {
		return
	}
	if req.Username == "" || req.Password == "" || len(req.Username) > 64 || len(req.Password) > 4*auth.MaxPasswordLen {
		writeError(c, http.StatusUnauthorized, "bad_credentials", "", "wrong user name or password")
		return
	}
	keys := []string{"user:" + strings.ToLower(req.Username), "addr:" + c.ClientIP()}
	if wait := a.p.Throttle.Wait(keys...); wait > 0 {
		c.Header("Retry-After", strconv.Itoa(int(wait.Round(time.Second)/time.Second)+1))
		writeError(c, http.StatusTooManyRequests, "too_many_attempts", "", "too many failed logins; wait and try again")
		return
	}
	u, err := a.p.Users.Authenticate(c.Request.Context(), req.Username, req.Password)
	if errors.Is(err, users.ErrBadCredentials) {
		a.p.Throttle.Fail(keys...)
		a.p.Log.WarnContext(c.Request.Context(), "login failed", "user", req.Username, "client", c.ClientIP())
		// Failed logins belong to no organisation the caller proved; they
		// are kept under the root, for the top administrators to see.
		if !a.recordAs(c, req.Username, a.p.Orgs.RootID(), "auth.login", req.Username, "bad_credentials", map[string]any{"client": c.ClientIP()}) {
			return
		}
		a.fail(c, err)
		return
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	a.p.Throttle.Succeed(keys[0])
	token, exp, err := a.p.Signer.Issue(u.ID, string(u.OrgID), u.Role, a.p.TokenTTL)
	if err != nil {
		a.fail(c, err)
		return
	}
	if !a.recordAs(c, u.ID, u.OrgID, "auth.login", u.ID, "ok", map[string]any{"client": c.ClientIP()}) {
		return
	}
	c.JSON(http.StatusOK, loginResponse{Token: token, ExpiresAt: exp.UTC(), User: u})
}

type meResponse struct {
	User        users.User        `json:"user"`
	Org         any               `json:"org"`
	Permissions []auth.Permission `json:"permissions"`
}

func (a *API) me(c *gin.Context) {
	p := mustPrincipal(c)
	u, err := a.p.Users.Lookup(c.Request.Context(), p.UserID)
	if err != nil {
		a.fail(c, err)
		return
	}
	org, err := a.p.Orgs.Get(p.Scope, p.OrgID)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, meResponse{User: u, Org: org, Permissions: p.Role.Permissions()})
}

// consoleConfig answers GET /console/config: what the front end needs of
// the server's configuration (the map's tile servers).
func (a *API) consoleConfig(c *gin.Context) {
	cfg := a.p.ConsoleConfig
	if cfg.Map.Tiles == nil {
		cfg.Map.Tiles = []string{}
	}
	c.JSON(http.StatusOK, cfg)
}
