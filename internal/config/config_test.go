package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func noEnv(string) string { return "" }

func TestParseErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // substring of the error
	}{
		{"unknown top-level key", "htp:\n  addr: 1.2.3.4:80\n", "'htp' is not a known key (line 1)"},
		{"unknown nested key", "http:\n  adr: 127.0.0.1:80\n", "'http.adr' is not a known key (line 2)"},
		{"unknown deep key", "bootstrap:\n  root_org:\n    code: x\n", "'bootstrap.root_org.code' is not a known key"},
		{"bad duration", "auth:\n  token_ttl: 12 hours\n", "'auth.token_ttl' must be a duration"},
		{"bare number duration", "http:\n  shutdown_timeout: 5\n", "'http.shutdown_timeout' must be a duration"},
		{"wrong type", "http:\n  max_body_bytes: lots\n", "'http.max_body_bytes' must be of type int64"},
		{"bool wrong type", "demo:\n  enabled: maybe\n", "'demo.enabled' must be of type bool"},
		{"mapping expected", "http: 8080\n", "'http' must be a mapping"},
		{"duplicate key", "log:\n  level: info\n  level: debug\n", "'log.level' is given twice (line 3)"},
		{"bad enum", "log:\n  level: loud\n", "'log.level' must be debug, info, warn or error"},
		{"bad address", "http:\n  addr: localhost\n", "'http.addr' must be host:port"},
		{"bad demo rtsp address", "demo:\n  rtsp_addr: 8554\n", "'demo.rtsp_addr' must be host:port"},
		{"shutdown too long", "http:\n  shutdown_timeout: 30s\n", "'http.shutdown_timeout' must be more than 0 and at most 10s"},
		{"bad mqtt mode", "mqtt:\n  mode: cloud\n", "'mqtt.mode' must be embedded or external"},
		{"external without url", "mqtt:\n  mode: external\n  external:\n    username: a\n", "'mqtt.external.url'"},
		{"external anonymous", "mqtt:\n  mode: external\n  external:\n    url: tcp://b:1883\n", "'mqtt.external.username' must be set"},
		{"influx without token", "tsdb:\n  backend: influxdb\n  influxdb:\n    url: http://i:8086\n    bucket: db/rp\n", "'tsdb.influxdb.token' must be set"},
		{"bad root org id", "bootstrap:\n  root_org:\n    id: Yun Nan\n", "'bootstrap.root_org.id' must be"},
		{"short admin password", "bootstrap:\n  admin_password: abc\n", "'bootstrap.admin_password' must be at least 8"},
		{"prebuffer too long", "cameras:\n  prebuffer: 1h\n", "'cameras.prebuffer' must be 0s (off) or between 1s and 10m"},
		{"prebuffer too small", "cameras:\n  prebuffer_max_bytes: 1000\n", "'cameras.prebuffer_max_bytes' must be between 1048576"},
		{"tile URL without a host", "console:\n  map:\n    tiles: [\"/tiles/{z}/{x}/{y}.png\"]\n", "'console.map.tiles[0]' must be an http(s) URL template"},
		{"tile URL without {z}", "console:\n  map:\n    tiles: [\"https://tiles.internal/a.png\"]\n", "'console.map.tiles[0]'"},
		{"max zoom too deep", "console:\n  map:\n    max_zoom: 30\n", "'console.map.max_zoom' must be between 0"},
		{"two documents", "log:\n  level: info\n---\nlog:\n  level: info\n", "more than one document"},
		{"not yaml", "http: [\n", "invalid YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), noEnv)
			if err == nil {
				t.Fatalf("Parse accepted %q", tt.yaml)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

func TestPartialFileKeepsDefaults(t *testing.T) {
	cfg, err := Parse([]byte("http:\n  addr: 127.0.0.1:9999\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.HTTP.Addr = "127.0.0.1:9999"
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("got %+v\nwant %+v", cfg, want)
	}
	empty, err := Parse(nil, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(empty, Default()) {
		t.Fatalf("empty file: got %+v, want defaults", empty)
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	env := map[string]string{
		EnvHTTPAddr:      "127.0.0.1:18080",
		EnvMQTTAddr:      "127.0.0.1:11883",
		EnvDataDir:       "/tmp/lookout-x",
		EnvAdminPassword: "correct horse",
		EnvDemo:          "0",
	}
	cfg, err := Parse([]byte("demo:\n  enabled: true\n"), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Addr != "127.0.0.1:18080" || cfg.MQTT.Embedded.Addr != "127.0.0.1:11883" ||
		cfg.DataDir != "/tmp/lookout-x" || cfg.Bootstrap.AdminPassword.Reveal() != "correct horse" || cfg.Demo.Enabled {
		t.Fatalf("environment not applied: %+v", cfg)
	}
	_, err = Parse(nil, func(k string) string {
		if k == EnvDemo {
			return "yes please"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), "LOOKOUT_DEMO must be 0 or 1") {
		t.Fatalf("bad LOOKOUT_DEMO: got %v", err)
	}
	_, err = Parse(nil, func(k string) string {
		if k == EnvHTTPAddr {
			return "nonsense"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), "'http.addr'") {
		t.Fatalf("bad LOOKOUT_HTTP_ADDR: got %v", err)
	}
	turnFile := []byte("turn:\n  udp_addr: 127.0.0.1:3478\n  tcp_addr: 127.0.0.1:3478\n")
	for _, tc := range []struct{ env, udp, tcp string }{
		{"", "127.0.0.1:3478", "127.0.0.1:3478"},
		{"127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"},
		{"off", "", ""},
	} {
		cfg, err := Parse(turnFile, func(k string) string {
			if k == EnvTURNAddr {
				return tc.env
			}
			return ""
		})
		if err != nil || cfg.TURN.UDPAddr != tc.udp || cfg.TURN.TCPAddr != tc.tcp {
			t.Fatalf("LOOKOUT_TURN_ADDR=%q: %+v %v", tc.env, cfg.TURN, err)
		}
	}
}

func TestDurationsAndSecrets(t *testing.T) {
	cfg, err := Parse([]byte("auth:\n  token_ttl: 90m\nmqtt:\n  mode: external\n  external:\n    url: tcp://b:1883\n    username: u\n    password: hunter2hunter2\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Auth.TokenTTL.D() != 90*time.Minute {
		t.Fatalf("token_ttl = %s", cfg.Auth.TokenTTL)
	}
	if cfg.MQTT.External.Password.Reveal() != "hunter2hunter2" {
		t.Fatal("secret not decoded")
	}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("cfg", "password", cfg.MQTT.External.Password, "cfg", cfg)
	js, _ := json.Marshal(cfg)
	for _, out := range []string{logged.String(), string(js), fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg)} {
		if strings.Contains(out, "hunter2") {
			t.Fatalf("secret leaked: %s", out)
		}
	}
}

// Every field of the config tree carries a yaml tag, so no key is silently
// unreachable from the file.
func TestEveryFieldHasYAMLTag(t *testing.T) {
	var walk func(reflect.Type, string)
	walk = func(tp reflect.Type, path string) {
		for i := 0; i < tp.NumField(); i++ {
			f := tp.Field(i)
			tag := f.Tag.Get("yaml")
			if tag == "" || tag == "-" {
				t.Errorf("%s%s has no yaml tag", path, f.Name)
				continue
			}
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, path+tag+".")
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
}

func TestLoadFile(t *testing.T) {
	if _, err := LoadFile(filepath.Join(t.TempDir(), "missing.yaml"), noEnv); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing file: %v", err)
	}
	p := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(p, []byte("http:\n  adr: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(p, noEnv)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "'http.adr'") {
		t.Fatalf("bad file: %v", err)
	}
}
