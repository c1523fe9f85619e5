package alerts

import (
	"testing"
)

// FuzzRule: whatever a client sends as a rule, decoding and validation
// answer with a rule or an error, never a panic; an accepted rule
// compiles for every device it selects and evaluates readings.
func FuzzRule(f *testing.F) {
	for _, seed := range []string{
		`{"id":"r","kind":"threshold","device_id":"bht-gauge","metric":"water_level_m","above":790,"severity":"red"}`,
		`{"id":"r","kind":"threshold","device_kind":"water_level","metric":"m","steps":[{"severity":"orange","above":{"level":"flood_limit","offset_m":1}},{"severity":"red","above":{"level":"design_flood"}}],"clear_below":{"level":"flood_limit"}}`,
		`{"id":"r","kind":"rate","site_id":"baihetan","metric":"m","rise_per_hour":0.5,"window_s":3600,"severity":"yellow"}`,
		`{"id":"r","kind":"no_data","device_kind":"water_level","after_s":600,"severity":"blue"}`,
		`{"id":"r","kind":"geofence","site_id":"qj-port","on":"leave","polygon":[[26.89,102.89],[26.89,102.91],[26.91,102.91]],"severity":"yellow"}`,
		`{"id":"r","kind":"threshold","device_id":"bht-gauge","metric":"m","below":{"level":"dead","offset_m":-1e308},"clear_above":1e308,"severity":"red"}`,
		`{"above":NaN}`, `{"polygon":[[1]]}`, `[]`, `{"steps":[{}]}`,
	} {
		f.Add([]byte(seed))
	}
	tree, reg, _ := testWorld(f)
	scope, _ := tree.ScopeOf("yn")
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeRule(data)
		if err != nil {
			return
		}
		r.normalize()
		if err := r.validate(tree, scope, reg); err != nil {
			return
		}
		for _, d := range reg.devices {
			site := reg.sites[d.SiteID]
			p := newPair()
			switch r.Kind {
			case KindThreshold:
				thr, err := r.compileThreshold(site.Levels)
				if err != nil {
					continue
				}
				p.thr = thr
				for i, v := range []float64{-1e9, 0, 785, 1e9} {
					r.evalThreshold(p, v, int64(i)*1000, int64(i)*1000)
				}
			case KindRate:
				for i, v := range []float64{0, 1, 2, 3} {
					r.evalRate(p, v, int64(i)*1_000_000)
				}
			case KindGeofence:
				for i, pos := range [][2]float64{{26.9, 102.9}, {0, 0}} {
					r.evalGeofence(p, "lat", pos[0], int64(i)*1000, int64(i)*1000)
					r.evalGeofence(p, "lon", pos[1], int64(i)*1000, int64(i)*1000)
				}
			}
		}
	})
}

// FuzzRuleFile: a rule file is parsed or refused with an error naming the
// file, never a panic.
func FuzzRuleFile(f *testing.F) {
	for _, seed := range []string{
		"rules:\n  - id: a\n    kind: no_data\n    device_kind: water_level\n    after_s: 60\n    severity: blue\n",
		"rules:\n  - {id: b, kind: threshold, device_id: x, metric: m, above: {level: flood_limit}, severity: red}\n",
		"rules: []\n", "rules: 5\n", "rules:\n  - [1, 2]\n", "&a [*a]\n", "",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = parseRuleFile(RuleFile{Name: "f.yaml", Data: data})
	})
}
