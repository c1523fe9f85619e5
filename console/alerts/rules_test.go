package alerts

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/lookout-cc/lookout/devices"
	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
	"github.com/lookout-cc/lookout/internal/sqldb"
)

// fakeRegistry stands in for devices.Registry: a few sites and devices.
type fakeRegistry struct {
	sites   map[devices.SiteID]devices.Site
	devices map[devices.ID]devices.Device
}

func (f *fakeRegistry) Lookup(id devices.ID) (devices.Device, bool) {
	d, ok := f.devices[id]
	return d, ok
}
func (f *fakeRegistry) SiteByID(id devices.SiteID) (devices.Site, bool) {
	s, ok := f.sites[id]
	return s, ok
}
func (f *fakeRegistry) SiteDevices(id devices.SiteID) []devices.Device {
	return f.where(func(d devices.Device) bool { return d.SiteID == id })
}
func (f *fakeRegistry) DevicesOfKind(kind string) []devices.Device {
	return f.where(func(d devices.Device) bool { return d.Kind == kind })
}
func (f *fakeRegistry) where(keep func(devices.Device) bool) []devices.Device {
	var out []devices.Device
	for _, d := range f.devices {
		if keep(d) {
			out = append(out, d)
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// testWorld is a province (yn) with two counties (qj, ys): Baihetan
// reservoir and its gauge in qj, a street in ys, a port in qj.
func testWorld(t testing.TB) (*orgs.Store, *fakeRegistry, context.Context) {
	tree, reg, ctx, _ := testWorldDB(t)
	return tree, reg, ctx
}

func testWorldDB(t testing.TB) (*orgs.Store, *fakeRegistry, context.Context, *sql.DB) {
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
	reg := &fakeRegistry{
		sites: map[devices.SiteID]devices.Site{
			"baihetan": {ID: "baihetan", Kind: "reservoir", OrgID: "qj", Lat: 27.2, Lon: 102.9,
				Levels: &devices.Levels{Dead: ptr(765.0), FloodLimit: ptr(785.0), Normal: ptr(825.0), DesignFlood: ptr(827.71), CheckFlood: ptr(832.34)}},
			"ys-street": {ID: "ys-street", Kind: "street", OrgID: "ys", Lat: 28, Lon: 103.6},
			"qj-port":   {ID: "qj-port", Kind: "port", OrgID: "qj", Lat: 26.9, Lon: 102.9},
		},
		devices: map[devices.ID]devices.Device{
			"bht-gauge": {ID: "bht-gauge", Name: "白鹤滩坝前水位计", Kind: "water_level", SiteID: "baihetan", OrgID: "qj", Lat: 27.2, Lon: 102.9},
			"ys-lamp":   {ID: "ys-lamp", Kind: "streetlight", SiteID: "ys-street", OrgID: "ys", Lat: 28, Lon: 103.6},
			"ys-gauge":  {ID: "ys-gauge", Kind: "water_level", SiteID: "ys-street", OrgID: "ys", Lat: 28, Lon: 103.6},
			"boat-1":    {ID: "boat-1", Kind: "vessel", SiteID: "qj-port", OrgID: "qj", Lat: 26.9, Lon: 102.9},
		},
	}
	return tree, reg, ctx, db
}

func TestRuleValidationNamesTheField(t *testing.T) {
	tree, reg, _ := testWorld(t)
	province, _ := tree.ScopeOf("yn")
	county, _ := tree.ScopeOf("qj")
	level := func(l Level, off float64) *Bound { return &Bound{Level: l, OffsetM: off} }
	num := func(v float64) *Bound { return &Bound{Value: v} }
	square := [][2]float64{{26.89, 102.89}, {26.89, 102.91}, {26.91, 102.91}, {26.91, 102.89}}
	for _, tc := range []struct {
		name  string
		scope orgs.Scope
		rule  Rule
		field string // "" = valid
	}{
		{"threshold on one device", province, Rule{ID: "r1", Kind: KindThreshold, DeviceID: "bht-gauge", Metric: "water_level_m", Above: num(790), Severity: Red}, ""},
		{"levels for every gauge", province, Rule{ID: "r2", Kind: KindThreshold, DeviceKind: "water_level", Metric: "water_level_m",
			Steps: []Step{{Severity: Orange, Above: level("flood_limit", 1)}, {Severity: Red, Above: level("design_flood", 0)}}, ClearBelow: level("flood_limit", 0)}, ""},
		{"rate", province, Rule{ID: "r3", Kind: KindRate, SiteID: "baihetan", Metric: "water_level_m", RisePerHour: ptr(0.5), Severity: Yellow}, ""},
		{"no data", province, Rule{ID: "r4", Kind: KindNoData, DeviceKind: "water_level", AfterS: 600, Severity: Blue}, ""},
		{"geofence", province, Rule{ID: "r5", Kind: KindGeofence, SiteID: "qj-port", On: "leave", Polygon: square, Severity: Yellow}, ""},
		{"bad id", province, Rule{ID: "R 1", Kind: KindNoData, DeviceKind: "water_level", AfterS: 60, Severity: Blue}, "id"},
		{"unknown kind", province, Rule{ID: "r", Kind: "magic", DeviceKind: "water_level", Severity: Blue}, "kind"},
		{"unknown severity", province, Rule{ID: "r", Kind: KindNoData, DeviceKind: "water_level", AfterS: 60, Severity: "purple"}, "severity"},
		{"unknown step severity", province, Rule{ID: "r", Kind: KindThreshold, DeviceID: "bht-gauge", Metric: "m", Above: num(1), Severity: "purple"}, "severity"},
		{"no selector", province, Rule{ID: "r", Kind: KindNoData, AfterS: 60, Severity: Blue}, "device_id"},
		{"unknown device", province, Rule{ID: "r", Kind: KindNoData, DeviceID: "nope", AfterS: 60, Severity: Blue}, "device_id"},
		{"unknown site", province, Rule{ID: "r", Kind: KindNoData, SiteID: "nope", AfterS: 60, Severity: Blue}, "site_id"},
		{"unknown device kind", province, Rule{ID: "r", Kind: KindNoData, DeviceKind: "toaster", AfterS: 60, Severity: Blue}, "device_kind"},
		{"device of another county", county, Rule{ID: "r", Kind: KindNoData, DeviceID: "ys-lamp", AfterS: 60, Severity: Blue}, "device_id"},
		{"org outside scope", county, Rule{ID: "r", OrgID: "ys", Kind: KindNoData, DeviceKind: "water_level", AfterS: 60, Severity: Blue}, "403"},
		{"unknown org", province, Rule{ID: "r", OrgID: "nowhere", Kind: KindNoData, DeviceKind: "water_level", AfterS: 60, Severity: Blue}, "org_id"},
		{"threshold without metric", province, Rule{ID: "r", Kind: KindThreshold, DeviceID: "bht-gauge", Above: num(1), Severity: Red}, "metric"},
		{"threshold without bound", province, Rule{ID: "r", Kind: KindThreshold, DeviceID: "bht-gauge", Metric: "m", Severity: Red}, "above"},
		{"clear above the bound loops", province, Rule{ID: "r", Kind: KindThreshold, DeviceID: "bht-gauge", Metric: "m", Above: num(790), ClearBelow: num(791), Severity: Red}, "clear_below"},
		{"clear on the wrong side", province, Rule{ID: "r", Kind: KindThreshold, DeviceID: "bht-gauge", Metric: "m", Above: num(790), ClearAbove: num(789), Severity: Red}, "clear_above"},
		{"level the site lacks", province, Rule{ID: "r", Kind: KindThreshold, SiteID: "ys-street", Metric: "m", Above: level("flood_limit", 0), Severity: Red}, "above"},
		{"unknown level", province, Rule{ID: "r", Kind: KindThreshold, DeviceID: "bht-gauge", Metric: "m", Above: level("sky", 0), Severity: Red}, "above.level"},
		{"steps out of order", province, Rule{ID: "r", Kind: KindThreshold, DeviceID: "bht-gauge", Metric: "m",
			Steps: []Step{{Severity: Red, Above: num(800)}, {Severity: Orange, Above: num(810)}}}, "steps[1].severity"},
		{"more severe step not further out", province, Rule{ID: "r", Kind: KindThreshold, DeviceID: "bht-gauge", Metric: "m",
			Steps: []Step{{Severity: Orange, Above: level("design_flood", 0)}, {Severity: Red, Above: level("flood_limit", 1)}}}, "steps[1].above"},
		{"steps both ways", province, Rule{ID: "r", Kind: KindThreshold, DeviceID: "bht-gauge", Metric: "m",
			Steps: []Step{{Severity: Orange, Above: num(800)}, {Severity: Red, Below: num(700)}}}, "steps[1].above"},
		{"steps and a bound", province, Rule{ID: "r", Kind: KindThreshold, DeviceID: "bht-gauge", Metric: "m", Above: num(1),
			Steps: []Step{{Severity: Red, Above: num(800)}}}, "above"},
		{"kind-wide levels that hold nowhere", province, Rule{ID: "r", Kind: KindThreshold, DeviceKind: "water_level", Metric: "m",
			Above: level("flood_limit", 0), ClearBelow: level("design_flood", 0), Severity: Red}, "clear_below"},
		{"rate that would never clear", province, Rule{ID: "r", Kind: KindRate, DeviceID: "bht-gauge", Metric: "m", RisePerHour: ptr(0.5), ClearPerHour: ptr(0.0), Severity: Red}, "clear_per_hour"},
		{"geofence without debounce", province, Rule{ID: "r", Kind: KindGeofence, DeviceID: "boat-1", On: "enter", Polygon: square, DebounceS: ptr(0), Severity: Yellow}, "debounce_s"},
		{"rate without rate", province, Rule{ID: "r", Kind: KindRate, DeviceID: "bht-gauge", Metric: "m", Severity: Red}, "rise_per_hour"},
		{"rate clear above rate loops", province, Rule{ID: "r", Kind: KindRate, DeviceID: "bht-gauge", Metric: "m", RisePerHour: ptr(0.5), ClearPerHour: ptr(0.6), Severity: Red}, "clear_per_hour"},
		{"rate window too short", province, Rule{ID: "r", Kind: KindRate, DeviceID: "bht-gauge", Metric: "m", RisePerHour: ptr(0.5), WindowS: 5, Severity: Red}, "window_s"},
		{"no data too soon", province, Rule{ID: "r", Kind: KindNoData, DeviceID: "bht-gauge", AfterS: 1, Severity: Blue}, "after_s"},
		{"geofence without on", province, Rule{ID: "r", Kind: KindGeofence, DeviceID: "boat-1", Polygon: square, Severity: Yellow}, "on"},
		{"geofence of a line", province, Rule{ID: "r", Kind: KindGeofence, DeviceID: "boat-1", On: "enter", Polygon: [][2]float64{{1, 1}, {2, 2}, {3, 3}}, Severity: Yellow}, "polygon"},
		{"geofence point off the earth", province, Rule{ID: "r", Kind: KindGeofence, DeviceID: "boat-1", On: "enter", Polygon: [][2]float64{{1, 1}, {2, 2}, {95, 3}}, Severity: Yellow}, "polygon[2]"},
		{"geofence with a metric", province, Rule{ID: "r", Kind: KindGeofence, DeviceID: "boat-1", On: "enter", Metric: "lat", Polygon: square, Severity: Yellow}, "metric"},
		{"threshold field on a rate rule", province, Rule{ID: "r", Kind: KindRate, DeviceID: "bht-gauge", Metric: "m", RisePerHour: ptr(0.5), Above: num(1), Severity: Red}, "above"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.rule
			r.normalize()
			err := r.validate(tree, tc.scope, reg)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if tc.field == "403" {
				if !errors.Is(err, orgs.ErrOutOfScope) {
					t.Fatalf("error %v, want out of scope", err)
				}
				return
			}
			var e *errclass.Error
			if !errors.As(err, &e) || e.Kind != errclass.Invalid || e.Field != tc.field {
				t.Fatalf("error %v, want one naming %q", err, tc.field)
			}
			if strings.TrimSpace(e.Message) == "" {
				t.Fatal("no reason given")
			}
		})
	}
}

func TestBoundJSON(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Bound
		bad  bool
	}{
		{`785.5`, Bound{Value: 785.5}, false},
		{`{"level": "flood_limit"}`, Bound{Level: "flood_limit"}, false},
		{`{"level": "flood_limit", "offset_m": -0.5}`, Bound{Level: "flood_limit", OffsetM: -0.5}, false},
		{`"785"`, Bound{}, true},
		{`{"level": "flood_limit", "extra": 1}`, Bound{}, true},
		{`{"offset_m": 1}`, Bound{}, true},
		{`[1]`, Bound{}, true},
	} {
		r, err := DecodeRule([]byte(`{"above": ` + tc.in + `}`))
		if tc.bad {
			if err == nil {
				t.Errorf("%s: accepted", tc.in)
			}
			continue
		}
		if err != nil || *r.Above != tc.want {
			t.Errorf("%s: %+v, %v", tc.in, r.Above, err)
		}
		// And back: a plain number stays a number.
		b, _ := r.Above.MarshalJSON()
		if back, _ := DecodeRule([]byte(`{"above": ` + string(b) + `}`)); *back.Above != tc.want {
			t.Errorf("%s: round trip %s", tc.in, b)
		}
	}
}

func TestRuleFiles(t *testing.T) {
	good := `rules:
  - id: levels
    kind: threshold
    device_kind: water_level
    metric: water_level_m
    steps:
      - {severity: orange, above: {level: flood_limit, offset_m: 1}}
      - {severity: red, above: {level: design_flood}}
`
	rules, err := parseRuleFile(RuleFile{Name: "a.yaml", Data: []byte(good)})
	if err != nil || len(rules) != 1 || rules[0].Steps[1].Above.Level != "design_flood" {
		t.Fatalf("%+v %v", rules, err)
	}
	for _, tc := range []struct{ name, data, want string }{
		{"typo in a rule", "rules:\n  - id: x\n    kind: no_data\n    aftr_s: 60\n", `unknown field "aftr_s"`},
		{"typo at the top", "rulez: []\n", "field rulez not found"},
		{"not YAML", "rules: [\n", "a.yaml"},
	} {
		if _, err := parseRuleFile(RuleFile{Name: "a.yaml", Data: []byte(tc.data)}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
