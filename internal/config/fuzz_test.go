package config

import (
	"os"
	"strings"
	"testing"
)

// Parse never panics, and whatever it accepts validates and carries no
// unknown key.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"../../configs/lookout.yaml", "../../configs/production.yaml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("http:\n  addr: 127.0.0.1:1\n"))
	f.Add([]byte("auth: {token_ttl: 5m}\n"))
	f.Add([]byte("a: &x {b: *x}\n"))
	f.Add([]byte("- 1\n- 2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, noEnv)
		if err != nil {
			if strings.Contains(err.Error(), "\n") && !strings.Contains(err.Error(), "invalid YAML") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted config does not validate: %v", err)
		}
	})
}
