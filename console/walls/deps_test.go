package walls

import (
	"os/exec"
	"strings"
	"testing"
)

// Walls are domain code: HTTP stays in console/httpapi, and the package
// knows alerts only through their events and the Alert type.
func TestNoTransportImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	banned := map[string]string{
		"github.com/gin-gonic/":                         "HTTP belongs in console/httpapi",
		"github.com/lookout-cc/lookout/console/httpapi": "the HTTP layer imports walls, not the other way",
		"github.com/eclipse/paho":                       "MQTT belongs in ingest/",
		"github.com/pion/":                              "WebRTC belongs in sfu/",
	}
	for _, dep := range strings.Fields(string(out)) {
		for prefix, why := range banned {
			if strings.HasPrefix(dep, prefix) {
				t.Errorf("walls imports %s: %s", dep, why)
			}
		}
	}
}
