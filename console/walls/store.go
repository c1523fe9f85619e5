package walls

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/lookout-cc/lookout/devices"
	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// Cameras finds the cameras of a scope (devices.Registry does).
type Cameras interface {
	GetCamera(scope orgs.Scope, id devices.CameraID) (devices.Camera, error)
}

// Rooms finds meeting rooms (sfu/rooms' Store): a participant's tile names
// a room of the wall's organisation subtree.
type Rooms interface {
	Exists(ctx context.Context, scope orgs.Scope, id string) error
}

// Store keeps walls in the state database. Every change is a
// compare-and-swap on the wall's version, so concurrent changes (two
// editors, or an editor and the Pinner) never overwrite each other.
type Store struct {
	db    *sql.DB
	tree  *orgs.Store
	cams  Cameras
	rooms Rooms // nil: a participant's room is checked for its form only
	now   func() time.Time
}

// CheckRooms makes the store refuse a participant tile whose room is not
// in the wall's organisation subtree (422 room_id), as it does cameras.
func (s *Store) CheckRooms(r Rooms) { s.rooms = r }

// NewStore makes a store; cams checks the cameras put on walls.
func NewStore(db *sql.DB, tree *orgs.Store, cams Cameras) *Store {
	return &Store{db: db, tree: tree, cams: cams, now: time.Now}
}

// NewWall is what a caller gives to create a wall. Its tiles start empty.
type NewWall struct {
	// ID is chosen by the caller, or made ("wall-" and 12 hex digits).
	ID   string `json:"id"`
	Name string `json:"name"`
	// OrgID defaults to the caller's organisation.
	OrgID orgs.ID `json:"org_id"`
	// Layout defaults to DefaultLayout.
	Layout    string `json:"layout"`
	AlertArea []int  `json:"alert_area"`
}

// Patch changes some of a wall; absent (nil) fields stay.
type Patch struct {
	Name   *string `json:"name"`
	Layout *string `json:"layout"`
	// Patrol: absent stays, null clears, a patrol replaces (and starts
	// afresh).
	Patrol    PatrolField `json:"patrol"`
	AlertArea *[]int      `json:"alert_area"`
	// Version, when given, must be the wall's current version.
	Version *int `json:"version"`
}

// TileInput replaces one tile: a source, a patrol, or neither (empty). It
// clears the tile's alert pin.
type TileInput struct {
	Source *Source `json:"source"`
	Patrol *Patrol `json:"patrol"`
	// Version, when given, must be the wall's current version.
	Version *int `json:"version"`
}

// PatrolField is a patrol in a patch, which tells absent (Set false) from
// null (Set, Patrol nil).
type PatrolField struct {
	Set    bool
	Patrol *Patrol
}

// JSONShape describes a patrol field in decoding errors.
func (*PatrolField) JSONShape() string {
	return `null or {"camera_ids": [...], "dwell_s": 10}`
}

// UnmarshalJSON reads null or a patrol (unknown keys refused). A wrong
// shape is a *json.UnmarshalTypeError, so that the decoder names the
// field.
func (f *PatrolField) UnmarshalJSON(data []byte) error {
	f.Set = true
	if string(bytes.TrimSpace(data)) == "null" {
		f.Patrol = nil
		return nil
	}
	var p Patrol
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return &json.UnmarshalTypeError{Value: "patrol", Type: reflect.TypeFor[PatrolField]()}
	}
	f.Patrol = &p
	return nil
}

const columns = `id, org_id, name, layout, tiles, patrol, alert_area, version, updated_by, updated_at`

func scan(row interface{ Scan(...any) error }) (Wall, error) {
	var w Wall
	var tiles, patrol, area string
	var updated int64
	if err := row.Scan(&w.ID, &w.OrgID, &w.Name, &w.Layout, &tiles, &patrol, &area, &w.Version, &w.UpdatedBy, &updated); err != nil {
		return Wall{}, err
	}
	w.UpdatedAt = time.UnixMilli(updated).UTC()
	if err := json.Unmarshal([]byte(tiles), &w.Tiles); err != nil {
		return Wall{}, fmt.Errorf("wall %s: tiles: %w", w.ID, err)
	}
	if patrol != "" {
		w.Patrol = new(Patrol)
		if err := json.Unmarshal([]byte(patrol), w.Patrol); err != nil {
			return Wall{}, fmt.Errorf("wall %s: patrol: %w", w.ID, err)
		}
	}
	w.AlertArea = []int{}
	if err := json.Unmarshal([]byte(area), &w.AlertArea); err != nil {
		return Wall{}, fmt.Errorf("wall %s: alert_area: %w", w.ID, err)
	}
	return w, nil
}

func encode(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func encodePatrol(p *Patrol) string {
	if p == nil {
		return ""
	}
	return encode(p)
}

// Create adds a wall inside scope, with empty tiles.
func (s *Store) Create(ctx context.Context, scope orgs.Scope, actor string, in NewWall) (Wall, error) {
	if in.ID == "" {
		in.ID = newWallID()
	}
	if !orgs.IDPattern.MatchString(in.ID) {
		return Wall{}, errclass.Invalidf("id", "must be 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit")
	}
	name, err := checkName(in.Name)
	if err != nil {
		return Wall{}, err
	}
	if in.Layout == "" {
		in.Layout = DefaultLayout
	}
	if err := checkLayout(in.Layout); err != nil {
		return Wall{}, err
	}
	if in.AlertArea == nil {
		in.AlertArea = []int{}
	}
	if err := checkAlertArea(in.AlertArea, TileCount(in.Layout)); err != nil {
		return Wall{}, err
	}
	if in.OrgID == "" {
		in.OrgID = scope.Root()
	}
	if err := s.tree.CheckInScope(scope, in.OrgID, "org_id"); err != nil {
		return Wall{}, err
	}
	now := s.now().Truncate(time.Millisecond).UTC()
	w := Wall{ID: in.ID, OrgID: in.OrgID, Name: name, Layout: in.Layout, Tiles: make([]Tile, TileCount(in.Layout)),
		AlertArea: slices.Clone(in.AlertArea), Version: 1, UpdatedAt: now, UpdatedBy: actor}
	res, err := s.db.ExecContext(ctx, `INSERT INTO walls(`+columns+`, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(id) DO NOTHING`,
		w.ID, w.OrgID, w.Name, w.Layout, encode(w.Tiles), "", encode(w.AlertArea), w.Version, actor, now.UnixMilli(), actor, now.UnixMilli())
	if err != nil {
		return Wall{}, fmt.Errorf("create wall: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Wall{}, ErrWallExists
	}
	return w, nil
}

// load reads a wall whatever its organisation.
func (s *Store) load(ctx context.Context, id string) (Wall, error) {
	w, err := scan(s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM walls WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Wall{}, ErrWallNotFound
	}
	return w, err
}

// Get returns a wall inside scope.
func (s *Store) Get(ctx context.Context, scope orgs.Scope, id string) (Wall, error) {
	w, err := s.load(ctx, id)
	if err != nil {
		return Wall{}, err
	}
	if !s.tree.Contains(scope, w.OrgID) {
		return Wall{}, orgs.ErrOutOfScope
	}
	return w, nil
}

// List returns the walls inside scope, by id.
func (s *Store) List(ctx context.Context, scope orgs.Scope) ([]Wall, error) {
	cond, args := scope.SQL("org_id")
	return s.query(ctx, `SELECT `+columns+` FROM walls WHERE `+cond+` ORDER BY id`, args...)
}

// pinnable returns every wall that has an alert area or a pinned tile,
// by id.
func (s *Store) pinnable(ctx context.Context) ([]Wall, error) {
	return s.query(ctx, `SELECT `+columns+` FROM walls WHERE alert_area != '[]' OR instr(tiles, '"alert_id"') > 0 ORDER BY id`)
}

func (s *Store) query(ctx context.Context, q string, args ...any) ([]Wall, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Wall{}
	for rows.Next() {
		w, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// Update changes a wall inside scope. A new layout keeps the first tiles
// and pads with empty ones; alert area indexes past its end are dropped.
// A new patrol starts now.
func (s *Store) Update(ctx context.Context, scope orgs.Scope, actor, id string, p Patch) (Wall, error) {
	var name string
	if p.Name != nil {
		var err error
		if name, err = checkName(*p.Name); err != nil {
			return Wall{}, err
		}
	}
	if p.Layout != nil {
		if err := checkLayout(*p.Layout); err != nil {
			return Wall{}, err
		}
	}
	return s.change(ctx, scope, id, p.Version, actor, func(w *Wall, wallScope orgs.Scope) error {
		if p.Name != nil {
			w.Name = name
		}
		if p.Layout != nil {
			w.resize(*p.Layout)
		}
		if p.AlertArea != nil {
			area := *p.AlertArea
			if area == nil {
				area = []int{}
			}
			if err := checkAlertArea(area, len(w.Tiles)); err != nil {
				return err
			}
			w.AlertArea = slices.Clone(area)
		}
		if p.Patrol.Set {
			if p.Patrol.Patrol == nil {
				w.Patrol = nil
			} else {
				patrol := p.Patrol.Patrol.clone()
				if err := s.checkPatrol(wallScope, "patrol", patrol); err != nil {
					return err
				}
				w.Patrol = patrol
			}
		}
		return nil
	})
}

// SetTile replaces tile index of a wall inside scope with a source, a
// patrol or nothing; the tile's alert pin, if any, is dropped.
func (s *Store) SetTile(ctx context.Context, scope orgs.Scope, actor, id string, index int, in TileInput) (Wall, error) {
	if in.Source != nil && in.Patrol != nil {
		return Wall{}, errclass.Invalidf("patrol", "a tile shows a source or a patrol, not both")
	}
	return s.change(ctx, scope, id, in.Version, actor, func(w *Wall, wallScope orgs.Scope) error {
		if index < 0 || index >= len(w.Tiles) {
			return errclass.Invalidf("index", "must be 0 to %d for layout %s", len(w.Tiles)-1, w.Layout)
		}
		t := Tile{Source: in.Source.clone(), Patrol: in.Patrol.clone()}
		if t.Source != nil {
			if err := s.checkSource(ctx, wallScope, "source", t.Source); err != nil {
				return err
			}
		}
		if t.Patrol != nil {
			if err := s.checkPatrol(wallScope, "patrol", t.Patrol); err != nil {
				return err
			}
		}
		w.Tiles[index] = t
		return nil
	})
}

// Delete removes a wall inside scope and returns it.
func (s *Store) Delete(ctx context.Context, scope orgs.Scope, id string) (Wall, error) {
	w, err := s.Get(ctx, scope, id)
	if err != nil {
		return Wall{}, err
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM walls WHERE id = ?`, id); err != nil {
		return Wall{}, fmt.Errorf("delete wall: %w", err)
	}
	return w, nil
}

// casRetries is how often a change without a version is tried again when
// another change came first.
const casRetries = 5

// change applies fn to a copy of the wall inside scope and stores it as
// the next version. fn gets the scope of the wall's organisation, which
// its cameras must lie in. With a version, the wall must be at it; without
// one, a change that loses the race to another is made again on the newer
// wall.
func (s *Store) change(ctx context.Context, scope orgs.Scope, id string, version *int, actor string,
	fn func(w *Wall, wallScope orgs.Scope) error) (Wall, error) {
	for range casRetries {
		cur, err := s.Get(ctx, scope, id)
		if err != nil {
			return Wall{}, err
		}
		if version != nil && *version != cur.Version {
			return Wall{}, ErrVersionConflict
		}
		wallScope, err := s.tree.ScopeOf(cur.OrgID)
		if err != nil {
			return Wall{}, err
		}
		next := cur.clone()
		if err := fn(&next, wallScope); err != nil {
			return Wall{}, err
		}
		next.Version, next.UpdatedBy = cur.Version+1, actor
		next.UpdatedAt = s.now().Truncate(time.Millisecond).UTC()
		ok, err := save(ctx, s.db, next, cur.Version)
		if err != nil {
			return Wall{}, err
		}
		if ok {
			return next, nil
		}
		if version != nil {
			return Wall{}, ErrVersionConflict
		}
	}
	return Wall{}, ErrVersionConflict
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// save stores w if the stored wall is still at version prev; false when
// it is not (changed meanwhile, or deleted).
func save(ctx context.Context, db execer, w Wall, prev int) (bool, error) {
	res, err := db.ExecContext(ctx, `UPDATE walls SET name = ?, layout = ?, tiles = ?, patrol = ?, alert_area = ?, version = ?,
		updated_by = ?, updated_at = ? WHERE id = ? AND version = ?`,
		w.Name, w.Layout, encode(w.Tiles), encodePatrol(w.Patrol), encode(w.AlertArea), w.Version, w.UpdatedBy, w.UpdatedAt.UnixMilli(), w.ID, prev)
	if err != nil {
		return false, fmt.Errorf("store wall: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// checkSource accepts a camera of the wall's organisation subtree, or a
// meeting participant with its room.
func (s *Store) checkSource(ctx context.Context, wallScope orgs.Scope, field string, src *Source) error {
	switch src.Kind {
	case SourceCamera:
		if src.RoomID != "" {
			return errclass.Invalidf(field+".room_id", "only a participant has a room_id")
		}
		return s.checkCamera(wallScope, field+".id", src.ID)
	case SourceParticipant:
		if !orgs.IDPattern.MatchString(src.ID) {
			return errclass.Invalidf(field+".id", "must be the participant's identity")
		}
		if src.RoomID == "" {
			return errclass.Invalidf(field+".room_id", "is required for a participant")
		}
		if !orgs.IDPattern.MatchString(src.RoomID) {
			return errclass.Invalidf(field+".room_id", "must be a room id")
		}
		if s.rooms != nil {
			if err := s.rooms.Exists(ctx, wallScope, src.RoomID); err != nil {
				if errclass.KindOf(err) == errclass.Internal {
					return err
				}
				return errclass.Invalidf(field+".room_id", "no such room in the wall's organisation")
			}
		}
		return nil
	default:
		return errclass.Invalidf(field+".kind", "must be %s or %s", SourceCamera, SourceParticipant)
	}
}

// checkCamera accepts a camera of the wall's organisation subtree: those
// who watch the wall may watch it. Cameras the caller cannot see lie
// outside it too (the wall is inside the caller's scope), and are named
// just as missing ones are.
func (s *Store) checkCamera(wallScope orgs.Scope, field, id string) error {
	if id == "" {
		return errclass.Invalidf(field, "is required")
	}
	if _, err := s.cams.GetCamera(wallScope, devices.CameraID(id)); err != nil {
		if errclass.KindOf(err) == errclass.Internal {
			return err
		}
		return errclass.Invalidf(field, "no camera %q in the wall's organisation subtree", id)
	}
	return nil
}

// checkPatrol checks a patrol's cameras and dwell and starts it now.
func (s *Store) checkPatrol(wallScope orgs.Scope, field string, p *Patrol) error {
	if n := len(p.CameraIDs); n < MinPatrolCameras || n > MaxPatrolCameras {
		return errclass.Invalidf(field+".camera_ids", "must list %d to %d cameras", MinPatrolCameras, MaxPatrolCameras)
	}
	for i, id := range p.CameraIDs {
		if slices.Contains(p.CameraIDs[:i], id) {
			return errclass.Invalidf(field+".camera_ids", "camera %q is listed twice", id)
		}
		if err := s.checkCamera(wallScope, field+".camera_ids", id); err != nil {
			return err
		}
	}
	if p.DwellS < MinDwellS || p.DwellS > MaxDwellS {
		return errclass.Invalidf(field+".dwell_s", "must be %d to %d seconds", MinDwellS, MaxDwellS)
	}
	p.StartedAt = s.now().Truncate(time.Millisecond).UTC()
	return nil
}
