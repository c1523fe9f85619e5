package alerts

import (
	"fmt"

	"github.com/lookout-cc/lookout/devices"
	"github.com/lookout-cc/lookout/internal/errclass"
)

// threshold is a threshold rule resolved for one device: its bounds as
// heights, from the least to the most severe step.
type threshold struct {
	up    bool // alerts above its bounds; else below
	steps []thresholdStep
	// clear: the alert clears once the value is past it, back on the
	// normal side (below it for an up rule).
	clear float64
}

type thresholdStep struct {
	severity Severity
	bound    float64
}

// compileThreshold resolves a threshold rule's bounds with a site's
// levels. It fails (naming the field) when a bound refers to a level the
// site lacks, when a more severe step is not further out, or when the
// clear bound is past the lowest step, which would raise and clear the
// alert on the same reading.
func (r *Rule) compileThreshold(levels *devices.Levels) (threshold, error) {
	var t threshold
	t.up = r.Steps[0].Above != nil
	field := func(i int, name string) string {
		if r.oneStep {
			return name
		}
		return fmt.Sprintf("steps[%d].%s", i, name)
	}
	for i, s := range r.Steps {
		b, name := s.Above, "above"
		if !t.up {
			b, name = s.Below, "below"
		}
		v, ok := b.resolve(levels)
		if !ok {
			return t, missingLevel(field(i, name), b.Level)
		}
		if i > 0 {
			prev := t.steps[i-1].bound
			if (t.up && v <= prev) || (!t.up && v >= prev) {
				return t, errclass.Invalidf(field(i, name), "a more severe step must be further out than the one before (%s is %g, the step before %g)", b, v, prev)
			}
		}
		t.steps = append(t.steps, thresholdStep{s.Severity, v})
	}
	t.clear = t.steps[0].bound
	clear, name := r.ClearBelow, "clear_below"
	if !t.up {
		clear, name = r.ClearAbove, "clear_above"
	}
	if clear != nil {
		v, ok := clear.resolve(levels)
		if !ok {
			return t, missingLevel(name, clear.Level)
		}
		if (t.up && v > t.clear) || (!t.up && v < t.clear) {
			return t, errclass.Invalidf(name, "%s (%g) is past the alert's own bound (%g): the alert would raise and clear on the same reading", name, v, t.clear)
		}
		t.clear = v
	}
	return t, nil
}

// missingLevel: a bound refers to a level the device's site does not have.
func missingLevel(field string, l Level) error {
	return &errclass.Error{Kind: errclass.Invalid, Code: "missing_level", Field: field,
		Message: fmt.Sprintf("refers to the %s level, which a selected device's site does not have", l)}
}

// severityAt is the most severe step the value is beyond, or "".
func (t threshold) severityAt(v float64) Severity {
	var sev Severity
	for _, s := range t.steps {
		if (t.up && v > s.bound) || (!t.up && v < s.bound) {
			sev = s.severity
		}
	}
	return sev
}

// cleared says whether the value is back on the normal side of the clear
// bound.
func (t threshold) cleared(v float64) bool {
	if t.up {
		return v < t.clear
	}
	return v > t.clear
}

// boundOf is the bound of a severity's step.
func (t threshold) boundOf(sev Severity) float64 {
	for _, s := range t.steps {
		if s.severity == sev {
			return s.bound
		}
	}
	return t.steps[0].bound
}
