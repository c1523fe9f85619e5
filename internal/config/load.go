package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Environment variables that override the file, so that scripts and tests can
// start a server on free ports and in a directory of their own.
const (
	EnvHTTPAddr      = "LOOKOUT_HTTP_ADDR"
	EnvMQTTAddr      = "LOOKOUT_MQTT_ADDR"
	EnvDataDir       = "LOOKOUT_DATA_DIR"
	EnvAdminPassword = "LOOKOUT_ADMIN_PASSWORD"
	EnvDemo          = "LOOKOUT_DEMO"
	// EnvWebRTCAddr sets both ICE ports (UDP and TCP) of the SFU.
	EnvWebRTCAddr = "LOOKOUT_WEBRTC_ADDR"
	// EnvTURNAddr sets both ports (UDP and TCP) of the built-in TURN server;
	// port 0 takes a free one of each, "off" turns the server off.
	EnvTURNAddr = "LOOKOUT_TURN_ADDR"
)

// LoadFile reads the YAML file at path over the defaults, applies the
// environment from getenv (os.Getenv when nil) and validates the result.
func LoadFile(path string, getenv func(string) string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Config{}, fmt.Errorf("config file %s does not exist", path)
		}
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(data, getenv)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes YAML over the defaults, applies the environment and
// validates. Unknown keys and values of the wrong type are errors that name
// the key by its dotted path.
func Parse(data []byte, getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	cfg := Default()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		// An empty file means all defaults.
	case err != nil:
		return Config{}, fmt.Errorf("invalid YAML: %w", err)
	default:
		var extra yaml.Node
		if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
			return Config{}, errors.New("invalid YAML: more than one document in the file")
		}
		if len(doc.Content) == 1 {
			if err := decodeStrict(doc.Content[0], reflect.ValueOf(&cfg).Elem(), ""); err != nil {
				return Config{}, err
			}
		}
	}
	if err := applyEnv(&cfg, getenv); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func applyEnv(cfg *Config, getenv func(string) string) error {
	if v := getenv(EnvHTTPAddr); v != "" {
		cfg.HTTP.Addr = v
	}
	if v := getenv(EnvMQTTAddr); v != "" {
		cfg.MQTT.Embedded.Addr = v
	}
	if v := getenv(EnvDataDir); v != "" {
		cfg.DataDir = v
	}
	if v := getenv(EnvWebRTCAddr); v != "" {
		cfg.WebRTC.UDPAddr, cfg.WebRTC.TCPAddr = v, v
	}
	switch v := getenv(EnvTURNAddr); v {
	case "":
	case "off":
		cfg.TURN.UDPAddr, cfg.TURN.TCPAddr = "", ""
	default:
		cfg.TURN.UDPAddr, cfg.TURN.TCPAddr = v, v
	}
	if v := getenv(EnvAdminPassword); v != "" {
		cfg.Bootstrap.AdminPassword = Secret(v)
	}
	if v := getenv(EnvDemo); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%s must be 0 or 1, got %q", EnvDemo, v)
		}
		cfg.Demo.Enabled = on
	}
	return nil
}

// unmarshalerType is implemented by leaf types that decode themselves.
var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// decodeStrict walks a YAML mapping into a struct by its yaml tags, so that an
// unknown key or a bad value is reported with its full dotted path; yaml.v3's
// own strict mode names only the line and the Go type.
func decodeStrict(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if v.Kind() == reflect.Struct && !reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if n.Kind != yaml.MappingNode {
			if n.Tag == "!!null" {
				return nil
			}
			return fmt.Errorf("'%s' must be a mapping, got %q", orRoot(path), n.Value)
		}
		fields := map[string]reflect.Value{}
		for i := 0; i < v.NumField(); i++ {
			tag := strings.Split(v.Type().Field(i).Tag.Get("yaml"), ",")[0]
			if tag != "" && tag != "-" {
				fields[tag] = v.Field(i)
			}
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			child := join(path, key)
			if seen[key] {
				return fmt.Errorf("'%s' is given twice (line %d)", child, n.Content[i].Line)
			}
			seen[key] = true
			f, ok := fields[key]
			if !ok {
				return fmt.Errorf("'%s' is not a known key (line %d)", child, n.Content[i].Line)
			}
			if err := decodeStrict(n.Content[i+1], f, child); err != nil {
				return err
			}
		}
		return nil
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		msg := err.Error()
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			msg = fmt.Sprintf("must be of type %s, got %q", v.Type(), n.Value)
		}
		return fmt.Errorf("'%s' %s (line %d)", path, strings.TrimPrefix(msg, "yaml: "), n.Line)
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}
