package configs_test

import (
	"io/fs"
	"testing"

	"github.com/lookout-cc/lookout/configs"
	"github.com/lookout-cc/lookout/internal/config"
)

// The shipped files load and validate as they are, with no environment.
func TestShippedConfigsLoad(t *testing.T) {
	tests := []struct {
		file     string
		mqtt     string
		tsdb     string
		demo     bool
		rootOrg  string
		secretIn string
	}{
		{file: "lookout.yaml", mqtt: "embedded", tsdb: "embedded", demo: true, rootOrg: "cn"},
		{file: "production.yaml", mqtt: "external", tsdb: "influxdb", demo: false, rootOrg: "yn", secretIn: "change-me-broker-password"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := fs.ReadFile(configs.Files, tt.file)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse(data, func(string) string { return "" })
			if err != nil {
				t.Fatal(err)
			}
			if cfg.MQTT.Mode != tt.mqtt || cfg.TSDB.Backend != tt.tsdb || cfg.Demo.Enabled != tt.demo || cfg.Bootstrap.RootOrg.ID != tt.rootOrg {
				t.Fatalf("unexpected values: %+v", cfg)
			}
			if tt.secretIn != "" && cfg.MQTT.External.Password.Reveal() != tt.secretIn {
				t.Fatalf("broker password not read")
			}
		})
	}
}
