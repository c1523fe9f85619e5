package devices

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"

	"github.com/lookout-cc/lookout/internal/errclass"
)

// paramSpec is one parameter of a command.
type paramSpec struct {
	kind     string // bool, int, string
	min, max int
	pattern  *regexp.Regexp
	required bool
	// reports is the telemetry metric in which the device reports the
	// state this parameter sets (booleans as 1 and 0), if any: the console
	// shows the desired value next to the reported one.
	reports string
}

// Catalogue lists the commands each kind of device takes and their
// parameters. A command not listed for the device's kind is refused.
var Catalogue = map[string]map[string]map[string]paramSpec{
	"streetlight": {
		"set_power":      {"on": {kind: "bool", required: true, reports: "on"}},
		"set_brightness": {"level": {kind: "int", min: 0, max: 100, required: true, reports: "brightness"}},
		// on_at/off_at: local "HH:MM"; brightness while on.
		"set_schedule": {
			"on_at":      {kind: "string", pattern: hhmm, required: true},
			"off_at":     {kind: "string", pattern: hhmm, required: true},
			"brightness": {kind: "int", min: 0, max: 100},
		},
	},
	"generic": {
		"reboot": {},
	},
}

var hhmm = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)

// CheckCommand validates a command against the catalogue of a kind and
// names the offending field.
func CheckCommand(kind, name string, params json.RawMessage) error {
	cmds := Catalogue[kind]
	spec, ok := cmds[name]
	if !ok {
		names := make([]string, 0, len(cmds))
		for n := range cmds {
			names = append(names, n)
		}
		sort.Strings(names)
		if len(names) == 0 {
			return errclass.Invalidf("name", "a %s takes no commands", kind)
		}
		return errclass.Invalidf("name", "unknown command for a %s; known: %v", kind, names)
	}
	var got map[string]json.RawMessage
	if len(params) > 0 && string(params) != "null" {
		if err := json.Unmarshal(params, &got); err != nil {
			return errclass.Invalidf("params", "must be an object")
		}
	}
	for p := range got {
		if _, known := spec[p]; !known {
			return errclass.Invalidf("params."+p, "%s takes no parameter %q", name, p)
		}
	}
	for p, s := range spec {
		raw, present := got[p]
		if !present {
			if s.required {
				return errclass.Invalidf("params."+p, "is required")
			}
			continue
		}
		field := "params." + p
		switch s.kind {
		case "bool":
			var b bool
			if json.Unmarshal(raw, &b) != nil {
				return errclass.Invalidf(field, "must be true or false")
			}
		case "int":
			var n int
			if json.Unmarshal(raw, &n) != nil {
				return errclass.Invalidf(field, "must be a whole number")
			}
			if n < s.min || n > s.max {
				return errclass.Invalidf(field, "must be %d to %d, got %d", s.min, s.max, n)
			}
		case "string":
			var v string
			if json.Unmarshal(raw, &v) != nil {
				return errclass.Invalidf(field, "must be a string")
			}
			if s.pattern != nil && !s.pattern.MatchString(v) {
				return errclass.Invalidf(field, "must look like %s", s.pattern)
			}
		default:
			return fmt.Errorf("catalogue: unknown parameter kind %q", s.kind)
		}
	}
	return nil
}
