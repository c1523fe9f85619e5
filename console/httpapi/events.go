package httpapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/lookout-cc/lookout/console/auth"
	"github.com/lookout-cc/lookout/console/events"
	"github.com/lookout-cc/lookout/internal/errclass"
)

// eventPermission is what a listener needs to receive each type of event.
var eventPermission = map[string]auth.Permission{
	"alert":   auth.PermAlertsRead,
	"device":  auth.PermDevicesRead,
	"command": auth.PermDevicesRead,
	"camera":  auth.PermDevicesRead,
	"wall":    auth.PermDevicesRead,
}

// events answers GET /events?types=alert,device: server-sent events of
// the types asked for (default all), only those of the caller's subtree
// and permitted by the caller's role. A client that reconnects with
// Last-Event-ID (or ?last_event_id=) gets what it missed, or a gap event
// when that is too old to replay.
func (a *API) events(c *gin.Context) {
	p := mustPrincipal(c)
	var want []string
	if raw := c.Query("types"); raw != "" {
		for _, t := range strings.Split(raw, ",") {
			if _, known := eventPermission[t]; !known {
				a.fail(c, errclass.Invalidf("types", "unknown event type %q; types are alert, device, command, camera, wall", t))
				return
			}
			want = append(want, t)
		}
	}
	allowed := map[string]bool{}
	for t, perm := range eventPermission {
		if p.Role.Can(perm) && (want == nil || slices.Contains(want, t)) {
			allowed[t] = true
		}
	}
	if len(allowed) == 0 {
		writeError(c, http.StatusForbidden, "forbidden", "", "your role may not receive these events")
		return
	}
	last := c.GetHeader("Last-Event-ID")
	if last == "" {
		last = c.Query("last_event_id")
	}
	sub := a.p.Events.Subscribe(func(ev events.Event) bool {
		return allowed[ev.Type] && a.p.Orgs.Contains(p.Scope, ev.OrgID)
	}, last)
	defer sub.Close()
	// The stream's end (the client left, or the server stops) is normal;
	// the request log records how long it lasted.
	_ = events.ServeSSE(c.Writer, c.Request, sub, 0)
}
