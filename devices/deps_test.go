package devices

import (
	"os/exec"
	"strings"
	"testing"
)

// The registry is domain code: no transport library may creep into it, so
// that HTTP, MQTT and WebRTC stay at the edges.
func TestNoTransportImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	banned := map[string]string{
		"github.com/gin-gonic/":                 "HTTP belongs in console/httpapi",
		"github.com/eclipse/paho":               "MQTT clients belong in ingest/mqtt",
		"github.com/mochi-mqtt/":                "the broker belongs in ingest/broker",
		"github.com/pion/":                      "WebRTC belongs in sfu/",
		"github.com/bluenviron/":                "RTSP belongs in ingest/",
		"github.com/influxdata/":                "the time-series store belongs in ingest/tsdb",
		"github.com/lookout-cc/lookout/console": "devices/ must not depend on the console",
	}
	for _, dep := range strings.Fields(string(out)) {
		for prefix, why := range banned {
			if strings.HasPrefix(dep, prefix) {
				t.Errorf("devices imports %s: %s", dep, why)
			}
		}
	}
}
