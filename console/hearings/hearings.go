// Package hearings holds the remote hearings of petitions (信访听证): a
// resident is heard by video from their phone, by a link, by a hearing
// officer in the console.
//
// A hearing belongs to one petition and its organisation, and has its own
// meeting room. The resident's link is a signed token (auth's hearing-link
// audience) for that hearing only, valid from LinkEarly before the start
// to its expiry; the hearing keeps the id of its current link (re-issuing
// revokes the one before; revoking empties it) and the device that first
// used it: another device is refused unless the officer allows one more.
// The link is exchanged, after the resident's consent to the recording,
// for a join token of the hearing's room only, which waits in the room's
// lobby until the officer admits the resident (sfu/meeting). From the
// first admission to the end the hearing is recorded by the server
// (recorder.go), and at the end the officer's outcome, notes and the
// recordings' checksums are signed into the hearing's record
// (record.go).
package hearings

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lookout-cc/lookout/console/auth"
	"github.com/lookout-cc/lookout/console/petitions"
	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
	"github.com/lookout-cc/lookout/sfu/meeting"
	"github.com/lookout-cc/lookout/sfu/rooms"
	"github.com/lookout-cc/lookout/sfu/signal"
)

// States of a hearing.
const (
	StateScheduled  = "scheduled"
	StateInProgress = "in_progress" // the resident was admitted
	StateEnded      = "ended"
	StateCancelled  = "cancelled"
)

// Outcomes of a hearing.
const (
	OutcomeResolved = "resolved"  // settled at the hearing
	OutcomeFollowUp = "follow_up" // another step or hearing is needed
	OutcomeReferred = "referred"  // handed to another department
)

// ResidentIdentity is the resident's identity in the hearing's room.
const ResidentIdentity = "resident"

// Link timing.
const (
	// LinkEarly is how long before the start the link opens: time to
	// check the camera and wait in the lobby.
	LinkEarly = 30 * time.Minute
	// DefaultLinkValidity is how long after the start the link lasts
	// unless the officer says otherwise; MaxLinkValidity the most.
	DefaultLinkValidity = 4 * time.Hour
	MaxLinkValidity     = 7 * 24 * time.Hour
)

// Other is a further participant the officer invites (a department's
// representative); they join with a console account or a room token.
type Other struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

// Link is the state of the resident's link, never the token itself.
type Link struct {
	Active bool `json:"active"`
	// Used says a device has opened it; AllowOtherDevice that the officer
	// lets one other device open it once.
	Used             bool `json:"used"`
	AllowOtherDevice bool `json:"allow_other_device"`
}

// Note is one note the officer took during the hearing.
type Note struct {
	Author string    `json:"author"`
	Text   string    `json:"text"`
	At     time.Time `json:"at"`
}

// Hearing is one hearing of a petition.
type Hearing struct {
	ID            string     `json:"id"`
	PetitionID    string     `json:"petition_id"`
	OrgID         orgs.ID    `json:"org_id"`
	RoomID        string     `json:"room_id"`
	OfficerID     string     `json:"officer_id"`
	Others        []Other    `json:"others"`
	StartsAt      time.Time  `json:"starts_at"`
	LinkExpiresAt time.Time  `json:"link_expires_at"`
	State         string     `json:"state"`
	Link          Link       `json:"link"`
	ConsentAt     *time.Time `json:"consent_at,omitempty"`
	AdmittedAt    *time.Time `json:"admitted_at,omitempty"`
	EndedAt       *time.Time `json:"ended_at,omitempty"`
	Outcome       string     `json:"outcome,omitempty"`
	OutcomeNote   string     `json:"outcome_note,omitempty"`
	Signed        bool       `json:"signed"`
	CreatedBy     string     `json:"created_by"`
	CreatedAt     time.Time  `json:"created_at"`
	// Only in Get.
	Notes      []Note      `json:"notes,omitempty"`
	Recordings []Recording `json:"recordings,omitempty"`
	// Lobby is who waits now (filled by the caller from the SFU).
	Lobby []signal.LobbyEntry `json:"lobby,omitempty"`
}

// NewHearing is what the officer schedules.
type NewHearing struct {
	StartsAt time.Time `json:"starts_at"`
	// LinkExpiresAt defaults to DefaultLinkValidity after the start.
	LinkExpiresAt time.Time `json:"link_expires_at"`
	// OfficerID is the hearing officer; the caller when empty.
	OfficerID string  `json:"officer_id"`
	Others    []Other `json:"others"`
}

// Errors.
var (
	ErrNotFound     = errclass.New(errclass.NotFound, "hearing_not_found", "hearing not found")
	ErrInvalidState = errclass.New(errclass.Conflict, "invalid_hearing_state", "the hearing's state does not allow this")
	ErrNotWaiting   = errclass.New(errclass.Conflict, "not_waiting", "the resident is not waiting in the lobby")
	ErrRoomFull     = errclass.New(errclass.Conflict, "room_full", "the hearing's room has its maximum of participants")
	// The link's refusals: the resident's page says each in plain words
	// and reveals nothing of the hearing.
	ErrLinkInvalid     = errclass.New(errclass.Unauthenticated, "link_invalid", "the link is not valid")
	ErrLinkExpired     = errclass.New(errclass.Unauthenticated, "link_expired", "the link has expired")
	ErrLinkRevoked     = errclass.New(errclass.Unauthenticated, "link_revoked", "the link was withdrawn")
	ErrLinkNotYet      = errclass.New(errclass.Unauthenticated, "link_not_yet_valid", "the link opens shortly before the hearing")
	ErrLinkOtherDevice = errclass.New(errclass.Forbidden, "link_other_device", "the link was opened on another device")
	ErrLinkEnded       = errclass.New(errclass.Unauthenticated, "hearing_over", "the hearing is over or was cancelled")
	ErrConsentRequired = errclass.New(errclass.Invalid, "consent_required", "the hearing is recorded: consent is required to join")
)

// Meetings is the meeting SFU, as the hearings use it.
type Meetings interface {
	Admit(room, identity, by string) error
	Reject(room, identity, by string) error
	Lobby(room string) []signal.LobbyEntry
	Record(room string, rec meeting.Recorder) error
	StopRecording(room string)
	CloseRoom(room string)
}

// Auditor records what the service does by itself (the retention sweep).
type Auditor interface {
	Record(ctx context.Context, actor string, org orgs.ID, action, target, result string, detail map[string]any) error
}

// Params configure the service.
type Params struct {
	DB        *sql.DB
	Tree      *orgs.Store
	Petitions *petitions.Store
	Rooms     *rooms.Store
	Signer    *auth.Signer
	// Meetings may be set after New (the SFU is told of admissions by
	// the service, and made after it).
	Meetings Meetings
	// RecordingsDir holds the recordings' files.
	RecordingsDir string
	// Retention is how long a recording is kept after its hearing
	// ended; 0 keeps them.
	Retention time.Duration
	Audit     Auditor
	Log       *slog.Logger
	Now       func() time.Time
}

// Service keeps the hearings.
type Service struct {
	p    Params
	log  *slog.Logger
	now  func() time.Time
	keys recordKeys

	mu       sync.Mutex
	meetings Meetings
	// recorders are the hearings being recorded, by room.
	recorders map[string]*recorder
}

// New makes the service.
func New(p Params) (*Service, error) {
	if p.DB == nil || p.Tree == nil || p.Petitions == nil || p.Rooms == nil || p.Signer == nil || p.RecordingsDir == "" {
		return nil, errors.New("hearings: DB, Tree, Petitions, Rooms, Signer and RecordingsDir are required")
	}
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return &Service{p: p, log: p.Log, now: p.Now, keys: newRecordKeys(p.Signer), meetings: p.Meetings, recorders: map[string]*recorder{}}, nil
}

// SetMeetings gives the service the SFU.
func (s *Service) SetMeetings(m Meetings) {
	s.mu.Lock()
	s.meetings = m
	s.mu.Unlock()
}

func (s *Service) sfu() Meetings {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.meetings
}

func newID(prefix string) string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func optMS(v int64) *time.Time {
	if v == 0 {
		return nil
	}
	t := fromMS(v)
	return &t
}

// Schedule schedules a hearing of petition: the petition moves to
// scheduled, the hearing gets its room. It returns the hearing; the link
// is issued apart (IssueLink).
func (s *Service) Schedule(ctx context.Context, scope orgs.Scope, actor, petitionID string, in NewHearing) (Hearing, error) {
	pet, err := s.p.Petitions.Get(ctx, scope, petitionID, false)
	if err != nil {
		return Hearing{}, err
	}
	now := s.now().UTC()
	if in.StartsAt.IsZero() {
		return Hearing{}, errclass.Invalidf("starts_at", "is required (RFC 3339)")
	}
	if in.StartsAt.Before(now.Add(-time.Hour)) || in.StartsAt.After(now.Add(365*24*time.Hour)) {
		return Hearing{}, errclass.Invalidf("starts_at", "must be from an hour ago to a year ahead")
	}
	if in.LinkExpiresAt.IsZero() {
		in.LinkExpiresAt = in.StartsAt.Add(DefaultLinkValidity)
	}
	if !in.LinkExpiresAt.After(in.StartsAt) || in.LinkExpiresAt.Sub(in.StartsAt) > MaxLinkValidity {
		return Hearing{}, errclass.Invalidf("link_expires_at", "must be after the start and at most 7 days after it")
	}
	if in.OfficerID == "" {
		in.OfficerID = actor
	}
	if len(in.Others) > 4 {
		return Hearing{}, errclass.Invalidf("others", "at most 4 other participants")
	}
	for i := range in.Others {
		if in.Others[i].Name, err = text(fmt.Sprintf("others[%d].name", i), in.Others[i].Name, true, 50); err != nil {
			return Hearing{}, err
		}
		if in.Others[i].Role, err = text(fmt.Sprintf("others[%d].role", i), in.Others[i].Role, false, 50); err != nil {
			return Hearing{}, err
		}
	}
	if in.Others == nil {
		in.Others = []Other{}
	}
	if pet.State != petitions.StateReceived && pet.State != petitions.StateHeard && pet.State != petitions.StateScheduled {
		return Hearing{}, errclass.New(errclass.Conflict, "invalid_step", "the petition's state does not allow a hearing")
	}
	h := Hearing{ID: newID(rooms.HearingPrefix), PetitionID: pet.ID, OrgID: pet.OrgID, OfficerID: in.OfficerID, Others: in.Others,
		StartsAt: in.StartsAt.UTC().Truncate(time.Second), LinkExpiresAt: in.LinkExpiresAt.UTC().Truncate(time.Second),
		State: StateScheduled, CreatedBy: actor, CreatedAt: now.Truncate(time.Millisecond)}
	h.RoomID = h.ID
	// The officer, the resident and the others.
	// The room's name says nothing of the petition: rooms are listed to
	// others than the hearing officers.
	if _, err := s.p.Rooms.Create(ctx, scope, actor, rooms.NewRoom{ID: h.RoomID, Name: "信访听证", OrgID: pet.OrgID,
		MaxParticipants: 2 + len(in.Others), Hearing: true}); err != nil {
		return Hearing{}, err
	}
	others, _ := json.Marshal(h.Others)
	if _, err := s.p.DB.ExecContext(ctx, `INSERT INTO hearings(id, petition_id, org_id, room_id, officer_id, others, starts_at, link_expires_at,
		state, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		h.ID, h.PetitionID, h.OrgID, h.RoomID, h.OfficerID, string(others), ms(h.StartsAt), ms(h.LinkExpiresAt), h.State, actor, ms(h.CreatedAt)); err != nil {
		return Hearing{}, fmt.Errorf("schedule hearing: %w", err)
	}
	if pet.State != petitions.StateScheduled {
		if _, err := s.p.Petitions.Step(ctx, scope, actor, pet.ID, petitions.StateScheduled, "听证 "+h.StartsAt.In(chinaTime).Format("2006-01-02 15:04")); err != nil {
			return Hearing{}, err
		}
	}
	return h, nil
}

// chinaTime is the time the notes to residents are written in.
var chinaTime = time.FixedZone("CST", 8*3600)

func text(field, v string, required bool, max int) (string, error) {
	v = strings.TrimSpace(v)
	if (required && v == "") || !utf8.ValidString(v) || utf8.RuneCountInString(v) > max {
		return "", errclass.Invalidf(field, "must be 1 to %d characters", max)
	}
	return v, nil
}

const hearingColumns = `id, petition_id, org_id, room_id, officer_id, others, starts_at, link_expires_at, state, link_id, link_device,
	allow_other_device, consent_at, admitted_at, ended_at, outcome, outcome_note, signature, created_by, created_at`

// row is a hearing as stored, with what the link checks need.
type row struct {
	Hearing
	linkID     string
	linkDevice string
}

func scanRow(sc interface{ Scan(...any) error }) (row, error) {
	var r row
	var others, signature string
	var starts, expires, consent, admitted, ended, created int64
	var allow int
	err := sc.Scan(&r.ID, &r.PetitionID, &r.OrgID, &r.RoomID, &r.OfficerID, &others, &starts, &expires, &r.State, &r.linkID, &r.linkDevice,
		&allow, &consent, &admitted, &ended, &r.Outcome, &r.OutcomeNote, &signature, &r.CreatedBy, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return row{}, ErrNotFound
	}
	if err != nil {
		return row{}, err
	}
	if err := json.Unmarshal([]byte(others), &r.Others); err != nil {
		return row{}, fmt.Errorf("hearing %s: others: %w", r.ID, err)
	}
	r.StartsAt, r.LinkExpiresAt, r.CreatedAt = fromMS(starts), fromMS(expires), fromMS(created)
	r.ConsentAt, r.AdmittedAt, r.EndedAt = optMS(consent), optMS(admitted), optMS(ended)
	r.Link = Link{Active: r.linkID != "", Used: r.linkDevice != "", AllowOtherDevice: allow != 0}
	r.Signed = signature != ""
	return r, nil
}

// load reads a hearing by id, whatever the scope (the link's checks).
func (s *Service) load(ctx context.Context, id string) (row, error) {
	return scanRow(s.p.DB.QueryRowContext(ctx, `SELECT `+hearingColumns+` FROM hearings WHERE id = ?`, id))
}

// loadIn reads a hearing in scope.
func (s *Service) loadIn(ctx context.Context, scope orgs.Scope, id string) (row, error) {
	r, err := s.load(ctx, id)
	if err != nil {
		return row{}, err
	}
	if !s.p.Tree.Contains(scope, r.OrgID) {
		return row{}, ErrNotFound
	}
	return r, nil
}

// Get returns a hearing in scope with its notes and recordings.
func (s *Service) Get(ctx context.Context, scope orgs.Scope, id string) (Hearing, error) {
	r, err := s.loadIn(ctx, scope, id)
	if err != nil {
		return Hearing{}, err
	}
	h := r.Hearing
	rows, err := s.p.DB.QueryContext(ctx, `SELECT author, text, at FROM hearing_notes WHERE hearing_id = ? ORDER BY seq`, id)
	if err != nil {
		return Hearing{}, err
	}
	defer rows.Close()
	h.Notes = []Note{}
	for rows.Next() {
		var n Note
		var at int64
		if err := rows.Scan(&n.Author, &n.Text, &at); err != nil {
			return Hearing{}, err
		}
		n.At = fromMS(at)
		h.Notes = append(h.Notes, n)
	}
	if err := rows.Err(); err != nil {
		return Hearing{}, err
	}
	if h.Recordings, err = s.recordings(ctx, id); err != nil {
		return Hearing{}, err
	}
	return h, nil
}

// Filter selects hearings: those starting on Day (in China's time), of a
// petition, or both.
type Filter struct {
	Day        time.Time
	PetitionID string
}

// List lists the hearings of scope, earliest first.
func (s *Service) List(ctx context.Context, scope orgs.Scope, f Filter) ([]Hearing, error) {
	where, args := scope.SQL("org_id")
	q := `SELECT ` + hearingColumns + ` FROM hearings WHERE ` + where
	if !f.Day.IsZero() {
		y, m, d := f.Day.In(chinaTime).Date()
		from := time.Date(y, m, d, 0, 0, 0, 0, chinaTime)
		q += ` AND starts_at >= ? AND starts_at < ?`
		args = append(args, ms(from), ms(from.AddDate(0, 0, 1)))
	}
	if f.PetitionID != "" {
		q += ` AND petition_id = ?`
		args = append(args, f.PetitionID)
	}
	rows, err := s.p.DB.QueryContext(ctx, q+` ORDER BY starts_at, id LIMIT 500`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Hearing{}
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r.Hearing)
	}
	return out, rows.Err()
}

// IssueLink makes a new link for the resident, revoking the one before,
// and forgetting the device that used it. The token is returned once and
// never stored.
func (s *Service) IssueLink(ctx context.Context, scope orgs.Scope, id string) (token string, expires time.Time, err error) {
	r, err := s.loadIn(ctx, scope, id)
	if err != nil {
		return "", time.Time{}, err
	}
	if r.State == StateEnded || r.State == StateCancelled {
		return "", time.Time{}, ErrInvalidState
	}
	linkID := newID("")
	token, err = s.p.Signer.IssueHearingLink(r.ID, linkID, r.StartsAt.Add(-LinkEarly), r.LinkExpiresAt)
	if err != nil {
		return "", time.Time{}, err
	}
	if _, err := s.p.DB.ExecContext(ctx, `UPDATE hearings SET link_id = ?, link_device = '', allow_other_device = 0 WHERE id = ?`, linkID, r.ID); err != nil {
		return "", time.Time{}, err
	}
	return token, r.LinkExpiresAt, nil
}

// RevokeLink withdraws the resident's link.
func (s *Service) RevokeLink(ctx context.Context, scope orgs.Scope, id string) (Hearing, error) {
	r, err := s.loadIn(ctx, scope, id)
	if err != nil {
		return Hearing{}, err
	}
	if _, err := s.p.DB.ExecContext(ctx, `UPDATE hearings SET link_id = '', link_device = '', allow_other_device = 0 WHERE id = ?`, r.ID); err != nil {
		return Hearing{}, err
	}
	r.Link = Link{}
	return r.Hearing, nil
}

// AllowOtherDevice lets one other device open the link once (the
// resident's phone broke, they borrowed one).
func (s *Service) AllowOtherDevice(ctx context.Context, scope orgs.Scope, id string) (Hearing, error) {
	r, err := s.loadIn(ctx, scope, id)
	if err != nil {
		return Hearing{}, err
	}
	if !r.Link.Active {
		return Hearing{}, ErrInvalidState
	}
	if _, err := s.p.DB.ExecContext(ctx, `UPDATE hearings SET allow_other_device = 1 WHERE id = ?`, r.ID); err != nil {
		return Hearing{}, err
	}
	r.Link.AllowOtherDevice = true
	return r.Hearing, nil
}

// Notice is what the resident's page shows of the hearing: nothing of the
// petitioner's personal data beyond the masked name.
type Notice struct {
	HearingID     string    `json:"hearing_id"`
	Subject       string    `json:"subject"`
	Petitioner    string    `json:"petitioner"` // masked
	Organisation  string    `json:"organisation"`
	StartsAt      time.Time `json:"starts_at"`
	LinkExpiresAt time.Time `json:"link_expires_at"`
	State         string    `json:"state"`
	Consented     bool      `json:"consented"`
}

// DeviceHash is what the hearing keeps of a device's cookie.
func DeviceHash(cookie string) string {
	sum := sha256.Sum256([]byte("lookout hearing device: " + cookie))
	return hex.EncodeToString(sum[:])
}

// Open checks a resident's link from device (its cookie's value): the
// token, the hearing's state, the link's id, the device. The first device
// that opens the link is bound to it; another is refused unless the
// officer allowed one (which it then becomes). ErrLinkNotYet comes with
// the notice, so the page can say when to come back.
func (s *Service) Open(ctx context.Context, token, device string) (Notice, error) {
	n, _, err := s.open(ctx, token, device)
	return n, err
}

// open is Open, with the hearing's row as read (Join goes on from it).
func (s *Service) open(ctx context.Context, token, device string) (Notice, row, error) {
	claims, verr := s.p.Signer.VerifyHearingLink(token)
	switch {
	case errors.Is(verr, auth.ErrTokenExpired):
		return Notice{}, row{}, ErrLinkExpired
	case verr != nil && !errors.Is(verr, auth.ErrTokenNotYet):
		return Notice{}, row{}, ErrLinkInvalid
	}
	r, err := s.load(ctx, claims.Hearing)
	if errors.Is(err, ErrNotFound) {
		return Notice{}, row{}, ErrLinkInvalid
	}
	if err != nil {
		return Notice{}, row{}, err
	}
	switch {
	case r.State == StateEnded || r.State == StateCancelled:
		return Notice{}, row{}, ErrLinkEnded
	case r.linkID != claims.ID:
		return Notice{}, row{}, ErrLinkRevoked
	}
	n, err := s.notice(ctx, r)
	if err != nil {
		return Notice{}, row{}, err
	}
	if verr != nil {
		return n, row{}, ErrLinkNotYet
	}
	if device == "" {
		return Notice{}, row{}, ErrLinkOtherDevice
	}
	hash := DeviceHash(device)
	if r.linkDevice != hash {
		// Bound in one statement, so two devices opening the link at
		// once cannot both be the first.
		res, err := s.p.DB.ExecContext(ctx, `UPDATE hearings SET link_device = ?, allow_other_device = 0
			WHERE id = ? AND link_id = ? AND (link_device = '' OR (link_device = ? AND allow_other_device = 1))`,
			hash, r.ID, r.linkID, r.linkDevice)
		if err != nil {
			return Notice{}, row{}, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return Notice{}, row{}, ErrLinkOtherDevice
		}
	}
	return n, r, nil
}

func (s *Service) notice(ctx context.Context, r row) (Notice, error) {
	pet, err := s.p.Petitions.Get(ctx, orgScope(s.p.Tree, r.OrgID), r.PetitionID, false)
	if err != nil {
		return Notice{}, err
	}
	n := Notice{HearingID: r.ID, Subject: pet.Subject, Petitioner: pet.Petitioner.Name, StartsAt: r.StartsAt, LinkExpiresAt: r.LinkExpiresAt,
		State: r.State, Consented: r.ConsentAt != nil}
	if o, err := s.p.Tree.Get(orgScope(s.p.Tree, r.OrgID), r.OrgID); err == nil {
		n.Organisation = o.Name
	}
	return n, nil
}

// orgScope is the scope of org itself, for reads the link authorises.
func orgScope(tree *orgs.Store, org orgs.ID) orgs.Scope {
	sc, _ := tree.ScopeOf(org)
	return sc
}

// JoinGrant is what the resident's page joins the hearing's room with.
type JoinGrant struct {
	Room      string    `json:"room"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	// First says this was the resident's first consent (to audit).
	First bool `json:"-"`
}

// Join checks the link as Open does and, with the resident's consent to
// the recording, grants a join token of the hearing's room only, which
// waits in its lobby, valid until the link expires.
func (s *Service) Join(ctx context.Context, token, device string, consent bool) (Notice, JoinGrant, error) {
	n, r, err := s.open(ctx, token, device)
	if err != nil {
		return Notice{}, JoinGrant{}, err
	}
	if !consent {
		return Notice{}, JoinGrant{}, ErrConsentRequired
	}
	now := s.now()
	res, err := s.p.DB.ExecContext(ctx, `UPDATE hearings SET consent_at = ? WHERE id = ? AND consent_at = 0`, ms(now), r.ID)
	if err != nil {
		return Notice{}, JoinGrant{}, err
	}
	first, _ := res.RowsAffected()
	ttl := min(time.Until(r.LinkExpiresAt), 24*time.Hour)
	// Once admitted, the resident comes back without waiting, also after
	// the server restarted (the SFU's memory of admissions went with
	// it); the recording goes on then.
	admitted := r.AdmittedAt != nil
	if admitted {
		s.resumeRecording(r)
	}
	tok, exp, err := s.p.Signer.IssueJoin(auth.JoinClaims{RegisteredClaims: jwtSubject(ResidentIdentity), Name: "信访人 " + n.Petitioner,
		Room: r.RoomID, Org: string(r.OrgID), Role: "resident",
		Rights: auth.RoomRights{Publish: true, Subscribe: true, PublishData: true}, Lobby: !admitted, Link: r.linkID}, ttl)
	if err != nil {
		return Notice{}, JoinGrant{}, err
	}
	n.Consented = true
	return n, JoinGrant{Room: r.RoomID, Token: tok, ExpiresAt: exp, First: first > 0}, nil
}

// CheckJoin is the SFU's check of each join to a hearing's room: none
// once the hearing is over, and the resident's only with a token of the
// hearing's current link (a revoked or re-issued link's token is refused,
// whatever it was exchanged for).
func (s *Service) CheckJoin(ctx context.Context, c *auth.JoinClaims) error {
	if !rooms.IsHearing(c.Room) {
		return nil
	}
	r, err := s.load(ctx, c.Room)
	switch {
	case errors.Is(err, ErrNotFound):
		return errors.New("the hearing does not exist")
	case err != nil:
		return errors.New("the hearing could not be read; try again")
	case r.State == StateEnded || r.State == StateCancelled:
		return errors.New("the hearing is over")
	case c.Subject == ResidentIdentity && (c.Link == "" || c.Link != r.linkID):
		return errors.New("the link was withdrawn: ask the hearing officer for a new one")
	}
	return nil
}

// HostToken grants the officer (or another console user with the
// meetings:host permission) a host's join token of the hearing's room.
func (s *Service) HostToken(ctx context.Context, scope orgs.Scope, id, userID, name string) (JoinGrant, error) {
	r, err := s.loadIn(ctx, scope, id)
	if err != nil {
		return JoinGrant{}, err
	}
	if r.State == StateEnded || r.State == StateCancelled {
		return JoinGrant{}, ErrInvalidState
	}
	s.resumeRecording(r)
	tok, exp, err := s.p.Signer.IssueJoin(auth.JoinClaims{RegisteredClaims: jwtSubject(userID), Name: name, Room: r.RoomID, Org: string(r.OrgID),
		Role: "host", Rights: auth.RoomRights{Publish: true, Subscribe: true, PublishData: true, Admin: true}}, 4*time.Hour)
	if err != nil {
		return JoinGrant{}, err
	}
	return JoinGrant{Room: r.RoomID, Token: tok, ExpiresAt: exp}, nil
}

// Admit lets the resident in from the lobby (the officer in the console).
func (s *Service) Admit(ctx context.Context, scope orgs.Scope, id, by string) (Hearing, error) {
	return s.decide(ctx, scope, id, by, true)
}

// Reject turns whoever waits with the resident's link away.
func (s *Service) Reject(ctx context.Context, scope orgs.Scope, id, by string) (Hearing, error) {
	return s.decide(ctx, scope, id, by, false)
}

func (s *Service) decide(ctx context.Context, scope orgs.Scope, id, by string, admit bool) (Hearing, error) {
	r, err := s.loadIn(ctx, scope, id)
	if err != nil {
		return Hearing{}, err
	}
	m := s.sfu()
	if m == nil || r.State == StateEnded || r.State == StateCancelled {
		return Hearing{}, ErrInvalidState
	}
	do := m.Reject
	if admit {
		do = m.Admit
	}
	if err := do(r.RoomID, ResidentIdentity, by); err != nil {
		switch {
		case errors.Is(err, meeting.ErrNotWaiting):
			return Hearing{}, ErrNotWaiting
		case errors.Is(err, meeting.ErrRoomFull):
			return Hearing{}, ErrRoomFull
		}
		return Hearing{}, err
	}
	return s.Get(ctx, scope, id)
}

// OnAdmit is told by the SFU of every admission from a lobby: the first
// admission to a hearing's room starts the hearing and its recording.
func (s *Service) OnAdmit(room, identity, by string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := s.load(ctx, room) // a hearing's room has the hearing's id
	if err != nil || r.State == StateEnded || r.State == StateCancelled {
		return
	}
	now := s.now()
	res, err := s.p.DB.ExecContext(ctx, `UPDATE hearings SET state = ?, admitted_at = CASE WHEN admitted_at = 0 THEN ? ELSE admitted_at END
		WHERE id = ? AND state IN (?, ?)`, StateInProgress, ms(now), r.ID, StateScheduled, StateInProgress)
	if err != nil {
		s.log.Error("hearing admission not stored", "hearing", r.ID, "err", err)
		return
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return // ended meanwhile
	}
	if err := s.startRecording(r); err != nil {
		s.log.Error("hearing recording not started", "hearing", r.ID, "err", err)
	}
}

// resumeRecording records a hearing in progress again after a restart of
// the server (it is recorded from its first admission to its end).
func (s *Service) resumeRecording(r row) {
	if r.State != StateInProgress {
		return
	}
	if err := s.startRecording(r); err != nil {
		s.log.Error("hearing recording not resumed", "hearing", r.ID, "err", err)
	}
}

// AddNote keeps a note of the officer's.
func (s *Service) AddNote(ctx context.Context, scope orgs.Scope, id, author, note string) (Note, error) {
	r, err := s.loadIn(ctx, scope, id)
	if err != nil {
		return Note{}, err
	}
	if r.Signed {
		return Note{}, ErrInvalidState
	}
	if note, err = text("text", note, true, 4000); err != nil {
		return Note{}, err
	}
	n := Note{Author: author, Text: note, At: s.now().UTC().Truncate(time.Millisecond)}
	if _, err := s.p.DB.ExecContext(ctx, `INSERT INTO hearing_notes(hearing_id, seq, author, text, at)
		VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM hearing_notes WHERE hearing_id = ?), ?, ?, ?)`, id, id, author, n.Text, ms(n.At)); err != nil {
		return Note{}, err
	}
	return n, nil
}

// Ending is the officer's outcome.
type Ending struct {
	Outcome string `json:"outcome"`
	Note    string `json:"note"`
}

// End ends the hearing with its outcome: the recording stops (its files
// are finished and their checksums kept), everyone leaves the room, the
// petition moves to heard (when the resident was heard), and the record
// is signed. A hearing never admitted ends as cancelled.
func (s *Service) End(ctx context.Context, scope orgs.Scope, id, actor string, in Ending) (Hearing, error) {
	r, err := s.loadIn(ctx, scope, id)
	if err != nil {
		return Hearing{}, err
	}
	if r.State == StateEnded || r.State == StateCancelled {
		return Hearing{}, ErrInvalidState
	}
	state := StateEnded
	if r.AdmittedAt == nil {
		state = StateCancelled
		in.Outcome = ""
	} else if in.Outcome != OutcomeResolved && in.Outcome != OutcomeFollowUp && in.Outcome != OutcomeReferred {
		return Hearing{}, errclass.Invalidf("outcome", "must be resolved, follow_up or referred")
	}
	if in.Note, err = text("note", in.Note, false, 4000); err != nil {
		return Hearing{}, err
	}
	// The state first: from now on no admission, join or reload starts
	// the recording again (startRecording reads the state); then the
	// recording stops and everyone leaves.
	now := s.now()
	res, err := s.p.DB.ExecContext(ctx, `UPDATE hearings SET state = ?, ended_at = ?, outcome = ?, outcome_note = ?, link_id = ''
		WHERE id = ? AND state IN (?, ?)`, state, ms(now), in.Outcome, in.Note, r.ID, StateScheduled, StateInProgress)
	if err != nil {
		return Hearing{}, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Hearing{}, ErrInvalidState
	}
	s.stopRecording(r.RoomID)
	if m := s.sfu(); m != nil {
		m.CloseRoom(r.RoomID)
	}
	if state == StateEnded {
		if _, err := s.p.Petitions.Step(ctx, scope, actor, r.PetitionID, petitions.StateHeard, outcomeNote(in)); err != nil && !errors.Is(err, petitions.ErrInvalidStep) {
			return Hearing{}, err
		}
		if err := s.sign(ctx, scope, r.ID); err != nil {
			return Hearing{}, err
		}
	}
	return s.Get(ctx, scope, id)
}

func outcomeNote(in Ending) string {
	label := map[string]string{OutcomeResolved: "当场化解", OutcomeFollowUp: "需后续处理", OutcomeReferred: "转交办理"}[in.Outcome]
	if in.Note != "" {
		return label + "：" + in.Note
	}
	return label
}

func jwtSubject(identity string) jwt.RegisteredClaims { return jwt.RegisteredClaims{Subject: identity} }

// Lobby lists who waits in a hearing room's lobby.
func (s *Service) Lobby(room string) []signal.LobbyEntry {
	if m := s.sfu(); m != nil {
		return m.Lobby(room)
	}
	return []signal.LobbyEntry{}
}

// OrgOf is the organisation of a hearing (to audit the resident's steps).
func (s *Service) OrgOf(ctx context.Context, id string) (orgs.ID, error) {
	r, err := s.load(ctx, id)
	return r.OrgID, err
}

// HearingOfLink is the hearing a link with a good signature names, "" for
// a forged one.
func (s *Service) HearingOfLink(token string) string { return s.p.Signer.HearingOfLink(token) }
