package httpapi

import (
	"os"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"go.yaml.in/yaml/v3"
)

// docs/openapi.yaml documents every route the router serves, and nothing
// it does not.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	data, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(data, &spec); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	documented := map[string]bool{}
	for path, ops := range spec.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	e := newEnv(t)
	served := map[string]bool{}
	for _, r := range e.api.(*gin.Engine).Routes() {
		parts := strings.Split(r.Path, "/")
		for i, p := range parts {
			if strings.HasPrefix(p, ":") || strings.HasPrefix(p, "*") {
				parts[i] = "{" + p[1:] + "}"
			}
		}
		key := r.Method + " " + strings.Join(parts, "/")
		served[key] = true
		if !documented[key] {
			t.Errorf("%s is served but not in docs/openapi.yaml", key)
		}
	}
	for key := range documented {
		if !served[key] {
			t.Errorf("%s is in docs/openapi.yaml but not served", key)
		}
	}
}
