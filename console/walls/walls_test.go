package walls

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// A wall is created, read, listed, changed and deleted inside the caller's
// subtree only: a county sees its own walls, not the province's nor the
// neighbour's.
func TestWallCRUDAndScoping(t *testing.T) {
	e := newTestEnv(t)
	yn, qj, ys := e.scope("yn"), e.scope("qj"), e.scope("ys")

	w, err := e.store.Create(e.ctx, yn, "admin", NewWall{ID: "prov", Name: " 省指挥大屏 "})
	if err != nil {
		t.Fatal(err)
	}
	if w.OrgID != "yn" || w.Name != "省指挥大屏" || w.Layout != "4" || len(w.Tiles) != 4 || w.Version != 1 || w.UpdatedBy != "admin" ||
		w.Patrol != nil || w.AlertArea == nil || len(w.AlertArea) != 0 {
		t.Fatalf("created: %+v", w)
	}
	if got, err := e.store.Get(e.ctx, yn, "prov"); err != nil || !reflect.DeepEqual(got, w) {
		t.Fatalf("read back: %+v %v, want %+v", got, err, w)
	}
	made, err := e.store.Create(e.ctx, qj, "qj-op", NewWall{Name: "巧家县大屏", Layout: "1+5", AlertArea: []int{0}})
	if err != nil || !strings.HasPrefix(made.ID, "wall-") || !orgs.IDPattern.MatchString(made.ID) || made.OrgID != "qj" || len(made.Tiles) != 6 {
		t.Fatalf("made id: %+v %v", made, err)
	}
	if _, err := e.store.Create(e.ctx, yn, "admin", NewWall{ID: "prov", Name: "again"}); !errors.Is(err, ErrWallExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := e.store.Create(e.ctx, qj, "qj-op", NewWall{ID: "x", Name: "x", OrgID: "ys"}); !errors.Is(err, orgs.ErrOutOfScope) {
		t.Fatalf("another county's org: %v", err)
	}

	for _, tc := range []struct {
		name  string
		scope orgs.Scope
		want  []string
	}{
		{"province lists all", yn, []string{"prov", made.ID}},
		{"county lists its own", qj, []string{made.ID}},
		{"neighbour lists none", ys, nil},
	} {
		ws, err := e.store.List(e.ctx, tc.scope)
		var ids []string
		for _, w := range ws {
			ids = append(ids, w.ID)
		}
		if err != nil || ws == nil || !reflect.DeepEqual(ids, tc.want) {
			t.Errorf("%s: %v %v", tc.name, ids, err)
		}
	}

	// Out of scope: the county cannot read, change or delete the
	// province's wall, which stays as it was.
	name := "改名"
	for _, tc := range []struct {
		name string
		do   func() error
	}{
		{"get", func() error { _, err := e.store.Get(e.ctx, qj, "prov"); return err }},
		{"patch", func() error { _, err := e.store.Update(e.ctx, qj, "qj-op", "prov", Patch{Name: &name}); return err }},
		{"tile", func() error {
			_, err := e.store.SetTile(e.ctx, qj, "qj-op", "prov", 0, TileInput{Source: camera("bht-dam")})
			return err
		}},
		{"delete", func() error { _, err := e.store.Delete(e.ctx, qj, "prov"); return err }},
	} {
		if err := tc.do(); !errors.Is(err, orgs.ErrOutOfScope) {
			t.Errorf("county %s of the province's wall: %v", tc.name, err)
		}
	}
	if got := e.mustGet("prov"); !reflect.DeepEqual(got, w) {
		t.Fatalf("changed from out of scope: %+v", got)
	}
	if _, err := e.store.Get(e.ctx, yn, "nope"); !errors.Is(err, ErrWallNotFound) {
		t.Fatalf("unknown: %v", err)
	}

	// Changes count up the version and name who made them.
	up, err := e.store.Update(e.ctx, yn, "commander", "prov", Patch{Name: &name})
	if err != nil || up.Name != "改名" || up.Version != 2 || up.UpdatedBy != "commander" {
		t.Fatalf("rename: %+v %v", up, err)
	}
	if _, err := e.store.Delete(e.ctx, yn, "prov"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Get(e.ctx, yn, "prov"); !errors.Is(err, ErrWallNotFound) {
		t.Fatalf("deleted: %v", err)
	}
	if _, err := e.store.Update(e.ctx, yn, "commander", "prov", Patch{Name: &name}); !errors.Is(err, ErrWallNotFound) {
		t.Fatalf("patch deleted: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

// Bad input is refused with the field it is in; the wall stays as it was.
func TestWallValidation(t *testing.T) {
	e := newTestEnv(t)
	yn, qj := e.scope("yn"), e.scope("qj")
	// A county wall: cameras of the neighbouring county are not its own.
	e.mustCreate("w", "qj", "4", 0)
	before := e.mustGet("w")
	patrol := func(dwell int, ids ...string) *Patrol { return &Patrol{CameraIDs: ids, DwellS: dwell} }
	tooMany := make([]string, MaxPatrolCameras+1)
	for i := range tooMany {
		tooMany[i] = "bht-dam"
	}

	tests := []struct {
		name string
		do   func() error
		want string // code and field
	}{
		{"create: bad id", func() error {
			_, err := e.store.Create(e.ctx, yn, "a", NewWall{ID: "Bad Id", Name: "x"})
			return err
		}, "invalid_field id"},
		{"create: no name", func() error { _, err := e.store.Create(e.ctx, yn, "a", NewWall{ID: "n", Name: "  "}); return err }, "invalid_field name"},
		{"create: unknown layout", func() error {
			_, err := e.store.Create(e.ctx, yn, "a", NewWall{ID: "n", Name: "x", Layout: "2+2"})
			return err
		}, "invalid_field layout"},
		{"create: alert area off the layout", func() error {
			_, err := e.store.Create(e.ctx, yn, "a", NewWall{ID: "n", Name: "x", Layout: "1", AlertArea: []int{1}})
			return err
		}, "invalid_field alert_area"},
		{"create: duplicate alert area index", func() error {
			_, err := e.store.Create(e.ctx, yn, "a", NewWall{ID: "n", Name: "x", AlertArea: []int{0, 2, 0}})
			return err
		}, "invalid_field alert_area"},
		{"create: unknown org", func() error {
			_, err := e.store.Create(e.ctx, yn, "a", NewWall{ID: "n", Name: "x", OrgID: "nowhere"})
			return err
		}, "invalid_field org_id"},
		{"patch: unknown layout", func() error { _, err := e.store.Update(e.ctx, qj, "a", "w", Patch{Layout: ptr("5")}); return err }, "invalid_field layout"},
		{"patch: long name", func() error {
			_, err := e.store.Update(e.ctx, qj, "a", "w", Patch{Name: ptr(strings.Repeat("名", 201))})
			return err
		}, "invalid_field name"},
		{"patch: duplicate alert area index", func() error {
			_, err := e.store.Update(e.ctx, qj, "a", "w", Patch{AlertArea: &[]int{1, 1}})
			return err
		}, "invalid_field alert_area"},
		{"patch: alert area off the new layout", func() error {
			_, err := e.store.Update(e.ctx, qj, "a", "w", Patch{Layout: ptr("1"), AlertArea: &[]int{0, 3}})
			return err
		}, "invalid_field alert_area"},
		{"patch: negative alert area index", func() error {
			_, err := e.store.Update(e.ctx, qj, "a", "w", Patch{AlertArea: &[]int{-1}})
			return err
		}, "invalid_field alert_area"},
		{"patrol: one camera", func() error {
			_, err := e.store.Update(e.ctx, qj, "a", "w", Patch{Patrol: PatrolField{Set: true, Patrol: patrol(10, "bht-dam")}})
			return err
		}, "invalid_field patrol.camera_ids"},
		{"patrol: too many cameras", func() error {
			_, err := e.store.Update(e.ctx, qj, "a", "w", Patch{Patrol: PatrolField{Set: true, Patrol: patrol(10, tooMany...)}})
			return err
		}, "invalid_field patrol.camera_ids"},
		{"patrol: a camera twice", func() error {
			_, err := e.store.Update(e.ctx, qj, "a", "w", Patch{Patrol: PatrolField{Set: true, Patrol: patrol(10, "bht-dam", "bht-dam")}})
			return err
		}, "invalid_field patrol.camera_ids"},
		{"patrol: unknown camera", func() error {
			_, err := e.store.Update(e.ctx, qj, "a", "w", Patch{Patrol: PatrolField{Set: true, Patrol: patrol(10, "bht-dam", "nope")}})
			return err
		}, "invalid_field patrol.camera_ids"},
		{"patrol: camera outside the wall's org", func() error {
			_, err := e.store.Update(e.ctx, yn, "a", "w", Patch{Patrol: PatrolField{Set: true, Patrol: patrol(10, "bht-dam", "xld-dam")}})
			return err
		}, "invalid_field patrol.camera_ids"},
		{"patrol: dwell too short", func() error {
			_, err := e.store.Update(e.ctx, qj, "a", "w", Patch{Patrol: PatrolField{Set: true, Patrol: patrol(4, "bht-dam", "bht-gate")}})
			return err
		}, "invalid_field patrol.dwell_s"},
		{"patrol: dwell too long", func() error {
			_, err := e.store.Update(e.ctx, qj, "a", "w", Patch{Patrol: PatrolField{Set: true, Patrol: patrol(31, "bht-dam", "bht-gate")}})
			return err
		}, "invalid_field patrol.dwell_s"},
		{"tile: index past the end", func() error {
			_, err := e.store.SetTile(e.ctx, qj, "a", "w", 4, TileInput{Source: camera("bht-dam")})
			return err
		}, "invalid_field index"},
		{"tile: negative index", func() error { _, err := e.store.SetTile(e.ctx, qj, "a", "w", -1, TileInput{}); return err }, "invalid_field index"},
		{"tile: unknown camera", func() error {
			_, err := e.store.SetTile(e.ctx, qj, "a", "w", 0, TileInput{Source: camera("nope")})
			return err
		}, "invalid_field source.id"},
		{"tile: another county's camera", func() error {
			_, err := e.store.SetTile(e.ctx, qj, "a", "w", 0, TileInput{Source: camera("xld-dam")})
			return err
		}, "invalid_field source.id"},
		{"tile: camera outside the wall's org, by the province", func() error {
			_, err := e.store.SetTile(e.ctx, yn, "a", "w", 0, TileInput{Source: camera("xld-dam")})
			return err
		}, "invalid_field source.id"},
		{"tile: camera without id", func() error {
			_, err := e.store.SetTile(e.ctx, qj, "a", "w", 0, TileInput{Source: &Source{Kind: SourceCamera}})
			return err
		}, "invalid_field source.id"},
		{"tile: camera with a room", func() error {
			_, err := e.store.SetTile(e.ctx, qj, "a", "w", 0, TileInput{Source: &Source{Kind: SourceCamera, ID: "bht-dam", RoomID: "r"}})
			return err
		}, "invalid_field source.room_id"},
		{"tile: participant without room", func() error {
			_, err := e.store.SetTile(e.ctx, qj, "a", "w", 0, TileInput{Source: &Source{Kind: SourceParticipant, ID: "resident-7"}})
			return err
		}, "invalid_field source.room_id"},
		{"tile: participant with a bad identity", func() error {
			_, err := e.store.SetTile(e.ctx, qj, "a", "w", 0, TileInput{Source: &Source{Kind: SourceParticipant, ID: "Bad Id", RoomID: "r"}})
			return err
		}, "invalid_field source.id"},
		{"tile: unknown kind", func() error {
			_, err := e.store.SetTile(e.ctx, qj, "a", "w", 0, TileInput{Source: &Source{Kind: "rtsp", ID: "x"}})
			return err
		}, "invalid_field source.kind"},
		{"tile: source and patrol", func() error {
			_, err := e.store.SetTile(e.ctx, qj, "a", "w", 0, TileInput{Source: camera("bht-dam"), Patrol: patrol(10, "bht-dam", "bht-gate")})
			return err
		}, "invalid_field patrol"},
		{"tile: patrol of too few cameras", func() error {
			_, err := e.store.SetTile(e.ctx, qj, "a", "w", 0, TileInput{Patrol: patrol(10, "bht-gate")})
			return err
		}, "invalid_field patrol.camera_ids"},
		{"tile: patrol dwell out of range", func() error {
			_, err := e.store.SetTile(e.ctx, qj, "a", "w", 0, TileInput{Patrol: patrol(0, "bht-dam", "bht-gate")})
			return err
		}, "invalid_field patrol.dwell_s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := fieldOf(tc.do()); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
			if got := e.mustGet("w"); !reflect.DeepEqual(got, before) {
				t.Fatalf("the wall changed: %+v", got)
			}
		})
	}
	ws, _ := e.store.List(e.ctx, yn)
	if len(ws) != 1 {
		t.Fatalf("walls made by refused creations: %d", len(ws))
	}
}

// A change made against a version the wall has moved past is refused;
// one without a version applies to the current wall.
func TestWallVersionConflict(t *testing.T) {
	e := newTestEnv(t)
	qj := e.scope("qj")
	e.mustCreate("w", "qj", "4")
	a, err := e.store.Update(e.ctx, qj, "op-a", "w", Patch{Name: ptr("A"), Version: ptr(1)})
	if err != nil || a.Version != 2 {
		t.Fatalf("first: %+v %v", a, err)
	}
	if _, err := e.store.Update(e.ctx, qj, "op-b", "w", Patch{Name: ptr("B"), Version: ptr(1)}); !errors.Is(err, ErrVersionConflict) || fieldOf(err) != "wall_version_conflict" {
		t.Fatalf("stale patch: %v", err)
	}
	if _, err := e.store.SetTile(e.ctx, qj, "op-b", "w", 0, TileInput{Source: camera("bht-dam"), Version: ptr(1)}); !errors.Is(err, ErrVersionConflict) {
		t.Fatalf("stale tile: %v", err)
	}
	if got := e.mustGet("w"); got.Name != "A" || got.Version != 2 || got.Tiles[0].Source != nil {
		t.Fatalf("after the refused changes: %+v", got)
	}
	b, err := e.store.SetTile(e.ctx, qj, "op-b", "w", 0, TileInput{Source: camera("bht-dam"), Version: ptr(2)})
	if err != nil || b.Version != 3 || b.UpdatedBy != "op-b" {
		t.Fatalf("current tile: %+v %v", b, err)
	}
	c, err := e.store.Update(e.ctx, qj, "op-c", "w", Patch{Name: ptr("C")})
	if err != nil || c.Version != 4 || c.Name != "C" || shows(c) != "bht-dam - - -" {
		t.Fatalf("without a version: %+v %v", c, err)
	}
}

// A new layout keeps the first tiles and pads with empty ones; alert area
// indexes past its end are dropped.
func TestWallLayoutResize(t *testing.T) {
	e := newTestEnv(t)
	qj := e.scope("qj")
	e.mustCreate("w", "qj", "4", 3, 0)
	for i, cam := range []string{"bht-dam", "bht-gate", "bht-dam", "bht-gate"} {
		if _, err := e.store.SetTile(e.ctx, qj, "op", "w", i, TileInput{Source: camera(cam)}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		layout string
		shows  string
		area   []int
	}{
		{"9", "bht-dam bht-gate bht-dam bht-gate - - - - -", []int{3, 0}},
		{"1+5", "bht-dam bht-gate bht-dam bht-gate - -", []int{3, 0}},
		{"1", "bht-dam", []int{0}},
		{"16", "bht-dam - - - - - - - - - - - - - - -", []int{0}},
	}
	for _, tc := range tests {
		w, err := e.store.Update(e.ctx, qj, "op", "w", Patch{Layout: &tc.layout})
		if err != nil {
			t.Fatal(err)
		}
		if w.Layout != tc.layout || len(w.Tiles) != TileCount(tc.layout) || shows(w) != tc.shows || !reflect.DeepEqual(w.AlertArea, tc.area) {
			t.Errorf("to %s: %q %v", tc.layout, shows(w), w.AlertArea)
		}
		if got := e.mustGet("w"); !reflect.DeepEqual(got, w) {
			t.Errorf("to %s: stored %+v, answered %+v", tc.layout, got, w)
		}
	}
	// Layout and alert area in one patch: the area is checked against the
	// new layout.
	w, err := e.store.Update(e.ctx, qj, "op", "w", Patch{Layout: ptr("4"), AlertArea: &[]int{2, 1}})
	if err != nil || !reflect.DeepEqual(w.AlertArea, []int{2, 1}) || len(w.Tiles) != 4 {
		t.Fatalf("layout and area: %+v %v", w, err)
	}
	w, err = e.store.Update(e.ctx, qj, "op", "w", Patch{AlertArea: &[]int{}})
	if err != nil || w.AlertArea == nil || len(w.AlertArea) != 0 {
		t.Fatalf("area off: %+v %v", w, err)
	}
}

// A tile is set to a camera, a participant, a patrol or nothing; setting
// it drops an alert pin.
func TestWallTiles(t *testing.T) {
	e := newTestEnv(t)
	qj := e.scope("qj")
	now := time.Date(2025, 7, 1, 8, 0, 0, 0, time.UTC)
	e.store.now = func() time.Time { return now }
	e.mustCreate("w", "qj", "4")
	steps := []struct {
		index int
		in    TileInput
		shows string
	}{
		{0, TileInput{Source: camera("bht-dam")}, "bht-dam - - -"},
		{3, TileInput{Source: &Source{Kind: SourceParticipant, ID: "resident-7", RoomID: "hearing-1"}}, "bht-dam - - p:resident-7"},
		{0, TileInput{Source: camera("bht-gate")}, "bht-gate - - p:resident-7"},
		{1, TileInput{Patrol: &Patrol{CameraIDs: []string{"bht-dam", "bht-gate"}, DwellS: 10, StartedAt: time.Unix(1, 0)}}, "bht-gate - - p:resident-7"},
		{3, TileInput{}, "bht-gate - - -"},
	}
	for i, st := range steps {
		w, err := e.store.SetTile(e.ctx, qj, "op", "w", st.index, st.in)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if shows(w) != st.shows || w.Version != i+2 {
			t.Fatalf("step %d: %q version %d", i, shows(w), w.Version)
		}
	}
	w := e.mustGet("w")
	if p := w.Tiles[1].Patrol; p == nil || !p.StartedAt.Equal(now) || p.DwellS != 10 || w.Tiles[1].Source != nil {
		t.Fatalf("patrol tile (started by the server, not the client): %+v", w.Tiles[1])
	}
	// A pinned tile, set by an operator, is the operator's again.
	w.Tiles[2] = Tile{Source: camera("bht-dam"), AlertID: "alr_1", Before: camera("bht-gate")}
	if ok, err := save(e.ctx, e.store.db, w, w.Version); !ok || err != nil {
		t.Fatal(ok, err)
	}
	w, err := e.store.SetTile(e.ctx, qj, "op", "w", 2, TileInput{Source: camera("bht-gate")})
	if err != nil || w.Tiles[2].AlertID != "" || w.Tiles[2].Before != nil || w.Tiles[2].Source.ID != "bht-gate" {
		t.Fatalf("pinned tile set: %+v %v", w.Tiles[2], err)
	}

	// The wall's patrol: set (started now), kept by other changes, cleared.
	now = now.Add(time.Minute)
	w, err = e.store.Update(e.ctx, qj, "op", "w", Patch{Patrol: PatrolField{Set: true, Patrol: &Patrol{CameraIDs: []string{"bht-gate", "bht-dam"}, DwellS: 5}}})
	if err != nil || w.Patrol == nil || !w.Patrol.StartedAt.Equal(now) {
		t.Fatalf("wall patrol: %+v %v", w.Patrol, err)
	}
	w, err = e.store.Update(e.ctx, qj, "op", "w", Patch{Name: ptr("x")})
	if err != nil || w.Patrol == nil || !w.Patrol.StartedAt.Equal(now) {
		t.Fatalf("patrol after a rename: %+v %v", w.Patrol, err)
	}
	w, err = e.store.Update(e.ctx, qj, "op", "w", Patch{Patrol: PatrolField{Set: true}})
	if err != nil || w.Patrol != nil || e.mustGet("w").Patrol != nil {
		t.Fatalf("patrol cleared: %+v %v", w.Patrol, err)
	}
}

// The JSON the console relies on: field names, null for an empty tile and
// for no wall patrol, [] for no alert area.
func TestWallJSON(t *testing.T) {
	at := time.Date(2025, 7, 1, 8, 0, 0, 0, time.UTC)
	w := Wall{ID: "main", OrgID: "yn", Name: "指挥大屏", Layout: "1", AlertArea: []int{0}, Version: 3, UpdatedAt: at, UpdatedBy: "system",
		Tiles: []Tile{{Source: camera("bht-dam"), AlertID: "alr_1", Before: &Source{Kind: SourceParticipant, ID: "p", RoomID: "r"}}}}
	b, _ := json.Marshal(w)
	want := `{"id":"main","org_id":"yn","name":"指挥大屏","layout":"1","tiles":[{"source":{"kind":"camera","id":"bht-dam"},"alert_id":"alr_1",` +
		`"before":{"kind":"participant","id":"p","room_id":"r"}}],"patrol":null,"alert_area":[0],"version":3,"updated_at":"2025-07-01T08:00:00Z","updated_by":"system"}`
	if string(b) != want {
		t.Fatalf("wall JSON\n got %s\nwant %s", b, want)
	}
	b, _ = json.Marshal(Wall{Tiles: []Tile{{}, {Patrol: &Patrol{CameraIDs: []string{"a", "b"}, DwellS: 5, StartedAt: at}}}, AlertArea: []int{}})
	if !strings.Contains(string(b), `"tiles":[{"source":null},{"source":null,"patrol":{"camera_ids":["a","b"],"dwell_s":5,"started_at":"2025-07-01T08:00:00Z"}}]`) ||
		!strings.Contains(string(b), `"alert_area":[]`) {
		t.Fatalf("empty tile and patrol tile: %s", b)
	}
	b, _ = json.Marshal(Deleted{ID: "main", Deleted: true})
	if string(b) != `{"id":"main","deleted":true}` {
		t.Fatalf("deleted: %s", b)
	}

	// A patch tells an absent patrol from null; a patrol of the wrong
	// shape names the field.
	for _, tc := range []struct {
		body string
		set  bool
		nil  bool
	}{
		{`{}`, false, true},
		{`{"patrol": null}`, true, true},
		{`{"patrol": {"camera_ids": ["a", "b"], "dwell_s": 5}}`, true, false},
	} {
		var p Patch
		if err := json.Unmarshal([]byte(tc.body), &p); err != nil || p.Patrol.Set != tc.set || (p.Patrol.Patrol == nil) != tc.nil {
			t.Errorf("%s: %+v %v", tc.body, p.Patrol, err)
		}
	}
	for _, body := range []string{`{"patrol": 5}`, `{"patrol": {"cameras": ["a"]}}`, `{"patrol": {"dwell_s": "5"}}`} {
		var p Patch
		var typeErr *json.UnmarshalTypeError
		if err := json.Unmarshal([]byte(body), &p); !errors.As(err, &typeErr) || typeErr.Field != "patrol" {
			t.Errorf("%s: %v", body, err)
		}
	}
}

// fakeRooms has the rooms of qj only.
type fakeRooms struct{ tree *orgs.Store }

func (f fakeRooms) Exists(_ context.Context, scope orgs.Scope, id string) error {
	if id != "hearing-1" {
		return errclass.New(errclass.NotFound, "room_not_found", "room not found")
	}
	if !f.tree.Contains(scope, "qj") {
		return orgs.ErrOutOfScope
	}
	return nil
}

// With rooms to check, a participant's tile names a room of the wall's
// subtree: one elsewhere, or none, is refused and the wall stays as it was.
func TestParticipantTileRoomIsChecked(t *testing.T) {
	e := newTestEnv(t)
	e.store.CheckRooms(fakeRooms{e.tree})
	e.mustCreate("w", "qj", "4")
	e.mustCreate("y", "ys", "4")
	participant := func(room string) TileInput {
		return TileInput{Source: &Source{Kind: SourceParticipant, ID: "resident-7", RoomID: room}}
	}
	if _, err := e.store.SetTile(e.ctx, e.scope("qj"), "op", "w", 0, participant("hearing-1")); err != nil {
		t.Fatalf("a room of the wall's organisation: %v", err)
	}
	for _, tc := range []struct{ wall, room string }{{"w", "no-such-room"}, {"y", "hearing-1"}} {
		_, err := e.store.SetTile(e.ctx, e.scope("zt"), "op", tc.wall, 1, participant(tc.room))
		if errclass.KindOf(err) != errclass.Invalid || !strings.Contains(err.Error(), "room_id") {
			t.Errorf("wall %s, room %s: %v, want invalid source.room_id", tc.wall, tc.room, err)
		}
		if w, _ := e.store.Get(e.ctx, e.scope("zt"), tc.wall); w.Tiles[1].Source != nil {
			t.Errorf("wall %s changed: %+v", tc.wall, w.Tiles[1])
		}
	}
}
