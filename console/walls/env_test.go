package walls

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/devices"
	"github.com/lookout-cc/lookout/internal/audit"
	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
	"github.com/lookout-cc/lookout/internal/orgs/orgstest"
)

// testEnv is a wall store over a real SQLite database, with the org tree
// 云南省 (yn) > 昭通市 (zt) > {巧家县 (qj), 永善县 (ys)}, the sites bht (qj)
// and xld (ys), and two cameras at each.
type testEnv struct {
	t     *testing.T
	ctx   context.Context
	tree  *orgs.Store
	reg   *devices.Registry
	audit *audit.Log
	store *Store
	log   *slog.Logger
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	ctx := context.Background()
	db, tree, _ := orgstest.Tree(t)
	root, _ := tree.ScopeOf("yn")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg, err := devices.NewRegistry(ctx, db, tree)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []devices.NewSite{
		{ID: "bht", Name: "白鹤滩水库", Kind: "reservoir", OrgID: "qj", Lat: 27.2, Lon: 102.9},
		{ID: "xld", Name: "溪洛渡水库", Kind: "reservoir", OrgID: "ys", Lat: 28.26, Lon: 103.64},
	} {
		if _, err := reg.CreateSite(ctx, root, s); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ id, site string }{{"bht-dam", "bht"}, {"bht-gate", "bht"}, {"xld-dam", "xld"}, {"xld-gate", "xld"}} {
		if _, err := reg.CreateCamera(ctx, root, devices.NewCamera{ID: devices.CameraID(c.id), Name: c.id, SiteID: devices.SiteID(c.site),
			URL: "rtsp://10.0.0.5/" + c.id, Lat: 27.2, Lon: 102.9}); err != nil {
			t.Fatal(err)
		}
	}
	auditLog, err := audit.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{t: t, ctx: ctx, tree: tree, reg: reg, audit: auditLog, store: NewStore(db, tree, reg), log: log}
}

func (e *testEnv) scope(id orgs.ID) orgs.Scope {
	e.t.Helper()
	s, err := e.tree.ScopeOf(id)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// mustCreate makes a wall in org with the layout and alert area.
func (e *testEnv) mustCreate(id string, org orgs.ID, layout string, area ...int) Wall {
	e.t.Helper()
	if area == nil {
		area = []int{}
	}
	w, err := e.store.Create(e.ctx, e.scope(org), "tester", NewWall{ID: id, Name: "大屏 " + id, Layout: layout, AlertArea: area})
	if err != nil {
		e.t.Fatal(err)
	}
	return w
}

// mustGet reads a wall whatever its organisation.
func (e *testEnv) mustGet(id string) Wall {
	e.t.Helper()
	w, err := e.store.Get(e.ctx, e.scope("yn"), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return w
}

// camera is a camera source.
func camera(id string) *Source { return &Source{Kind: SourceCamera, ID: id} }

// shows lists what each tile of w shows, as "camera-id" or "-" (empty),
// with "@alert" for pinned tiles.
func shows(w Wall) string {
	out := ""
	for i, t := range w.Tiles {
		if i > 0 {
			out += " "
		}
		switch {
		case t.Source == nil:
			out += "-"
		case t.Source.Kind == SourceParticipant:
			out += "p:" + t.Source.ID
		default:
			out += t.Source.ID
		}
		if t.AlertID != "" {
			out += "@" + t.AlertID
		}
	}
	return out
}

// fieldOf returns an error's code and field.
func fieldOf(err error) string {
	var e *errclass.Error
	if !errors.As(err, &e) {
		return fmt.Sprintf("unclassified: %v", err)
	}
	if e.Field == "" {
		return e.Code
	}
	return e.Code + " " + e.Field
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
