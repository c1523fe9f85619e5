// Package config holds Lookout's configuration: one typed struct loaded from
// one YAML file, with defaults in one place, environment overrides for the
// values scripts need to change, and validation that names the dotted key and
// the rule it broke.
//
// Load order: defaults, then the file, then the environment, then Validate.
package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Config is the whole of Lookout's configuration.
type Config struct {
	// DataDir holds the state database, the embedded time-series store and
	// other files the server keeps between runs.
	DataDir   string    `yaml:"data_dir"`
	Log       Log       `yaml:"log"`
	HTTP      HTTP      `yaml:"http"`
	Auth      Auth      `yaml:"auth"`
	Bootstrap Bootstrap `yaml:"bootstrap"`
	MQTT      MQTT      `yaml:"mqtt"`
	TSDB      TSDB      `yaml:"tsdb"`
	Ingest    Ingest    `yaml:"ingest"`
	Alerts    Alerts    `yaml:"alerts"`
	WebRTC    WebRTC    `yaml:"webrtc"`
	TURN      TURN      `yaml:"turn"`
	Cameras   Cameras   `yaml:"cameras"`
	Demo      Demo      `yaml:"demo"`
	Debug     Debug     `yaml:"debug"`
	Console   Console   `yaml:"console"`
	Hearings  Hearings  `yaml:"hearings"`
}

// Console configures the web front end.
type Console struct {
	Map ConsoleMap `yaml:"map"`
}

// ConsoleMap configures the map's base layer. Without tiles the map shows
// the boundaries shipped with the console, which needs no network; with
// them it draws the raster tiles of an internal tile server beneath.
type ConsoleMap struct {
	// Tiles are raster tile URL templates ({z}/{x}/{y}), http(s) on an
	// internal server; the console's security policy allows their origins.
	Tiles       []string `yaml:"tiles"`
	Attribution string   `yaml:"attribution"`
	MaxZoom     int      `yaml:"max_zoom"`
}

// Debug configures what operators use to look inside a running server.
type Debug struct {
	// PprofAddr serves net/http/pprof on a listener of its own, apart from
	// the console; empty turns it off. Keep it on loopback.
	PprofAddr string `yaml:"pprof_addr"`
}

// Alerts configures the alert rules and the correlation of alerts with
// cameras.
type Alerts struct {
	// RuleFiles are YAML files of rules loaded at start (paths relative
	// to the working directory). Rules from files are changed by editing
	// the file; the demo's rules come with the demo.
	RuleFiles []string `yaml:"rule_files"`
	// FeedRadiusM: cameras within this distance of a device show its
	// alerts, after the cameras of its own site.
	FeedRadiusM float64 `yaml:"feed_radius_m"`
	// EventReplay is how many events the events stream keeps for clients
	// that reconnect with Last-Event-ID.
	EventReplay int `yaml:"event_replay"`
}

// WebRTC configures the SFU's ICE ports: one UDP port for every session
// (what a firewall team can open), and ICE-TCP on a TCP port for networks
// that block UDP.
type WebRTC struct {
	UDPAddr string `yaml:"udp_addr"`
	// TCPAddr is the ICE-TCP port; empty turns ICE-TCP off.
	TCPAddr string `yaml:"tcp_addr"`
	// PublicIPs are advertised in place of the local addresses, for a
	// server behind 1:1 NAT.
	PublicIPs []string `yaml:"public_ips"`
	// DirectSend has the SFU encrypt and send meeting subscribers' RTP
	// itself (sfu/rtc/direct.go) instead of through pion's SRTP path: a
	// tenth to a fifth less CPU per forwarded Mbit/s in the meeting bench
	// (docs/BENCHMARKS.md). On by default; false puts every subscriber
	// back on pion's path (connections over ICE-TCP always are).
	DirectSend bool `yaml:"direct_send"`
	// DirectReceive has the SFU take meeting publishers' SRTP off the UDP
	// port and decrypt it itself (sfu/rtc/directrecv.go), past pion's
	// goroutine hand-overs: a tenth less CPU in the meeting bench's
	// rooms (docs/BENCHMARKS.md). On by default; false leaves every
	// publisher on pion's path (as connections over ICE-TCP always are).
	DirectReceive bool `yaml:"direct_receive"`
}

// TURN configures the built-in TURN server, which relays the media of
// meeting participants behind symmetric NAT or firewalls that block the
// ICE port; both addresses empty turn it off.
type TURN struct {
	UDPAddr string `yaml:"udp_addr"`
	TCPAddr string `yaml:"tcp_addr"`
	// RelayIP is the address relayed media is sent from and advertised
	// with; empty: the listen address's IP.
	RelayIP      string `yaml:"relay_ip"`
	RelayPortMin uint16 `yaml:"relay_port_min"`
	RelayPortMax uint16 `yaml:"relay_port_max"`
}

// Cameras configures pulling the cameras over RTSP.
type Cameras struct {
	// RTSPTransport is "auto" (UDP first, then TCP), "udp" or "tcp".
	RTSPTransport string `yaml:"rtsp_transport"`
	// OnDemandLinger is how long an on-demand camera is still pulled after
	// its last viewer left.
	OnDemandLinger Duration `yaml:"on_demand_linger"`
	// Prebuffer is how much of each always-on camera's latest video is
	// kept in memory, for clips (POST /cameras/{id}/clips) and the alerts
	// that save one; 0 keeps none.
	Prebuffer Duration `yaml:"prebuffer"`
	// PrebufferMaxBytes bounds each always-on camera's buffer.
	PrebufferMaxBytes int64 `yaml:"prebuffer_max_bytes"`
}

// Ingest configures the telemetry path from MQTT to the time-series store.
type Ingest struct {
	// BatchSize is the most points one store write carries.
	BatchSize int `yaml:"batch_size"`
	// FlushInterval is the longest an accepted point waits to be written.
	FlushInterval Duration `yaml:"flush_interval"`
	// SpoolMaxBytes bounds the on-disk spool that keeps points while the
	// store is down; past it the oldest are dropped (and counted).
	SpoolMaxBytes int64 `yaml:"spool_max_bytes"`
}

// Log configures the server's slog output.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// HTTP configures the console's HTTP listener.
type HTTP struct {
	Addr              string   `yaml:"addr"`
	MaxBodyBytes      int64    `yaml:"max_body_bytes"`
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	ShutdownTimeout   Duration `yaml:"shutdown_timeout"`
}

// Auth configures console login and the tokens it issues.
type Auth struct {
	TokenTTL Duration `yaml:"token_ttl"`
	// LoginFreeFailures is how many wrong passwords in a row a user name or
	// client address may send before each further attempt has to wait.
	LoginFreeFailures int `yaml:"login_free_failures"`
	// LoginBaseDelay is the first wait after the free failures; it doubles
	// with every further failure up to LoginMaxDelay.
	LoginBaseDelay Duration `yaml:"login_base_delay"`
	LoginMaxDelay  Duration `yaml:"login_max_delay"`
}

// Bootstrap describes what a new data directory starts with: the root
// organisation and its first administrator.
type Bootstrap struct {
	RootOrg       OrgSeed `yaml:"root_org"`
	AdminUsername string  `yaml:"admin_username"`
	// AdminPassword is the first admin's password. Empty means a random one,
	// printed once at first start. Only used when the admin is created.
	AdminPassword Secret `yaml:"admin_password"`
}

// OrgSeed names an organisation created at first start.
type OrgSeed struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	Kind string `yaml:"kind"`
}

// MQTT selects the broker devices talk to.
type MQTT struct {
	// Mode is "embedded" (an in-process broker) or "external".
	Mode     string       `yaml:"mode"`
	Embedded EmbeddedMQTT `yaml:"embedded"`
	External ExternalMQTT `yaml:"external"`
}

// EmbeddedMQTT configures the in-process broker.
type EmbeddedMQTT struct {
	Addr string `yaml:"addr"`
}

// ExternalMQTT points at a broker Lookout does not run (Mosquitto, EMQX).
type ExternalMQTT struct {
	URL      string `yaml:"url"`
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
	// ClientID is the server's MQTT client id at this broker; it must stay
	// the same across restarts for the broker to keep the session. Empty:
	// "lookout-" and the host name.
	ClientID string `yaml:"client_id"`
	// SharedGroup is the $share group several Lookout nodes join so that each
	// message is handled by one of them. Empty: a plain subscription, which
	// a single node should use with Mosquitto 2.0: Mosquitto does not keep
	// shared subscriptions across its own restart, so messages published
	// before the node subscribes again are not queued for it.
	SharedGroup string `yaml:"shared_group"`
}

// Hearings configures the petitions' remote hearings.
type Hearings struct {
	// RecordingRetention is how long a hearing's recordings are kept
	// after it ended; the sweep deletes them then, each deletion audited.
	// 0 keeps them until deleted by hand.
	RecordingRetention Duration `yaml:"recording_retention"`
}

// TSDB selects the time-series store.
type TSDB struct {
	// Backend is "embedded" (SQLite next to the state database) or "influxdb".
	Backend  string       `yaml:"backend"`
	Embedded EmbeddedTSDB `yaml:"embedded"`
	InfluxDB InfluxDB     `yaml:"influxdb"`
}

// EmbeddedTSDB configures the embedded time-series store.
type EmbeddedTSDB struct {
	Retention Duration `yaml:"retention"`
}

// InfluxDB configures the InfluxDB backend (1.8+ through its 2.x API, or 2.x).
type InfluxDB struct {
	URL string `yaml:"url"`
	// Token is "user:password" for InfluxDB 1.8, an API token for 2.x.
	Token  Secret `yaml:"token"`
	Org    string `yaml:"org"`
	Bucket string `yaml:"bucket"`
}

// Demo controls the built-in demo data and simulator.
type Demo struct {
	Enabled bool `yaml:"enabled"`
	// Interval between the reports of each simulated device.
	Interval Duration `yaml:"interval"`
	// RTSPAddr is where the demo cameras' RTSP server listens (host:port;
	// port 0 takes a free one). RTP over UDP takes a free pair of ports on
	// the same host.
	RTSPAddr string `yaml:"rtsp_addr"`
}

// Default returns the configuration used for every key a file leaves out.
func Default() Config {
	return Config{
		DataDir: "data",
		Log:     Log{Level: "info", Format: "text"},
		// Three years: a petition's file is reviewed long after it closes.
		Hearings: Hearings{RecordingRetention: Duration(3 * 365 * 24 * time.Hour)},
		HTTP: HTTP{
			Addr:              "127.0.0.1:8080",
			MaxBodyBytes:      1 << 20,
			ReadHeaderTimeout: Duration(5 * time.Second),
			ShutdownTimeout:   Duration(5 * time.Second),
		},
		Auth: Auth{
			TokenTTL:          Duration(12 * time.Hour),
			LoginFreeFailures: 5,
			LoginBaseDelay:    Duration(time.Second),
			LoginMaxDelay:     Duration(5 * time.Minute),
		},
		Bootstrap: Bootstrap{
			RootOrg:       OrgSeed{ID: "root", Name: "Lookout", Kind: "province"},
			AdminUsername: "admin",
		},
		MQTT: MQTT{
			Mode:     "embedded",
			Embedded: EmbeddedMQTT{Addr: "127.0.0.1:1883"},
			External: ExternalMQTT{},
		},
		TSDB: TSDB{
			Backend:  "embedded",
			Embedded: EmbeddedTSDB{Retention: Duration(90 * 24 * time.Hour)},
		},
		Ingest:  Ingest{BatchSize: 5000, FlushInterval: Duration(100 * time.Millisecond), SpoolMaxBytes: 1 << 30},
		Alerts:  Alerts{FeedRadiusM: 2000, EventReplay: 10_000},
		WebRTC:  WebRTC{UDPAddr: "127.0.0.1:8189", TCPAddr: "127.0.0.1:8189", DirectSend: true, DirectReceive: true},
		Cameras: Cameras{RTSPTransport: "auto", OnDemandLinger: Duration(30 * time.Second), Prebuffer: Duration(30 * time.Second), PrebufferMaxBytes: 64 << 20},
		Demo:    Demo{Enabled: false, Interval: Duration(5 * time.Second), RTSPAddr: "127.0.0.1:0"},
	}
}

// idPattern is the shape of every identifier a user chooses (organisations,
// sites, devices, cameras): it goes into MQTT topics and URLs unescaped.
var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// OrgKinds are the organisation kinds a seed may name.
var OrgKinds = []string{"national", "province", "prefecture", "county", "township", "department"}

// Validate checks every value and returns the first broken rule, naming the
// key by its dotted path.
func (c *Config) Validate() error {
	var errs []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("'%s' %s", key, fmt.Sprintf(format, args...)))
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("data_dir", "must not be empty")
	}
	for i, raw := range c.Console.Map.Tiles {
		u, err := url.Parse(strings.NewReplacer("{", "", "}", "").Replace(raw))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || !strings.Contains(raw, "{z}") {
			bad(fmt.Sprintf("console.map.tiles[%d]", i), "must be an http(s) URL template with a host and {z}, {x}, {y}, got %q", raw)
		}
	}
	if c.Console.Map.MaxZoom < 0 || c.Console.Map.MaxZoom > 24 {
		bad("console.map.max_zoom", "must be between 0 (default 18) and 24, got %d", c.Console.Map.MaxZoom)
	}
	if !oneOf(c.Log.Level, "debug", "info", "warn", "error") {
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	if !oneOf(c.Log.Format, "text", "json") {
		bad("log.format", "must be text or json, got %q", c.Log.Format)
	}
	if err := checkHostPort(c.HTTP.Addr); err != nil {
		bad("http.addr", "must be host:port, %v", err)
	}
	if c.HTTP.MaxBodyBytes < 1024 || c.HTTP.MaxBodyBytes > 64<<20 {
		bad("http.max_body_bytes", "must be between 1024 and 67108864, got %d", c.HTTP.MaxBodyBytes)
	}
	positive(bad, "http.read_header_timeout", c.HTTP.ReadHeaderTimeout)
	if c.HTTP.ShutdownTimeout <= 0 || c.HTTP.ShutdownTimeout.D() > 10*time.Second {
		bad("http.shutdown_timeout", "must be more than 0 and at most 10s, got %s", c.HTTP.ShutdownTimeout)
	}
	if c.Auth.TokenTTL.D() < time.Minute || c.Auth.TokenTTL.D() > 30*24*time.Hour {
		bad("auth.token_ttl", "must be between 1m and 720h, got %s", c.Auth.TokenTTL)
	}
	if c.Auth.LoginFreeFailures < 1 || c.Auth.LoginFreeFailures > 100 {
		bad("auth.login_free_failures", "must be between 1 and 100, got %d", c.Auth.LoginFreeFailures)
	}
	positive(bad, "auth.login_base_delay", c.Auth.LoginBaseDelay)
	if c.Auth.LoginMaxDelay < c.Auth.LoginBaseDelay {
		bad("auth.login_max_delay", "must be at least auth.login_base_delay (%s), got %s", c.Auth.LoginBaseDelay, c.Auth.LoginMaxDelay)
	}
	if !idPattern.MatchString(c.Bootstrap.RootOrg.ID) {
		bad("bootstrap.root_org.id", "must be 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit, got %q", c.Bootstrap.RootOrg.ID)
	}
	if strings.TrimSpace(c.Bootstrap.RootOrg.Name) == "" {
		bad("bootstrap.root_org.name", "must not be empty")
	}
	if !oneOf(c.Bootstrap.RootOrg.Kind, OrgKinds...) {
		bad("bootstrap.root_org.kind", "must be one of %s, got %q", strings.Join(OrgKinds, ", "), c.Bootstrap.RootOrg.Kind)
	}
	if !idPattern.MatchString(c.Bootstrap.AdminUsername) {
		bad("bootstrap.admin_username", "must be 1-64 lowercase letters, digits, '-' or '_', got %q", c.Bootstrap.AdminUsername)
	}
	if p := c.Bootstrap.AdminPassword.Reveal(); p != "" && len(p) < 8 {
		bad("bootstrap.admin_password", "must be at least 8 characters (or empty for a random one)")
	}
	switch c.MQTT.Mode {
	case "embedded":
		if err := checkHostPort(c.MQTT.Embedded.Addr); err != nil {
			bad("mqtt.embedded.addr", "must be host:port, %v", err)
		}
	case "external":
		if err := checkBrokerURL(c.MQTT.External.URL); err != nil {
			bad("mqtt.external.url", "%v", err)
		}
		if c.MQTT.External.Username == "" {
			bad("mqtt.external.username", "must be set: Lookout never connects anonymously")
		}
		if id := c.MQTT.External.ClientID; id != "" && !idPattern.MatchString(id) {
			bad("mqtt.external.client_id", "must be 1-64 lowercase letters, digits, '-' or '_', got %q", id)
		}
		if g := c.MQTT.External.SharedGroup; g != "" && !idPattern.MatchString(g) {
			bad("mqtt.external.shared_group", "must be 1-64 lowercase letters, digits, '-' or '_', got %q", c.MQTT.External.SharedGroup)
		}
	default:
		bad("mqtt.mode", "must be embedded or external, got %q", c.MQTT.Mode)
	}
	if r := c.Hearings.RecordingRetention.D(); r != 0 && r < 24*time.Hour {
		bad("hearings.recording_retention", "must be 0 (keep) or at least 24h, got %s", c.Hearings.RecordingRetention)
	}
	switch c.TSDB.Backend {
	case "embedded":
		if c.TSDB.Embedded.Retention.D() < time.Hour {
			bad("tsdb.embedded.retention", "must be at least 1h, got %s", c.TSDB.Embedded.Retention)
		}
	case "influxdb":
		u, err := url.Parse(c.TSDB.InfluxDB.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("tsdb.influxdb.url", "must be an http:// or https:// URL, got %q", c.TSDB.InfluxDB.URL)
		}
		if c.TSDB.InfluxDB.Token.Reveal() == "" {
			bad("tsdb.influxdb.token", "must be set (user:password for InfluxDB 1.8)")
		}
		if c.TSDB.InfluxDB.Bucket == "" {
			bad("tsdb.influxdb.bucket", "must be set (database/retention-policy for InfluxDB 1.8)")
		}
	default:
		bad("tsdb.backend", "must be embedded or influxdb, got %q", c.TSDB.Backend)
	}
	if c.Ingest.BatchSize < 1 || c.Ingest.BatchSize > 100_000 {
		bad("ingest.batch_size", "must be between 1 and 100000, got %d", c.Ingest.BatchSize)
	}
	if c.Ingest.FlushInterval.D() < time.Millisecond || c.Ingest.FlushInterval.D() > 10*time.Second {
		bad("ingest.flush_interval", "must be between 1ms and 10s, got %s", c.Ingest.FlushInterval)
	}
	if !(c.Alerts.FeedRadiusM >= 0 && c.Alerts.FeedRadiusM <= 100_000) {
		bad("alerts.feed_radius_m", "must be between 0 and 100000, got %g", c.Alerts.FeedRadiusM)
	}
	if c.Alerts.EventReplay < 100 || c.Alerts.EventReplay > 1_000_000 {
		bad("alerts.event_replay", "must be between 100 and 1000000, got %d", c.Alerts.EventReplay)
	}
	for i, f := range c.Alerts.RuleFiles {
		if strings.TrimSpace(f) == "" {
			bad(fmt.Sprintf("alerts.rule_files[%d]", i), "must not be empty")
		}
	}
	if err := checkHostPort(c.WebRTC.UDPAddr); err != nil {
		bad("webrtc.udp_addr", "must be host:port, %v", err)
	}
	if c.WebRTC.TCPAddr != "" {
		if err := checkHostPort(c.WebRTC.TCPAddr); err != nil {
			bad("webrtc.tcp_addr", "must be host:port or empty, %v", err)
		}
	}
	for key, addr := range map[string]string{"turn.udp_addr": c.TURN.UDPAddr, "turn.tcp_addr": c.TURN.TCPAddr} {
		if addr != "" {
			if err := checkHostPort(addr); err != nil {
				bad(key, "must be host:port or empty, %v", err)
			}
		}
	}
	if c.TURN.RelayIP != "" && net.ParseIP(c.TURN.RelayIP) == nil {
		bad("turn.relay_ip", "must be an IP address, got %q", c.TURN.RelayIP)
	}
	if (c.TURN.RelayPortMin == 0) != (c.TURN.RelayPortMax == 0) || c.TURN.RelayPortMin > c.TURN.RelayPortMax {
		bad("turn.relay_port_min", "relay_port_min and relay_port_max are both 0 (any port) or a range min <= max")
	}
	for i, ip := range c.WebRTC.PublicIPs {
		if net.ParseIP(ip) == nil {
			bad(fmt.Sprintf("webrtc.public_ips[%d]", i), "must be an IP address, got %q", ip)
		}
	}
	if !oneOf(c.Cameras.RTSPTransport, "auto", "udp", "tcp") {
		bad("cameras.rtsp_transport", "must be auto, udp or tcp, got %q", c.Cameras.RTSPTransport)
	}
	if c.Cameras.OnDemandLinger.D() < time.Second || c.Cameras.OnDemandLinger.D() > time.Hour {
		bad("cameras.on_demand_linger", "must be between 1s and 1h, got %s", c.Cameras.OnDemandLinger)
	}
	if d := c.Cameras.Prebuffer.D(); d != 0 && (d < time.Second || d > 10*time.Minute) {
		bad("cameras.prebuffer", "must be 0s (off) or between 1s and 10m, got %s", c.Cameras.Prebuffer)
	}
	if n := c.Cameras.PrebufferMaxBytes; n < 1<<20 || n > 1<<30 {
		bad("cameras.prebuffer_max_bytes", "must be between 1048576 (1 MiB) and 1073741824 (1 GiB), got %d", n)
	}
	if c.Ingest.SpoolMaxBytes < 4<<20 {
		bad("ingest.spool_max_bytes", "must be at least 4194304 (4 MiB), got %d", c.Ingest.SpoolMaxBytes)
	}
	if c.Demo.Interval.D() < 10*time.Millisecond || c.Demo.Interval.D() > time.Hour {
		bad("demo.interval", "must be between 10ms and 1h, got %s", c.Demo.Interval)
	}
	if err := checkHostPort(c.Demo.RTSPAddr); err != nil {
		bad("demo.rtsp_addr", "must be host:port, %v", err)
	}
	if a := c.Debug.PprofAddr; a != "" {
		if err := checkHostPort(a); err != nil {
			bad("debug.pprof_addr", "must be host:port or empty, %v", err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &ValidationError{Problems: errs}
}

// ValidationError lists every broken rule of a configuration.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string {
	return "invalid config: " + strings.Join(e.Problems, "; ")
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

func positive(bad func(string, string, ...any), key string, d Duration) {
	if d <= 0 {
		bad(key, "must be more than 0, got %s", d)
	}
}

func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("got %q", addr)
	}
	if port == "" {
		return fmt.Errorf("port missing in %q", addr)
	}
	return nil
}

func checkBrokerURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("must be a broker URL like tcp://host:1883, got %q", raw)
	}
	if !oneOf(u.Scheme, "tcp", "ssl", "tls", "mqtt", "mqtts", "ws", "wss") {
		return fmt.Errorf("scheme must be tcp, ssl, tls, mqtt, mqtts, ws or wss, got %q", u.Scheme)
	}
	return nil
}
