// Package auth is the console's authentication and authorisation: roles and
// what each may do, password hashing, signed tokens, and the login throttle.
// It knows nothing of HTTP.
package auth

import (
	"slices"

	"github.com/lookout-cc/lookout/internal/orgs"
)

// Role is what a user is to the command centre.
type Role string

// The roles of DESIGN.md.
const (
	RoleAdmin          Role = "admin"
	RoleCommander      Role = "commander"
	RoleOperator       Role = "operator"
	RoleHearingOfficer Role = "hearing_officer"
	RoleViewer         Role = "viewer"
)

// Roles lists every role, most powerful first.
var Roles = []Role{RoleAdmin, RoleCommander, RoleOperator, RoleHearingOfficer, RoleViewer}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// Permission is one kind of action on one kind of resource.
type Permission string

// Permissions. Every check is also limited to the caller's scope.
const (
	PermOrgsRead   Permission = "orgs:read"
	PermOrgsWrite  Permission = "orgs:write"
	PermUsersRead  Permission = "users:read"
	PermUsersWrite Permission = "users:write"
	// Sites, devices and their telemetry.
	PermDevicesRead  Permission = "devices:read"
	PermDevicesWrite Permission = "devices:write"
	// Sending commands to devices.
	PermDevicesCommand Permission = "devices:command"
	// The audit log.
	PermAuditRead Permission = "audit:read"
	// Alerts and their rules: reading both; taking an alert's steps
	// (acknowledge, dispatch, resolve, close); writing rules.
	PermAlertsRead Permission = "alerts:read"
	PermAlertsAct  Permission = "alerts:act"
	PermRulesWrite Permission = "rules:write"
	// Meeting rooms: seeing them; hosting (creating, locking, deleting
	// rooms and issuing their join tokens).
	PermMeetingsRead Permission = "meetings:read"
	PermMeetingsHost Permission = "meetings:host"
	// Video walls: arranging them (layout, tiles, patrols, alert area);
	// seeing them takes devices:read, as the cameras on them do.
	PermWallsWrite Permission = "walls:write"
	// Petitions (信访): reading them (the petitioner masked), recording
	// them and taking their steps, and reading the petitioner's personal
	// data whole.
	PermPetitionsRead  Permission = "petitions:read"
	PermPetitionsWrite Permission = "petitions:write"
	PermPetitionsPII   Permission = "petitions:pii"
	// Deleting a hearing's recording before its retention ends: an
	// administrator's decision, audited.
	PermRecordingsDelete Permission = "recordings:delete"
)

var rolePermissions = map[Role][]Permission{
	RoleAdmin: {PermOrgsRead, PermOrgsWrite, PermUsersRead, PermUsersWrite, PermDevicesRead, PermDevicesWrite, PermDevicesCommand, PermAuditRead,
		PermAlertsRead, PermAlertsAct, PermRulesWrite, PermMeetingsRead, PermMeetingsHost, PermWallsWrite,
		PermPetitionsRead, PermPetitionsWrite, PermPetitionsPII, PermRecordingsDelete},
	RoleCommander: {PermOrgsRead, PermUsersRead, PermDevicesRead, PermDevicesCommand, PermAuditRead, PermAlertsRead, PermAlertsAct, PermRulesWrite,
		PermMeetingsRead, PermMeetingsHost, PermWallsWrite, PermPetitionsRead},
	RoleOperator:       {PermOrgsRead, PermDevicesRead, PermDevicesCommand, PermAlertsRead, PermAlertsAct, PermMeetingsRead, PermWallsWrite},
	RoleHearingOfficer: {PermOrgsRead, PermMeetingsRead, PermMeetingsHost, PermPetitionsRead, PermPetitionsWrite, PermPetitionsPII},
	RoleViewer:         {PermOrgsRead, PermDevicesRead, PermAlertsRead, PermMeetingsRead},
}

// Can reports whether role r grants permission p.
func (r Role) Can(p Permission) bool { return slices.Contains(rolePermissions[r], p) }

// Principal is the authenticated caller of a request: who, in which
// organisation, with which role, and the subtree they may act on.
type Principal struct {
	UserID string
	OrgID  orgs.ID
	Role   Role
	Scope  orgs.Scope
}

// Permissions returns what role r grants.
func (r Role) Permissions() []Permission { return slices.Clone(rolePermissions[r]) }
