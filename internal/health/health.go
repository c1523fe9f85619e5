// Package health collects the liveness checks of the server's components, so
// that GET /healthz can say which of them are up and name the ones that are
// not.
package health

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Check reports whether a component is up; a non-nil error says why not.
type Check func(ctx context.Context) error

// Registry holds the checks of the running components.
type Registry struct {
	mu     sync.RWMutex
	checks map[string]Check
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{checks: map[string]Check{}} }

// Add registers (or replaces) the check of a component.
func (r *Registry) Add(name string, c Check) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks[name] = c
}

// Remove drops the check of a component that has stopped on purpose.
func (r *Registry) Remove(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.checks, name)
}

// Status is one component's state.
type Status struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// CheckTimeout bounds each check, so a hung component reads as down instead
// of hanging /healthz.
const CheckTimeout = 2 * time.Second

// Run runs every check in parallel and returns their states sorted by name,
// and whether all are up.
func (r *Registry) Run(ctx context.Context) ([]Status, bool) {
	r.mu.RLock()
	names := make([]string, 0, len(r.checks))
	checks := make([]Check, 0, len(r.checks))
	for n, c := range r.checks {
		names = append(names, n)
		checks = append(checks, c)
	}
	r.mu.RUnlock()

	out := make([]Status, len(names))
	var wg sync.WaitGroup
	for i := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
			defer cancel()
			out[i] = Status{Name: names[i], OK: true}
			if err := checks[i](cctx); err != nil {
				out[i] = Status{Name: names[i], Error: err.Error()}
			}
		}()
	}
	wg.Wait()
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	all := true
	for _, s := range out {
		all = all && s.OK
	}
	return out, all
}
