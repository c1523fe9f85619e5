package devices

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"strings"
	"testing"

	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
	"github.com/lookout-cc/lookout/internal/sqldb"
)

// newTestRegistry returns a registry over a fresh database with the org
// tree yn > {qj, ys}, the province's scope, and a reopen function that
// builds a second registry over the same database.
func newTestRegistry(t *testing.T) (*Registry, orgs.Scope, func() *Registry) {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tree, err := orgs.NewStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.EnsureRoot(ctx, orgs.NewOrg{ID: "yn", Name: "云南省", Kind: "province"}); err != nil {
		t.Fatal(err)
	}
	root, _ := tree.ScopeOf("yn")
	for _, o := range []orgs.NewOrg{{ID: "qj", ParentID: "yn", Name: "巧家县", Kind: "county"}, {ID: "ys", ParentID: "yn", Name: "永善县", Kind: "county"}} {
		if _, err := tree.Create(ctx, root, o); err != nil {
			t.Fatal(err)
		}
	}
	open := func() *Registry {
		r, err := NewRegistry(ctx, db, tree)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	return open(), root, open
}

func TestCamerasNearAndOfSite(t *testing.T) {
	ctx := context.Background()
	r, root, reopen := newTestRegistry(t)
	for _, s := range []NewSite{
		{ID: "bht", Name: "白鹤滩", Kind: "reservoir", OrgID: "qj", Lat: 27.2, Lon: 102.9},
		{ID: "xld", Name: "溪洛渡", Kind: "reservoir", OrgID: "ys", Lat: 28.26, Lon: 103.65},
	} {
		if _, err := r.CreateSite(ctx, root, s); err != nil {
			t.Fatal(err)
		}
	}
	// Cameras around (27.2, 102.9): 0.001° of latitude is about 111 m;
	// mid-a and mid-b stand together about 556 m east.
	for _, c := range []NewCamera{
		{ID: "far", Name: "far", SiteID: "bht", URL: "rtsp://cam/far", Lat: 27.209, Lon: 102.9},    // ~1000 m
		{ID: "near", Name: "near", SiteID: "bht", URL: "rtsp://cam/near", Lat: 27.201, Lon: 102.9}, // ~111 m
		{ID: "mid-b", Name: "mid", SiteID: "xld", URL: "rtsp://cam/b", Lat: 27.2, Lon: 102.9 + 0.005/math.Cos(27.2*math.Pi/180)},
		{ID: "mid-a", Name: "mid", SiteID: "bht", URL: "rtsp://cam/a", Lat: 27.2, Lon: 102.9 + 0.005/math.Cos(27.2*math.Pi/180)},
		{ID: "xld-dam", Name: "dam", SiteID: "xld", URL: "rtsp://cam/x", Lat: 28.26, Lon: 103.65}, // ~130 km
	} {
		if _, err := r.CreateCamera(ctx, root, c); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(cds []CameraDistance) string {
		var out []string
		for _, cd := range cds {
			out = append(out, string(cd.Camera.ID))
		}
		return strings.Join(out, ",")
	}
	for _, reg := range []*Registry{r, reopen()} { // the index survives a restart
		tests := []struct {
			name    string
			radiusM float64
			want    string
		}{
			{"nothing within 50 m", 50, ""},
			{"the nearest only", 200, "near"},
			// mid-a and mid-b stand at the same spot: by id.
			{"equally near by id", 600, "near,mid-a,mid-b"},
			{"edge is inside", DistanceM(27.2, 102.9, 27.209, 102.9), "near,mid-a,mid-b,far"},
			{"every camera", 200_000, "near,mid-a,mid-b,far,xld-dam"},
			{"negative radius", -1, ""},
			{"NaN radius", math.NaN(), ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got := reg.CamerasNear(27.2, 102.9, tt.radiusM)
				if ids(got) != tt.want {
					t.Fatalf("CamerasNear(%g) = %s, want %s", tt.radiusM, ids(got), tt.want)
				}
				for i := 1; i < len(got); i++ {
					if got[i].DistanceM < got[i-1].DistanceM {
						t.Fatalf("not nearest first: %+v", got)
					}
				}
			})
		}
		near := reg.CamerasNear(27.2, 102.9, 200)
		if d := near[0].DistanceM; math.Abs(d-111.195) > 0.01 {
			t.Fatalf("distance of near: %g", d)
		}
		var of []string
		for _, c := range reg.CamerasOfSite("bht") {
			of = append(of, string(c.ID))
		}
		if strings.Join(of, ",") != "far,mid-a,near" {
			t.Fatalf("CamerasOfSite(bht) = %v", of)
		}
		if n := len(reg.CamerasOfSite("nowhere")); n != 0 {
			t.Fatalf("CamerasOfSite(nowhere) has %d", n)
		}
	}
}

func TestCameraLifecycleAndScope(t *testing.T) {
	ctx := context.Background()
	r, root, reopen := newTestRegistry(t)
	qj, _ := r.orgs.ScopeOf("qj")
	for _, s := range []NewSite{
		{ID: "bht", Name: "白鹤滩", Kind: "reservoir", OrgID: "qj", Lat: 27.2, Lon: 102.9},
		{ID: "bht2", Name: "白鹤滩二", Kind: "street", OrgID: "qj", Lat: 27.2, Lon: 102.9},
		{ID: "xld", Name: "溪洛渡", Kind: "reservoir", OrgID: "ys", Lat: 28.26, Lon: 103.65},
	} {
		if _, err := r.CreateSite(ctx, root, s); err != nil {
			t.Fatal(err)
		}
	}
	in := NewCamera{ID: "dam", Name: " 坝前 ", SiteID: "bht", URL: "rtsp://admin:s3cret@10.0.0.5:554/Streaming/Channels/101",
		Lat: 27.2, Lon: 102.9, Meta: map[string]string{"vendor": "hik"}}
	c, err := r.CreateCamera(ctx, qj, in)
	if err != nil {
		t.Fatal(err)
	}
	if c.OrgID != "qj" || c.Name != "坝前" || c.URL != in.URL {
		t.Fatalf("created %+v", c)
	}
	in.Meta["vendor"] = "changed by the caller"
	if got, _ := r.GetCamera(qj, "dam"); got.Meta["vendor"] != "hik" {
		t.Fatalf("the registry shares the caller's meta: %v", got.Meta)
	}
	if _, err := r.CreateCamera(ctx, qj, NewCamera{ID: "dam", Name: "x", SiteID: "bht", URL: "rtsp://h/"}); !errors.Is(err, ErrCameraExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := r.CreateCamera(ctx, qj, NewCamera{ID: "x", Name: "x", SiteID: "xld", URL: "rtsp://h/"}); !errors.Is(err, orgs.ErrOutOfScope) {
		t.Fatalf("another county's site: %v", err)
	}
	if _, err := r.GetCamera(qj, "nope"); !errors.Is(err, ErrCameraNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	// Moving to a site outside scope is refused as no such site; moving
	// within scope works and persists.
	if _, err := r.UpdateCamera(ctx, qj, "dam", CameraPatch{SiteID: ptr(SiteID("xld"))}); fieldOf(err) != "site_id" {
		t.Fatalf("move out of scope: %v", err)
	}
	sub := "rtsp://admin:s3cret@10.0.0.5:554/Streaming/Channels/102"
	if _, err := r.UpdateCamera(ctx, qj, "dam", CameraPatch{SiteID: ptr(SiteID("bht2")), SubURL: &sub}); err != nil {
		t.Fatal(err)
	}
	r2 := reopen()
	got, err := r2.GetCamera(qj, "dam")
	if err != nil || got.SiteID != "bht2" || got.SubURL != sub || got.Meta["vendor"] != "hik" || !got.CreatedAt.Equal(c.CreatedAt) {
		t.Fatalf("after reload: %+v %v", got, err)
	}
	if _, err := r2.DeleteSite(ctx, root, "bht2"); !errors.Is(err, ErrSiteHasCameras) {
		t.Fatalf("delete site with a camera: %v", err)
	}
	ys, _ := r.orgs.ScopeOf("ys")
	if _, err := r2.DeleteCamera(ctx, ys, "dam"); !errors.Is(err, orgs.ErrOutOfScope) {
		t.Fatalf("delete from another county: %v", err)
	}
	if _, err := r2.DeleteCamera(ctx, qj, "dam"); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.DeleteSite(ctx, root, "bht2"); err != nil {
		t.Fatalf("delete emptied site: %v", err)
	}
	if n := len(reopen().ListCameras(root, "")); n != 0 {
		t.Fatalf("%d cameras after delete", n)
	}
}

func TestCameraValidation(t *testing.T) {
	ok := NewCamera{ID: "c1", Name: "cam", SiteID: "s", URL: "rtsp://u:p@h:554/x", Lat: 27, Lon: 102}
	tests := []struct {
		name  string
		edit  func(*NewCamera)
		field string
	}{
		{"valid", func(*NewCamera) {}, ""},
		{"rtsps and no credentials", func(n *NewCamera) { n.URL = "rtsps://cam.example/live" }, ""},
		{"upper-case scheme", func(n *NewCamera) { n.URL = "RTSP://cam/live" }, ""},
		{"bad id", func(n *NewCamera) { n.ID = "Cam 1" }, "id"},
		{"empty name", func(n *NewCamera) { n.Name = "  " }, "name"},
		{"long name", func(n *NewCamera) { n.Name = strings.Repeat("x", 201) }, "name"},
		{"no site", func(n *NewCamera) { n.SiteID = "" }, "site_id"},
		{"no url", func(n *NewCamera) { n.URL = "" }, "url"},
		{"http url", func(n *NewCamera) { n.URL = "http://h/x" }, "url"},
		{"no host", func(n *NewCamera) { n.URL = "rtsp:///x" }, "url"},
		{"port only", func(n *NewCamera) { n.URL = "rtsp://:554/x" }, "url"},
		{"opaque", func(n *NewCamera) { n.URL = "rtsp:h/x" }, "url"},
		{"unparsable", func(n *NewCamera) { n.URL = "rtsp://u:p@h:port/x" }, "url"},
		{"space", func(n *NewCamera) { n.URL = "rtsp://h/a b" }, "url"},
		{"too long", func(n *NewCamera) { n.URL = "rtsp://h/" + strings.Repeat("a", 2048) }, "url"},
		{"unescaped slash in password", func(n *NewCamera) { n.URL = "rtsp://admin:12/34@h/x" }, "url"},
		{"bad sub_url", func(n *NewCamera) { n.SubURL = "rtmp://h/x" }, "sub_url"},
		{"lat", func(n *NewCamera) { n.Lat = 91 }, "lat"},
		{"lon", func(n *NewCamera) { n.Lon = math.NaN() }, "lon"},
		{"meta", func(n *NewCamera) { n.Meta = map[string]string{"k": strings.Repeat("v", 257)} }, "meta"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := ok
			tt.edit(&n)
			err := n.validate()
			if fieldOf(err) != tt.field || (tt.field == "" && err != nil) {
				t.Fatalf("validate: %v, want field %q", err, tt.field)
			}
			if err != nil && (strings.Contains(err.Error(), "p@") || strings.Contains(err.Error(), "12/34")) {
				t.Fatalf("the message repeats the URL: %v", err)
			}
		})
	}
}

func TestCameraRedacted(t *testing.T) {
	tests := []struct{ in, want string }{
		{"rtsp://admin:s3cret@10.0.0.5:554/Streaming/Channels/101", "rtsp://admin:***@10.0.0.5:554/Streaming/Channels/101"},
		{"rtsp://admin:p%40ss%2Fw@cam/live?channel=1&subtype=0", "rtsp://admin:***@cam/live?channel=1&subtype=0"},
		{"rtsp://admin:p@ss@cam/live", "rtsp://admin:***@cam/live"},
		{"rtsp://admin:@cam/live", "rtsp://admin:***@cam/live"},
		{"rtsp://admin@cam/live", "rtsp://admin@cam/live"},
		{"rtsps://cam.example/live", "rtsps://cam.example/live"},
		{"rtsp://cam/cgi?user=admin&Password=s3cret&channel=1&pwd=x", "rtsp://cam/cgi?user=admin&Password=***&channel=1&pwd=***"},
		{"", ""},
		{"rtsp://u:s3cret@h:port/", "***"}, // not a valid URL: nothing shown
	}
	for _, tt := range tests {
		c := Camera{URL: tt.in, SubURL: tt.in}.Redacted()
		if c.URL != tt.want || c.SubURL != tt.want {
			t.Errorf("Redacted(%q) = %q, %q; want %q", tt.in, c.URL, c.SubURL, tt.want)
		}
	}
	orig := Camera{URL: "rtsp://a:b@h/"}
	_ = orig.Redacted()
	if orig.URL != "rtsp://a:b@h/" {
		t.Fatal("Redacted changed its receiver")
	}
}

func ptr[T any](v T) *T { return &v }

func fieldOf(err error) string {
	var e *errclass.Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
