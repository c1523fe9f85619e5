// Package walls keeps the video walls: what each command room's wall shows,
// tile by tile, and the alert area the server fills by itself when an
// alert brings its cameras (Pinner). A wall belongs to an organisation and
// is scoped by the tier tree like every resource.
//
// # Layouts and tiles
//
// A wall's layout is "1", "4", "9", "16" (a square grid) or "1+5" (one
// large tile 0 and five small ones); it has exactly as many tiles as its
// layout (1, 4, 9, 16, 6). A tile shows a Source (a camera, or a meeting
// participant), cycles through a camera group (its Patrol), or is empty.
// Changing the layout keeps the first tiles and pads with empty ones.
//
// # Patrols
//
// A patrol cycles through 2 to 64 cameras, dwell_s (5-30) seconds each.
// The server sets started_at when the patrol is set and never ticks: every
// screen computes the current step as
//
//	k = floor((now - started_at) / dwell_s)
//
// so all screens showing one wall agree. A tile's patrol shows
// camera_ids[k mod len(camera_ids)]. The wall's patrol pages through its
// cameras a wall's worth at a time: with N tiles there are
// ceil(len/N) pages, the page shown is k mod pages, and tile i shows
// camera_ids[page*N + i] (empty past the end).
//
// What a tile shows, first match wins: an alert's pin (alert_id set: its
// source), the tile's patrol, the wall's patrol, the tile's source.
//
// # Alert area
//
// alert_area lists the tile indexes the server pins an alert's feeds to,
// in order (empty: no pinning). A pinned tile carries the alert's id in
// alert_id and what it showed before in before (null: it was empty); when
// the alert is resolved or closed it shows before again. A tile's own
// patrol survives a pin and resumes after it. See Pinner for which alert
// wins the area.
//
// # Versions
//
// Every change adds one to version; a change may name the version it was
// made against and is refused (ErrVersionConflict) when the wall has
// moved on. Changes without a version are applied to the current wall.
package walls

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// Wall is one video wall.
type Wall struct {
	ID     string  `json:"id"`
	OrgID  orgs.ID `json:"org_id"`
	Name   string  `json:"name"`
	Layout string  `json:"layout"`
	// Tiles has exactly as many tiles as the layout.
	Tiles []Tile `json:"tiles"`
	// Patrol, when set, cycles the whole wall through a camera group.
	Patrol *Patrol `json:"patrol"`
	// AlertArea are the tile indexes alerts are pinned to, in order;
	// empty: none. Never null in JSON.
	AlertArea []int `json:"alert_area"`
	// Version counts the changes, from 1 at creation.
	Version   int       `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
	// UpdatedBy is the user who made the last change, or "system" for the
	// server's alert pinning.
	UpdatedBy string `json:"updated_by"`
}

// Tile is one picture of a wall.
type Tile struct {
	// Source is what the tile shows; null: empty (or, with a patrol, the
	// patrol's camera).
	Source *Source `json:"source"`
	// Patrol, when set, cycles this tile through a camera group.
	Patrol *Patrol `json:"patrol,omitempty"`
	// AlertID is set while the server has pinned the tile for an alert;
	// Before is what it showed until then (absent: it was empty).
	AlertID string  `json:"alert_id,omitempty"`
	Before  *Source `json:"before,omitempty"`
}

// Source is what a tile shows.
type Source struct {
	// Kind is SourceCamera or SourceParticipant.
	Kind string `json:"kind"`
	// ID is the camera's id, or the participant's identity.
	ID string `json:"id"`
	// RoomID is the meeting room of a participant.
	RoomID string `json:"room_id,omitempty"`
}

// Kinds of source.
const (
	SourceCamera      = "camera"
	SourceParticipant = "participant"
)

// Patrol cycles through a camera group; see the package comment.
type Patrol struct {
	CameraIDs []string `json:"camera_ids"`
	DwellS    int      `json:"dwell_s"`
	// StartedAt is set by the server when the patrol is set; what a
	// client sends is ignored.
	StartedAt time.Time `json:"started_at"`
}

// Limits of a patrol.
const (
	MinPatrolCameras = 2
	MaxPatrolCameras = 64
	MinDwellS        = 5
	MaxDwellS        = 30
)

// Actor is who the server's own changes (alert pinning) are made by.
const Actor = "system"

// layoutTiles is how many tiles each layout has.
var layoutTiles = map[string]int{"1": 1, "4": 4, "9": 9, "16": 16, "1+5": 6}

// Layouts lists the layouts, smallest first.
var Layouts = []string{"1", "4", "9", "16", "1+5"}

// DefaultLayout is a new wall's layout when none is given.
const DefaultLayout = "4"

// TileCount returns how many tiles a layout has, 0 for an unknown one.
func TileCount(layout string) int { return layoutTiles[layout] }

func checkLayout(layout string) error {
	if TileCount(layout) == 0 {
		return errclass.Invalidf("layout", "must be one of %s", strings.Join(Layouts, ", "))
	}
	return nil
}

func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len([]rune(name)) > 200 {
		return "", errclass.Invalidf("name", "must be 1-200 characters")
	}
	return name, nil
}

// checkAlertArea accepts distinct tile indexes of a wall of n tiles.
func checkAlertArea(area []int, n int) error {
	for i, idx := range area {
		if idx < 0 || idx >= n {
			return errclass.Invalidf("alert_area", "tile %d does not exist: the layout has tiles 0 to %d", idx, n-1)
		}
		if slices.Contains(area[:i], idx) {
			return errclass.Invalidf("alert_area", "tile %d is listed twice", idx)
		}
	}
	return nil
}

// resize gives w the tiles of layout: the first ones kept, empty ones
// added; alert area indexes past the end are dropped.
func (w *Wall) resize(layout string) {
	n := TileCount(layout)
	w.Layout = layout
	if len(w.Tiles) > n {
		w.Tiles = w.Tiles[:n]
	}
	for len(w.Tiles) < n {
		w.Tiles = append(w.Tiles, Tile{})
	}
	w.AlertArea = slices.DeleteFunc(w.AlertArea, func(i int) bool { return i >= n })
}

// clone returns a deep copy of w, to change without touching w.
func (w Wall) clone() Wall {
	c := w
	c.Tiles = make([]Tile, len(w.Tiles))
	for i, t := range w.Tiles {
		c.Tiles[i] = t.clone()
	}
	c.Patrol = w.Patrol.clone()
	c.AlertArea = append([]int{}, w.AlertArea...)
	return c
}

func (t Tile) clone() Tile {
	c := t
	c.Source = t.Source.clone()
	c.Before = t.Before.clone()
	c.Patrol = t.Patrol.clone()
	return c
}

func (s *Source) clone() *Source {
	if s == nil {
		return nil
	}
	c := *s
	return &c
}

func (p *Patrol) clone() *Patrol {
	if p == nil {
		return nil
	}
	c := *p
	c.CameraIDs = append([]string(nil), p.CameraIDs...)
	return &c
}

func (s *Source) equal(o *Source) bool {
	if s == nil || o == nil {
		return s == o
	}
	return *s == *o
}

// newWallID makes an id for a wall created without one.
func newWallID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "wall-" + hex.EncodeToString(b)
}

// Deleted is the data of the wall event that announces a deleted wall:
// {"id": "...", "deleted": true}. Every other wall event (type "wall")
// carries the whole wall as it is after the change.
type Deleted struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}
