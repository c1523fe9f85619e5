// Package alerts turns telemetry into alerts: rules (from the API and from
// YAML files), their evaluation on the live stream of points, alerts with
// their lifecycle (active, acknowledged, dispatched, resolved, closed), and
// the cameras that show each alert (its feeds).
//
// It imports no transport: the HTTP layer calls it, the ingest pipeline
// hands it points, and the server routes its changes to the events stream.
package alerts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/lookout-cc/lookout/devices"
	"github.com/lookout-cc/lookout/internal/errclass"
	"github.com/lookout-cc/lookout/internal/orgs"
)

// Severity is one of the four levels of China's emergency warning scheme.
type Severity string

// The severities, least to most severe.
const (
	Blue   Severity = "blue"   // IV, 一般
	Yellow Severity = "yellow" // III, 较重
	Orange Severity = "orange" // II, 严重
	Red    Severity = "red"    // I, 特别严重
)

// Severities lists them, least severe first.
var Severities = []Severity{Blue, Yellow, Orange, Red}

// Rank orders severities: blue 1 to red 4; 0 for anything else.
func (s Severity) Rank() int { return slices.Index(Severities, s) + 1 }

// Rule kinds.
const (
	KindThreshold = "threshold"
	KindRate      = "rate"
	KindNoData    = "no_data"
	KindGeofence  = "geofence"
)

// Kinds lists the rule kinds.
var Kinds = []string{KindThreshold, KindRate, KindNoData, KindGeofence}

// Level names a reservoir's characteristic water level (devices.Levels).
type Level string

// The characteristic levels a bound may refer to.
var Levels = []Level{"dead", "flood_limit", "normal", "design_flood", "check_flood"}

// Bound is a threshold: a number, or a reservoir's characteristic level
// plus an offset, so that one rule serves every reservoir. In JSON it is
// either 1720.5 or {"level": "flood_limit", "offset_m": 1}.
type Bound struct {
	Value   float64 `json:"value,omitempty"`
	Level   Level   `json:"level,omitempty"`
	OffsetM float64 `json:"offset_m,omitempty"`
}

// MarshalJSON writes a plain number as a number.
func (b Bound) MarshalJSON() ([]byte, error) {
	if b.Level == "" {
		return json.Marshal(b.Value)
	}
	type object struct {
		Level   Level   `json:"level"`
		OffsetM float64 `json:"offset_m,omitempty"`
	}
	return json.Marshal(object{b.Level, b.OffsetM})
}

// JSONShape describes a bound in decoding errors.
func (*Bound) JSONShape() string {
	return `a number or {"level": "flood_limit", "offset_m": 1}`
}

// UnmarshalJSON reads a number or a level object (unknown keys refused).
// A wrong shape is a *json.UnmarshalTypeError, so that the decoder names
// the field.
func (b *Bound) UnmarshalJSON(data []byte) error {
	wrong := &json.UnmarshalTypeError{Value: "bound", Type: reflect.TypeFor[Bound]()}
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] != '{' {
		var v float64
		if err := json.Unmarshal(data, &v); err != nil {
			return wrong
		}
		*b = Bound{Value: v}
		return nil
	}
	var o struct {
		Level   Level    `json:"level"`
		OffsetM *float64 `json:"offset_m"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil || o.Level == "" {
		return wrong
	}
	*b = Bound{Level: o.Level}
	if o.OffsetM != nil {
		b.OffsetM = *o.OffsetM
	}
	return nil
}

// resolve gives the bound's height for a site's levels; ok is false when
// the bound refers to a level the site does not have.
func (b Bound) resolve(l *devices.Levels) (float64, bool) {
	if b.Level == "" {
		return b.Value, true
	}
	if l == nil {
		return 0, false
	}
	var v *float64
	switch b.Level {
	case "dead":
		v = l.Dead
	case "flood_limit":
		v = l.FloodLimit
	case "normal":
		v = l.Normal
	case "design_flood":
		v = l.DesignFlood
	case "check_flood":
		v = l.CheckFlood
	}
	if v == nil {
		return 0, false
	}
	return *v + b.OffsetM, true
}

func (b Bound) String() string {
	switch {
	case b.Level == "":
		return fmt.Sprintf("%g", b.Value)
	case b.OffsetM == 0:
		return string(b.Level)
	default:
		return fmt.Sprintf("%s%+g m", b.Level, b.OffsetM)
	}
}

// Step is one severity of a threshold rule: the alert is at this severity
// while the value is beyond its bound. Steps let one alert escalate (for
// example orange above the flood-limit level plus 1 m, red above the design
// flood level) instead of raising a second alert.
type Step struct {
	Severity Severity `json:"severity"`
	Above    *Bound   `json:"above,omitempty"`
	Below    *Bound   `json:"below,omitempty"`
}

// Rule is an alert rule. It belongs to an organisation and applies to the
// devices it selects inside that organisation's subtree: one device, every
// device of a site, or every device of a kind (optionally of one site).
type Rule struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	OrgID    orgs.ID  `json:"org_id"`
	Kind     string   `json:"kind"`
	Severity Severity `json:"severity,omitempty"`
	Disabled bool     `json:"disabled,omitempty"`

	DeviceID   devices.ID     `json:"device_id,omitempty"`
	SiteID     devices.SiteID `json:"site_id,omitempty"`
	DeviceKind string         `json:"device_kind,omitempty"`
	Metric     string         `json:"metric,omitempty"`

	// threshold: above or below (or steps), cleared past clear_below or
	// clear_above (hysteresis; default the bound itself), after holding
	// for_s seconds.
	Above      *Bound `json:"above,omitempty"`
	Below      *Bound `json:"below,omitempty"`
	Steps      []Step `json:"steps,omitempty"`
	ClearBelow *Bound `json:"clear_below,omitempty"`
	ClearAbove *Bound `json:"clear_above,omitempty"`
	ForS       int    `json:"for_s,omitempty"`

	// rate: a rise (or fall) faster than this many units per hour over
	// window_s; cleared below clear_per_hour (default the same rate).
	RisePerHour  *float64 `json:"rise_per_hour,omitempty"`
	FallPerHour  *float64 `json:"fall_per_hour,omitempty"`
	ClearPerHour *float64 `json:"clear_per_hour,omitempty"`
	WindowS      int      `json:"window_s,omitempty"`

	// no_data: nothing from the device (of metric, when given) for after_s.
	AfterS int `json:"after_s,omitempty"`

	// geofence: a polygon of [lat, lon]; on "enter" or "leave", once the
	// vessel has stayed on the new side for debounce_s.
	Polygon   [][2]float64 `json:"polygon,omitempty"`
	On        string       `json:"on,omitempty"`
	DebounceS *int         `json:"debounce_s,omitempty"`

	// Source is "api", or "file:<name>" for rules loaded from configs/;
	// those are changed by editing the file.
	Source    string    `json:"source"`
	CreatedBy string    `json:"created_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	// oneStep: given as above or below with severity, so errors name
	// those fields rather than steps[0].
	oneStep bool
}

// Limits of rule fields.
const (
	maxForS       = 24 * 3600
	maxWindowS    = 7 * 24 * 3600
	minWindowS    = 60
	minAfterS     = 10
	maxAfterS     = 30 * 24 * 3600
	maxDebounceS  = 3600
	minDebounceS  = 5
	maxPolygon    = 1000
	defaultWindow = 3600
	// defaultDebounceS: a vessel must stay on the new side of a fence
	// this long; AIS positions jitter by tens of metres at a quay.
	defaultDebounceS = 30
)

// GeofenceMetrics are the metrics a geofence rule reads (a vessel's
// position, as the AIS decoder and JSON positions give it).
var GeofenceMetrics = [2]string{"lat", "lon"}

// Lookup is what rules need to know of devices and sites, without scope
// (each rule is scoped by its own organisation).
type Lookup interface {
	Lookup(id devices.ID) (devices.Device, bool)
	SiteByID(id devices.SiteID) (devices.Site, bool)
	SiteDevices(id devices.SiteID) []devices.Device
	DevicesOfKind(kind string) []devices.Device
}

// normalize fills in defaults and folds the one-step form (above or below
// with severity) into steps, so that evaluation sees steps only.
func (r *Rule) normalize() {
	r.Name = strings.TrimSpace(r.Name)
	if r.Name == "" {
		r.Name = r.ID
	}
	if r.Kind == KindRate && r.WindowS == 0 {
		r.WindowS = defaultWindow
	}
	if r.Kind == KindGeofence && r.DebounceS == nil {
		d := defaultDebounceS
		r.DebounceS = &d
	}
	if r.Kind == KindThreshold && len(r.Steps) == 0 && (r.Above != nil || r.Below != nil) {
		r.Steps = []Step{{Severity: r.Severity, Above: r.Above, Below: r.Below}}
		r.Above, r.Below, r.oneStep = nil, nil, true
	}
	if r.Kind == KindThreshold && len(r.Steps) > 0 {
		r.Severity = "" // each step has its own
	}
}

// validate checks a normalized rule on its own and against what exists:
// each error names the field. scope is the caller's; the rule's
// organisation must be inside it, and what the rule selects inside the
// rule's organisation.
func (r *Rule) validate(tree *orgs.Store, scope orgs.Scope, look Lookup) error {
	if !orgs.IDPattern.MatchString(r.ID) {
		return errclass.Invalidf("id", "must be 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit")
	}
	if len(r.Name) > 200 {
		return errclass.Invalidf("name", "at most 200 characters")
	}
	if !slices.Contains(Kinds, r.Kind) {
		return errclass.Invalidf("kind", "must be one of %s", strings.Join(Kinds, ", "))
	}
	if r.OrgID == "" {
		r.OrgID = scope.Root()
	}
	if err := tree.CheckInScope(scope, r.OrgID, "org_id"); err != nil {
		return err
	}
	ruleScope, err := tree.ScopeOf(r.OrgID)
	if err != nil {
		return errclass.Invalidf("org_id", "no such organisation")
	}
	if err := r.checkSelector(tree, ruleScope, look); err != nil {
		return err
	}
	switch r.Kind {
	case KindThreshold:
		err = r.checkThreshold(tree, ruleScope, look)
	case KindRate:
		err = r.checkRate()
	case KindNoData:
		err = r.checkNoData()
	case KindGeofence:
		err = r.checkGeofence()
	}
	if err != nil {
		return err
	}
	if r.Kind != KindThreshold {
		if r.Severity.Rank() == 0 {
			return errclass.Invalidf("severity", "must be one of blue, yellow, orange, red")
		}
		for _, f := range []struct {
			name string
			set  bool
		}{{"above", r.Above != nil}, {"below", r.Below != nil}, {"steps", len(r.Steps) > 0}, {"clear_below", r.ClearBelow != nil}, {"clear_above", r.ClearAbove != nil}, {"for_s", r.ForS != 0}} {
			if f.set {
				return errclass.Invalidf(f.name, "belongs to threshold rules, not %s", r.Kind)
			}
		}
	}
	if r.Kind != KindRate && (r.RisePerHour != nil || r.FallPerHour != nil || r.ClearPerHour != nil || r.WindowS != 0) {
		return errclass.Invalidf("window_s", "rise_per_hour, fall_per_hour, clear_per_hour and window_s belong to rate rules")
	}
	if r.Kind != KindNoData && r.AfterS != 0 {
		return errclass.Invalidf("after_s", "belongs to no_data rules")
	}
	if r.Kind != KindGeofence && (len(r.Polygon) > 0 || r.On != "" || r.DebounceS != nil) {
		return errclass.Invalidf("polygon", "polygon, on and debounce_s belong to geofence rules")
	}
	return nil
}

func (r *Rule) checkSelector(tree *orgs.Store, ruleScope orgs.Scope, look Lookup) error {
	switch {
	case r.DeviceID != "" && (r.SiteID != "" || r.DeviceKind != ""):
		return errclass.Invalidf("device_id", "a rule for one device names no site_id or device_kind")
	case r.DeviceID != "":
		d, ok := look.Lookup(r.DeviceID)
		if !ok {
			return errclass.Invalidf("device_id", "no device %q", r.DeviceID)
		}
		if !tree.Contains(ruleScope, d.OrgID) {
			return errclass.Invalidf("device_id", "device %q is outside the rule's organisation %s", r.DeviceID, r.OrgID)
		}
	case r.SiteID != "":
		s, ok := look.SiteByID(r.SiteID)
		if !ok {
			return errclass.Invalidf("site_id", "no site %q", r.SiteID)
		}
		if !tree.Contains(ruleScope, s.OrgID) {
			return errclass.Invalidf("site_id", "site %q is outside the rule's organisation %s", r.SiteID, r.OrgID)
		}
	case r.DeviceKind == "":
		return errclass.Invalidf("device_id", "give device_id, site_id or device_kind: the devices the rule watches")
	}
	if r.DeviceKind != "" && !slices.Contains(devices.Kinds, r.DeviceKind) {
		return errclass.Invalidf("device_kind", "must be one of %s", strings.Join(devices.Kinds, ", "))
	}
	if r.Kind != KindNoData && r.Kind != KindGeofence {
		if r.Metric == "" || len(r.Metric) > 64 {
			return errclass.Invalidf("metric", "is required: the metric the rule reads, such as water_level_m")
		}
	}
	if r.Kind == KindGeofence && r.Metric != "" {
		return errclass.Invalidf("metric", "a geofence reads the lat and lon metrics; give no metric")
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func (b *Bound) check(field string) error {
	if b == nil {
		return nil
	}
	if !finite(b.Value) || !finite(b.OffsetM) {
		return errclass.Invalidf(field, "must be a finite number")
	}
	if b.Level != "" && !slices.Contains(Levels, b.Level) {
		return errclass.Invalidf(field+".level", "must be one of dead, flood_limit, normal, design_flood, check_flood")
	}
	return nil
}

// checkThreshold: steps all one way, severities rising with their bounds,
// and a clear bound on the normal side of the lowest step, so that the rule
// can neither raise and clear on the same value (a loop) nor never clear.
func (r *Rule) checkThreshold(tree *orgs.Store, ruleScope orgs.Scope, look Lookup) error {
	if len(r.Steps) == 0 {
		return errclass.Invalidf("above", "give above or below (with severity), or steps")
	}
	if r.Above != nil || r.Below != nil {
		return errclass.Invalidf("above", "give above or below (with severity), or steps, not both")
	}
	if len(r.Steps) > len(Severities) {
		return errclass.Invalidf("steps", "at most one step per severity")
	}
	field := func(i int, name string) string {
		if r.oneStep {
			return name
		}
		return fmt.Sprintf("steps[%d].%s", i, name)
	}
	up := r.Steps[0].Above != nil
	for i, s := range r.Steps {
		if s.Severity.Rank() == 0 {
			return errclass.Invalidf(field(i, "severity"), "must be one of blue, yellow, orange, red")
		}
		if (s.Above == nil) == (s.Below == nil) {
			return errclass.Invalidf(field(i, "above"), "give above or below, not both")
		}
		if (s.Above != nil) != up {
			return errclass.Invalidf(field(i, "above"), "every step of a rule goes the same way (all above, or all below)")
		}
		b, name := s.Above, "above"
		if !up {
			b, name = s.Below, "below"
		}
		if err := b.check(field(i, name)); err != nil {
			return err
		}
		if i > 0 && s.Severity.Rank() <= r.Steps[i-1].Severity.Rank() {
			return errclass.Invalidf(field(i, "severity"), "steps go from the least to the most severe")
		}
	}
	if up && r.ClearAbove != nil {
		return errclass.Invalidf("clear_above", "an above rule clears below its bound: use clear_below")
	}
	if !up && r.ClearBelow != nil {
		return errclass.Invalidf("clear_below", "a below rule clears above its bound: use clear_above")
	}
	if err := r.ClearBelow.check("clear_below"); err != nil {
		return err
	}
	if err := r.ClearAbove.check("clear_above"); err != nil {
		return err
	}
	if r.ForS < 0 || r.ForS > maxForS {
		return errclass.Invalidf("for_s", "must be 0 to %d seconds", maxForS)
	}
	// Every device the rule selects now must resolve every bound, and the
	// steps and the clear bound must be in order there; a rule for a kind
	// of device applies where the levels exist, so it must compile for at
	// least one of those there are (none yet: it waits for them).
	selected := r.selected(tree, ruleScope, look)
	var firstErr error
	compiled := 0
	for _, d := range selected {
		site, _ := look.SiteByID(d.SiteID)
		if _, err := r.compileThreshold(site.Levels); err != nil {
			// A bound out of order says more than a level a site lacks.
			var e *errclass.Error
			if firstErr == nil || (errors.As(firstErr, &e) && e.Code == "missing_level") {
				firstErr = err
			}
			continue
		}
		compiled++
	}
	kindWide := r.DeviceKind != "" && r.DeviceID == "" && r.SiteID == ""
	if firstErr != nil && (!kindWide || compiled == 0) {
		return firstErr
	}
	return nil
}

// selected lists the devices inside the rule's organisation that the rule
// selects now (for validation; the engine matches devices as their points
// arrive).
func (r *Rule) selected(tree *orgs.Store, ruleScope orgs.Scope, look Lookup) []devices.Device {
	var ds []devices.Device
	switch {
	case r.DeviceID != "":
		if d, ok := look.Lookup(r.DeviceID); ok {
			ds = []devices.Device{d}
		}
	case r.SiteID != "":
		ds = look.SiteDevices(r.SiteID)
	default:
		ds = look.DevicesOfKind(r.DeviceKind)
	}
	out := ds[:0:0]
	for _, d := range ds {
		if (r.DeviceKind == "" || d.Kind == r.DeviceKind) && tree.Contains(ruleScope, d.OrgID) {
			out = append(out, d)
		}
	}
	return out
}

func (r *Rule) checkRate() error {
	if (r.RisePerHour == nil) == (r.FallPerHour == nil) {
		return errclass.Invalidf("rise_per_hour", "give rise_per_hour or fall_per_hour")
	}
	rate, field := r.RisePerHour, "rise_per_hour"
	if rate == nil {
		rate, field = r.FallPerHour, "fall_per_hour"
	}
	if !finite(*rate) || *rate <= 0 {
		return errclass.Invalidf(field, "must be a positive number of units per hour")
	}
	if r.ClearPerHour != nil && (!finite(*r.ClearPerHour) || *r.ClearPerHour <= 0 || *r.ClearPerHour > *rate) {
		return errclass.Invalidf("clear_per_hour", "must be more than 0 (a level that rises and then stays would never clear) and at most %s (%g): a clear rate above the alert's would raise and clear on the same reading", field, *rate)
	}
	if r.WindowS < minWindowS || r.WindowS > maxWindowS {
		return errclass.Invalidf("window_s", "must be %d to %d seconds", minWindowS, maxWindowS)
	}
	return nil
}

func (r *Rule) checkNoData() error {
	if r.AfterS < minAfterS || r.AfterS > maxAfterS {
		return errclass.Invalidf("after_s", "must be %d to %d seconds", minAfterS, maxAfterS)
	}
	return nil
}

func (r *Rule) checkGeofence() error {
	if r.On != "enter" && r.On != "leave" {
		return errclass.Invalidf("on", "must be enter or leave")
	}
	if len(r.Polygon) < 3 || len(r.Polygon) > maxPolygon {
		return errclass.Invalidf("polygon", "must have 3 to %d points [lat, lon]", maxPolygon)
	}
	for i, p := range r.Polygon {
		if !finite(p[0]) || !finite(p[1]) || p[0] < -90 || p[0] > 90 || p[1] < -180 || p[1] > 180 {
			return errclass.Invalidf(fmt.Sprintf("polygon[%d]", i), "must be [lat, lon] within -90..90 and -180..180")
		}
	}
	if polygonArea(r.Polygon) == 0 {
		return errclass.Invalidf("polygon", "encloses no area")
	}
	if *r.DebounceS < minDebounceS || *r.DebounceS > maxDebounceS {
		return errclass.Invalidf("debounce_s", "must be %d to %d seconds: positions jitter, and a fence without debounce raises and clears on every wobble", minDebounceS, maxDebounceS)
	}
	return nil
}
