// Package httpapi is the console's HTTP layer on gin: routing, the JSON error
// shape, strict request decoding, authentication of requests, request logs
// and metrics. Handlers translate between HTTP and the domain packages; no
// domain package imports gin.
//
// Handlers pass c.Request.Context() on, never the *gin.Context itself: gin
// reuses its contexts once a handler returns, while database/sql may still
// watch the context it was given from a goroutine of its own.
package httpapi

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lookout-cc/lookout/console/alerts"
	"github.com/lookout-cc/lookout/console/auth"
	"github.com/lookout-cc/lookout/console/events"
	"github.com/lookout-cc/lookout/console/hearings"
	"github.com/lookout-cc/lookout/console/meet"
	"github.com/lookout-cc/lookout/console/petitions"
	"github.com/lookout-cc/lookout/console/player"
	"github.com/lookout-cc/lookout/console/users"
	"github.com/lookout-cc/lookout/console/walls"
	"github.com/lookout-cc/lookout/devices"
	"github.com/lookout-cc/lookout/ingest/cameras"
	"github.com/lookout-cc/lookout/ingest/clips"
	"github.com/lookout-cc/lookout/internal/audit"
	"github.com/lookout-cc/lookout/internal/health"
	"github.com/lookout-cc/lookout/internal/orgs"
	"github.com/lookout-cc/lookout/sfu/meeting"
	"github.com/lookout-cc/lookout/sfu/rooms"
	"github.com/lookout-cc/lookout/sfu/source"
	"github.com/lookout-cc/lookout/sfu/whep"
)

// Params are what the API needs from the rest of the server.
type Params struct {
	Log     *slog.Logger
	Metrics *prometheus.Registry
	Health  *health.Registry
	Orgs    *orgs.Store
	Users   *users.Store
	Devices *devices.Registry
	Audit   *audit.Log
	// Presence says which devices are connected; Commands runs commands.
	Presence *devices.Presence
	Commands *devices.Commands
	// Rules and Alerts are the alert rules and alerts; Events the live
	// events stream.
	Rules  *alerts.Rules
	Alerts *alerts.Store
	Events *events.Bus
	// Cameras pulls the cameras; WHEP plays them to viewers.
	Cameras *cameras.Hub
	// Rooms are the meeting rooms; Meetings the SFU holding the rooms in
	// progress, whose signaling WebSocket is /rtc/signal (nil: off).
	Rooms    *rooms.Store
	Meetings Meetings
	// Walls are the video walls; nil turns their routes off.
	Walls *walls.Store
	// Petitions are the residents' petitions (信访); nil turns their
	// routes off.
	Petitions *petitions.Store
	// Hearings are the petitions' remote hearings; nil turns their
	// endpoints and the resident's link off.
	Hearings *hearings.Service
	WHEP     *whep.Server
	// Clips saves spans of the cameras' pre-alert buffers; nil turns the
	// clip routes off.
	Clips *clips.Store
	// Telemetry reads the time-series store.
	Telemetry TelemetryReader
	Signer    *auth.Signer
	Throttle  *auth.Throttle
	TokenTTL  time.Duration
	// MaxBodyBytes caps every request body.
	MaxBodyBytes int64
	Version      string
	// Console serves the web front end (console/web) on every GET path
	// that no route takes; nil: none. ConsoleConfig is what the front end
	// reads of the server's configuration (GET /api/v1/console/config).
	Console       http.Handler
	ConsoleConfig ConsoleConfig
}

// ConsoleConfig is the front end's part of the configuration.
type ConsoleConfig struct {
	Map MapConfig `json:"map"`
}

// MapConfig says where the map's base layer comes from: the shipped
// boundaries alone, or an internal tile server too.
type MapConfig struct {
	Tiles       []string `json:"tiles"` // raster tile URL templates, {z}/{x}/{y}; empty: none
	Attribution string   `json:"attribution,omitempty"`
	MaxZoom     int      `json:"max_zoom,omitempty"`
}

// Meetings is the meeting SFU (sfu/meeting).
type Meetings interface {
	ServeWS(w http.ResponseWriter, r *http.Request)
	SetLocked(room string, locked bool, by string)
	CloseRoom(room string)
	// RoomParticipants lists who is in a room now; Tap takes a
	// participant's camera video out for a WHEP viewer (a wall tile).
	RoomParticipants(room string) []meeting.ParticipantInfo
	Tap(room, identity, stream string) (*source.Source, func(), error)
}

// API holds the handlers.
type API struct {
	p       Params
	metrics *httpMetrics
}

// New builds the console's HTTP handler.
func New(p Params) (http.Handler, error) {
	m, err := newHTTPMetrics(p.Metrics)
	if err != nil {
		return nil, err
	}
	a := &API{p: p, metrics: m}

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	// Client addresses come from the connection only: trusting
	// X-Forwarded-For by default would let anyone pick the address the
	// login throttle counts against.
	if err := r.SetTrustedProxies(nil); err != nil {
		return nil, err
	}
	r.HandleMethodNotAllowed = true
	r.Use(a.recoverer, a.observe, a.limitBody)
	r.NoRoute(func(c *gin.Context) {
		// Unknown /api/v1 paths answer 401 without a token rather than
		// 404, so the API's shape is not visible to strangers.
		if strings.HasPrefix(c.Request.URL.Path, "/api/") {
			if a.authenticate(c); c.IsAborted() {
				return
			}
		}
		// Every other page is the console's: its files, or its index.html
		// for the paths of the application (/wall, /devices/x, ...).
		path := c.Request.URL.Path
		if p.Console != nil && (c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead) &&
			!strings.HasPrefix(path, "/api/") && !strings.HasPrefix(path, "/rtc/") {
			p.Console.ServeHTTP(c.Writer, c.Request)
			return
		}
		writeError(c, http.StatusNotFound, "not_found", "", "no such endpoint")
	})
	r.NoMethod(func(c *gin.Context) {
		writeError(c, http.StatusMethodNotAllowed, "method_not_allowed", "", "method not allowed on this endpoint")
	})

	r.GET("/healthz", a.healthz)
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(p.Metrics, promhttp.HandlerOpts{Registry: p.Metrics})))
	// The player page's static files need no token; the page sends one
	// with its own requests.
	r.GET("/player/*filepath", gin.WrapH(http.StripPrefix("/player", player.Handler())))
	// The meeting page likewise: its join token travels in the URL's
	// fragment and the first signaling message, never in a request.
	r.GET("/meet/*filepath", gin.WrapH(http.StripPrefix("/meet", meet.Handler())))
	// The resident's hearing page, for any token: the page asks
	// /api/v1/hearing-link/open whether the link is good.
	r.GET("/h/:token", gin.WrapH(meet.HearingHandler()))

	if p.Meetings != nil {
		// A join token in the first message authenticates; see
		// docs/signaling.md.
		r.GET("/rtc/signal", gin.WrapF(p.Meetings.ServeWS))
	}

	v1 := r.Group("/api/v1")
	v1.POST("/auth/login", a.login)

	authed := v1.Group("", a.authenticate)
	authed.GET("/me", a.me)
	authed.GET("/console/config", a.consoleConfig)
	authed.GET("/orgs", a.require(auth.PermOrgsRead), a.listOrgs)
	authed.POST("/orgs", a.require(auth.PermOrgsWrite), a.createOrg)
	authed.GET("/orgs/:id", a.require(auth.PermOrgsRead), a.getOrg)
	authed.GET("/users", a.require(auth.PermUsersRead), a.listUsers)
	authed.POST("/users", a.require(auth.PermUsersWrite), a.createUser)
	authed.GET("/users/:id", a.require(auth.PermUsersRead), a.getUser)
	authed.PATCH("/users/:id", a.require(auth.PermUsersWrite), a.updateUser)
	authed.GET("/audit", a.require(auth.PermAuditRead), a.listAudit)
	// A site is what a petition concerns too: those who record petitions
	// list them (the devices stay devices:read's).
	authed.GET("/sites", a.requireAny(auth.PermDevicesRead, auth.PermPetitionsWrite), a.listSites)
	authed.POST("/sites", a.require(auth.PermDevicesWrite), a.createSite)
	authed.GET("/sites/:id", a.requireAny(auth.PermDevicesRead, auth.PermPetitionsWrite), a.getSite)
	authed.PATCH("/sites/:id", a.require(auth.PermDevicesWrite), a.updateSite)
	authed.DELETE("/sites/:id", a.require(auth.PermDevicesWrite), a.deleteSite)
	authed.GET("/devices", a.require(auth.PermDevicesRead), a.listDevices)
	authed.POST("/devices", a.require(auth.PermDevicesWrite), a.createDevice)
	authed.GET("/devices/:id", a.require(auth.PermDevicesRead), a.getDevice)
	authed.PATCH("/devices/:id", a.require(auth.PermDevicesWrite), a.updateDevice)
	authed.DELETE("/devices/:id", a.require(auth.PermDevicesWrite), a.deleteDevice)
	authed.GET("/devices/:id/telemetry", a.require(auth.PermDevicesRead), a.deviceTelemetry)
	authed.POST("/devices/:id/credentials", a.require(auth.PermDevicesWrite), a.rotateCredentials)
	authed.POST("/devices/:id/commands", a.require(auth.PermDevicesCommand), a.sendCommand)
	authed.GET("/commands/:id", a.require(auth.PermDevicesRead), a.getCommand)
	authed.POST("/command-groups", a.require(auth.PermDevicesCommand), a.sendGroup)
	authed.GET("/command-groups/:id", a.require(auth.PermDevicesRead), a.getGroup)
	authed.GET("/rules", a.require(auth.PermAlertsRead), a.listRules)
	authed.POST("/rules", a.require(auth.PermRulesWrite), a.createRule)
	authed.GET("/rules/:id", a.require(auth.PermAlertsRead), a.getRule)
	authed.PUT("/rules/:id", a.require(auth.PermRulesWrite), a.updateRule)
	authed.DELETE("/rules/:id", a.require(auth.PermRulesWrite), a.deleteRule)
	authed.GET("/alerts", a.require(auth.PermAlertsRead), a.listAlerts)
	authed.GET("/alerts/:id", a.require(auth.PermAlertsRead), a.getAlert)
	authed.POST("/alerts/:id/ack", a.require(auth.PermAlertsAct), a.alertStep(alerts.StateAcknowledged))
	authed.POST("/alerts/:id/dispatch", a.require(auth.PermAlertsAct), a.alertStep(alerts.StateDispatched))
	authed.POST("/alerts/:id/resolve", a.require(auth.PermAlertsAct), a.alertStep(alerts.StateResolved))
	authed.POST("/alerts/:id/close", a.require(auth.PermAlertsAct), a.alertStep(alerts.StateClosed))
	authed.GET("/events", a.events)
	if p.Rooms != nil {
		authed.GET("/rooms", a.require(auth.PermMeetingsRead), a.listRooms)
		authed.POST("/rooms", a.require(auth.PermMeetingsHost), a.createRoom)
		authed.GET("/rooms/:id", a.require(auth.PermMeetingsRead), a.getRoom)
		authed.PATCH("/rooms/:id", a.require(auth.PermMeetingsHost), a.updateRoom)
		authed.DELETE("/rooms/:id", a.require(auth.PermMeetingsHost), a.deleteRoom)
		authed.POST("/rooms/:id/tokens", a.require(auth.PermMeetingsHost), a.issueRoomToken)
	}
	if p.Petitions != nil {
		authed.GET("/petitions", a.require(auth.PermPetitionsRead), a.listPetitions)
		authed.POST("/petitions", a.require(auth.PermPetitionsWrite), a.createPetition)
		authed.GET("/petitions/:id", a.require(auth.PermPetitionsRead), a.getPetition)
		authed.POST("/petitions/:id/steps", a.require(auth.PermPetitionsWrite), a.stepPetition)
		authed.GET("/petitions/:id/attachments", a.require(auth.PermPetitionsRead), a.listAttachments)
		authed.POST("/petitions/:id/attachments", a.require(auth.PermPetitionsWrite), a.addAttachment)
		authed.GET("/petitions/:id/attachments/:att", a.require(auth.PermPetitionsPII), a.getAttachment)
		authed.DELETE("/petitions/:id/attachments/:att", a.require(auth.PermPetitionsWrite), a.deleteAttachment)
	}
	if p.Hearings != nil {
		// The resident's link: no console token; see hearings.go.
		v1.POST("/hearing-link/open", a.openHearingLink)
		v1.POST("/hearing-link/join", a.joinHearingLink)
		svc := func(do func(h *hearings.Service, c *gin.Context, p auth.Principal) (hearings.Hearing, error)) func(*hearings.Service, *gin.Context) (hearings.Hearing, error) {
			return func(h *hearings.Service, c *gin.Context) (hearings.Hearing, error) { return do(h, c, mustPrincipal(c)) }
		}
		authed.POST("/petitions/:id/hearings", a.require(auth.PermPetitionsWrite), a.scheduleHearing)
		authed.GET("/hearings", a.require(auth.PermPetitionsRead), a.listHearings)
		authed.GET("/hearings/record-key", a.require(auth.PermPetitionsRead), a.hearingRecordKey)
		authed.GET("/hearings/:id", a.require(auth.PermPetitionsRead), a.getHearing)
		authed.POST("/hearings/:id/link", a.require(auth.PermPetitionsWrite), a.issueHearingLink)
		authed.DELETE("/hearings/:id/link", a.require(auth.PermPetitionsWrite), a.hearingStep("hearing.link_revoke",
			svc(func(h *hearings.Service, c *gin.Context, p auth.Principal) (hearings.Hearing, error) {
				return h.RevokeLink(c.Request.Context(), p.Scope, c.Param("id"))
			})))
		authed.POST("/hearings/:id/link/allow-device", a.require(auth.PermPetitionsWrite), a.hearingStep("hearing.link_allow_device",
			svc(func(h *hearings.Service, c *gin.Context, p auth.Principal) (hearings.Hearing, error) {
				return h.AllowOtherDevice(c.Request.Context(), p.Scope, c.Param("id"))
			})))
		authed.POST("/hearings/:id/admit", a.require(auth.PermPetitionsWrite), a.hearingStep("hearing.admit",
			svc(func(h *hearings.Service, c *gin.Context, p auth.Principal) (hearings.Hearing, error) {
				return h.Admit(c.Request.Context(), p.Scope, c.Param("id"), p.UserID)
			})))
		authed.POST("/hearings/:id/reject", a.require(auth.PermPetitionsWrite), a.hearingStep("hearing.reject",
			svc(func(h *hearings.Service, c *gin.Context, p auth.Principal) (hearings.Hearing, error) {
				return h.Reject(c.Request.Context(), p.Scope, c.Param("id"), p.UserID)
			})))
		// Host rights in the room are the officer's powers (admit, reject,
		// remove): petitions:write, as the API's own admit.
		authed.POST("/hearings/:id/host-token", a.require(auth.PermMeetingsHost), a.require(auth.PermPetitionsWrite), a.hearingHostToken)
		authed.POST("/hearings/:id/notes", a.require(auth.PermPetitionsWrite), a.addHearingNote)
		authed.POST("/hearings/:id/end", a.require(auth.PermPetitionsWrite), a.endHearing)
		authed.GET("/hearings/:id/record", a.require(auth.PermPetitionsRead), a.hearingRecord)
		authed.GET("/hearings/:id/recordings/:rec", a.require(auth.PermPetitionsPII), a.playRecording)
		authed.DELETE("/hearings/:id/recordings/:rec", a.require(auth.PermRecordingsDelete), a.deleteRecording)
	}
	if p.Walls != nil {
		authed.GET("/walls", a.require(auth.PermDevicesRead), a.listWalls)
		authed.POST("/walls", a.require(auth.PermWallsWrite), a.createWall)
		authed.GET("/walls/:id", a.require(auth.PermDevicesRead), a.getWall)
		authed.PATCH("/walls/:id", a.require(auth.PermWallsWrite), a.updateWall)
		authed.DELETE("/walls/:id", a.require(auth.PermWallsWrite), a.deleteWall)
		authed.PUT("/walls/:id/tiles/:index", a.require(auth.PermWallsWrite), a.setWallTile)
	}
	if p.WHEP != nil && p.Cameras != nil {
		authed.POST("/whep/cameras/:id", a.require(auth.PermDevicesRead), a.whepOffer)
		// A session plays a camera (devices:read) or a meeting participant
		// (meetings:read); mayHandle checks the one its kind needs.
		authed.DELETE("/whep/sessions/:id", a.requireAny(auth.PermDevicesRead, auth.PermMeetingsRead), a.whepHangup)
		authed.POST("/whep/sessions/:id/layer", a.requireAny(auth.PermDevicesRead, auth.PermMeetingsRead), a.whepLayer)
		authed.POST("/whep/sessions/:id/camera", a.require(auth.PermDevicesRead), a.whepCamera)
		if p.Meetings != nil {
			authed.POST("/whep/rooms/:id/participants/:identity", a.require(auth.PermMeetingsRead), a.whepParticipant)
		}
	}
	authed.GET("/cameras", a.require(auth.PermDevicesRead), a.listCameras)
	authed.POST("/cameras", a.require(auth.PermDevicesWrite), a.createCamera)
	authed.GET("/cameras/:id", a.require(auth.PermDevicesRead), a.getCamera)
	authed.PATCH("/cameras/:id", a.require(auth.PermDevicesWrite), a.updateCamera)
	authed.DELETE("/cameras/:id", a.require(auth.PermDevicesWrite), a.deleteCamera)
	if p.Clips != nil {
		authed.GET("/cameras/:id/clips", a.require(auth.PermDevicesRead), a.listClips)
		authed.POST("/cameras/:id/clips", a.require(auth.PermDevicesCommand), a.createClip)
		authed.GET("/clips/:id", a.require(auth.PermDevicesRead), a.getClip)
	}
	return r, nil
}
