// Package server is Lookout's composition root: it builds every component
// from the configuration, starts them in dependency order and stops them in
// reverse. It sits at the top of the import graph; only cmd/ and end-to-end
// tests import it.
package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/lookout-cc/lookout/console/alerts"
	"github.com/lookout-cc/lookout/console/auth"
	"github.com/lookout-cc/lookout/console/events"
	"github.com/lookout-cc/lookout/console/hearings"
	"github.com/lookout-cc/lookout/console/httpapi"
	"github.com/lookout-cc/lookout/console/petitions"
	"github.com/lookout-cc/lookout/console/users"
	"github.com/lookout-cc/lookout/console/walls"
	"github.com/lookout-cc/lookout/console/web"
	"github.com/lookout-cc/lookout/devices"
	"github.com/lookout-cc/lookout/ingest/broker"
	"github.com/lookout-cc/lookout/ingest/cameras"
	"github.com/lookout-cc/lookout/ingest/clips"
	"github.com/lookout-cc/lookout/ingest/mqtt"
	"github.com/lookout-cc/lookout/ingest/pipeline"
	"github.com/lookout-cc/lookout/ingest/spool"
	"github.com/lookout-cc/lookout/ingest/tsdb"
	"github.com/lookout-cc/lookout/internal/audit"
	"github.com/lookout-cc/lookout/internal/config"
	"github.com/lookout-cc/lookout/internal/demo"
	"github.com/lookout-cc/lookout/internal/health"
	"github.com/lookout-cc/lookout/internal/orgs"
	"github.com/lookout-cc/lookout/internal/sqldb"
	"github.com/lookout-cc/lookout/sfu/meeting"
	"github.com/lookout-cc/lookout/sfu/rooms"
	"github.com/lookout-cc/lookout/sfu/rtc"
	"github.com/lookout-cc/lookout/sfu/turn"
	"github.com/lookout-cc/lookout/sfu/whep"
)

// StopTimeout is the longest a graceful stop may take before the process
// gives up on it.
const StopTimeout = 10 * time.Second

// Params are what a server is built from.
type Params struct {
	Config  config.Config
	Log     *slog.Logger
	Version string
	// Notice receives the few lines meant for the operator's eyes rather
	// than the log, such as the first admin's random password. nil: io.Discard.
	Notice io.Writer
}

// Server is one Lookout process.
//
// Lifecycle: New, then Start once; Stop once after Start, whatever Start
// returned. A stopped server is not restarted.
type Server struct {
	p           Params
	cfg         config.Config
	log         *slog.Logger
	metrics     *prometheus.Registry
	unknownAcks prometheus.Counter
	health      *health.Registry

	db           *sql.DB
	checkpointer *sqldb.Checkpointer // copies the state database's write-ahead log beside its writer
	orgs         *orgs.Store
	users        *users.Store
	registry     *devices.Registry
	audit        *audit.Log
	presence     *devices.Presence
	// sweepStop ends the staleness sweep; sweepDone says it has.
	sweepStop chan struct{}
	sweepDone chan struct{}
	commands  *devices.Commands
	signer    *auth.Signer
	broker    *broker.Broker
	mqtt      *mqtt.Client
	tsdb      tsdb.Store
	spool     *spool.Spool
	ingest    *pipeline.Pipeline
	// events is the live events stream; alerts, alertEngine and rules
	// the alerting.
	events      *events.Bus
	alerts      *alerts.Store
	alertEngine *alerts.Engine
	rules       *alerts.Rules
	// walls are the video walls; pinner puts alerts' cameras on them.
	walls  *walls.Store
	pinner *walls.Pinner
	// petitions are the residents' petitions; hearings their remote
	// hearings (hearings.go).
	petitions    *petitions.Store
	hearings     *hearings.Service
	stopHearings context.CancelFunc
	hearingsDone chan struct{}
	// tilesStop ends the follower of the walls' tiles (tiles.go).
	tilesStop, tilesDone chan struct{}
	// rtc is the SFU's WebRTC engine; whep plays cameras to viewers;
	// cameras pulls them; clips saves spans of their pre-alert buffers.
	// alertClips are the clips being saved for new alerts; none starts
	// once alertClipsOver is set (under alertClipsMu).
	alertClips     sync.WaitGroup
	alertClipsMu   sync.Mutex
	alertClipsOver bool
	rtc            *rtc.Engine
	whep           *whep.Server
	// meetings is the meeting SFU, with its rooms and TURN server.
	meetings *meeting.SFU
	rooms    *rooms.Store
	turn     *turn.Server
	cameras  *cameras.Hub
	clips    *clips.Store
	httpSrv  *http.Server
	httpLn   net.Listener
	httpWG   sync.WaitGroup
	pprof    *http.Server
	rootOrg  orgs.ID
	// demoCams plays the demo cameras' clips over RTSP; demoCreds are
	// the simulated devices' MQTT credentials; sim plays those devices.
	demoCams  *demo.CameraServer
	demoCreds map[string]devices.Credentials
	sim       *demo.Simulator
	simStop   context.CancelFunc
	simDone   chan struct{}

	started []component
}

// component is one step of the start sequence and its undoing.
type component struct {
	name  string
	start func(ctx context.Context) error
	stop  func(ctx context.Context) error // nil: nothing to undo
}

// New returns a server that has not started anything yet.
func New(p Params) *Server {
	if p.Notice == nil {
		p.Notice = io.Discard
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	unknownAcks := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "lookout_command_acks_unknown_total",
		Help: "Command acks for commands Lookout does not know (or of another device); ignored.",
	})
	reg.MustRegister(unknownAcks)
	return &Server{p: p, cfg: p.Config, log: p.Log, metrics: reg, health: health.NewRegistry(), unknownAcks: unknownAcks}
}

func (s *Server) components() []component {
	return []component{
		{name: "state", start: s.startState, stop: s.stopState},
		{name: "bootstrap", start: s.bootstrap},
		{name: "tsdb", start: s.startTSDB, stop: s.stopTSDB},
		{name: "alerts", start: s.startAlerts, stop: s.stopAlerts},
		{name: "walls", start: s.startWalls, stop: s.stopWalls},
		{name: "ingest", start: s.startIngest, stop: s.stopIngest},
		{name: "mqtt broker", start: s.startMQTT, stop: s.stopMQTT},
		{name: "mqtt client", start: s.startMQTTClient, stop: s.stopMQTTClient},
		{name: "commands", start: s.startCommands, stop: s.stopCommands},
		{name: "webrtc", start: s.startWebRTC, stop: s.stopWebRTC},
		{name: "petitions", start: s.startPetitions, stop: s.stopPetitions},
		{name: "meetings", start: s.startMeetings, stop: s.stopMeetings},
		{name: "demo data", start: s.startDemoData, stop: s.stopDemoData}, // before the cameras are pulled: it moves the demo cameras
		{name: "cameras", start: s.startCameras, stop: s.stopCameras},
		{name: "wall tiles", start: s.startTiles, stop: s.stopTiles},
		{name: "demo", start: s.startDemo, stop: s.stopDemo},
		{name: "alert rules", start: s.loadRuleFiles},
		{name: "http", start: s.startHTTP, stop: s.stopHTTP},
		{name: "pprof", start: s.startPprof, stop: s.stopPprof},
	}
}

// Start starts every component in dependency order. When one fails, those
// already started are stopped again and the error names the component.
func (s *Server) Start(ctx context.Context) error {
	began := time.Now()
	for _, c := range s.components() {
		if err := c.start(ctx); err != nil {
			stopCtx, cancel := context.WithTimeout(context.Background(), StopTimeout)
			defer cancel()
			if serr := s.Stop(stopCtx); serr != nil {
				s.log.Error("stop after failed start", "err", serr)
			}
			return fmt.Errorf("start %s: %w", c.name, err)
		}
		s.started = append(s.started, c)
	}
	s.log.Info("lookout started", "version", s.p.Version, "http", s.HTTPAddr(), "mqtt", s.MQTTAddr(),
		"data_dir", s.cfg.DataDir, "demo", s.cfg.Demo.Enabled, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// Stop stops the started components in reverse order. It returns the errors
// of all that failed to stop cleanly.
func (s *Server) Stop(ctx context.Context) error {
	var errs []error
	for i := len(s.started) - 1; i >= 0; i-- {
		c := s.started[i]
		if c.stop == nil {
			continue
		}
		began := time.Now()
		if err := c.stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", c.name, err))
		}
		// A stop an operator waits for should say what it waited for.
		if took := time.Since(began); took > time.Second {
			s.log.Warn("component slow to stop", "component", c.name, "took", took.Round(time.Millisecond))
		}
	}
	s.started = nil
	return errors.Join(errs...)
}

// HTTPAddr is the console's listening address, "" before Start.
func (s *Server) HTTPAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// MQTTAddr is the embedded broker's listening address, "" when there is none.
func (s *Server) MQTTAddr() string {
	if s.broker == nil {
		return ""
	}
	return s.broker.Addr()
}

func (s *Server) startState(ctx context.Context) error {
	db, err := sqldb.Open(ctx, s.cfg.DataDir, s.log.With("component", "state"))
	if err != nil {
		return err
	}
	ckpt, err := sqldb.StartCheckpointer(s.cfg.DataDir, sqldb.CheckpointEvery, s.log.With("component", "state"))
	if err != nil {
		db.Close()
		return err
	}
	s.db, s.checkpointer = db, ckpt
	s.health.Add("state", db.PingContext)
	return nil
}

func (s *Server) stopState(context.Context) error {
	s.health.Remove("state")
	return errors.Join(s.checkpointer.Close(), s.db.Close())
}

// bootstrap loads the organisation tree and users, creating the root
// organisation, the first admin and (with the demo on) the demo data in a
// new data directory.
func (s *Server) bootstrap(ctx context.Context) error {
	var err error
	if s.orgs, err = orgs.NewStore(ctx, s.db); err != nil {
		return err
	}
	seed := s.cfg.Bootstrap.RootOrg
	root, err := s.orgs.EnsureRoot(ctx, orgs.NewOrg{ID: orgs.ID(seed.ID), Name: seed.Name, Kind: seed.Kind})
	if err != nil {
		return fmt.Errorf("root organisation: %w", err)
	}
	s.rootOrg = root.ID
	if root.ID != orgs.ID(seed.ID) {
		s.log.Warn("data dir has another root organisation than bootstrap.root_org; keeping it", "root", root.ID, "configured", seed.ID)
	}
	if s.users, err = users.NewStore(s.db, s.orgs); err != nil {
		return err
	}
	admin := s.cfg.Bootstrap.AdminUsername
	pw, err := s.users.EnsureAdmin(ctx, admin, root.ID, s.cfg.Bootstrap.AdminPassword.Reveal())
	if err != nil {
		return err
	}
	if pw != "" {
		s.log.Info("first admin created", "user", admin, "org", root.ID)
		if s.cfg.Bootstrap.AdminPassword == "" {
			// Printed once, to the operator's terminal rather than the log.
			fmt.Fprintf(s.p.Notice, "\n  First start: log in as %q with password %s\n  (printed only this once; set LOOKOUT_ADMIN_PASSWORD to choose it)\n\n", admin, pw)
		}
	}
	if s.signer, err = auth.NewSigner(ctx, s.db); err != nil {
		return err
	}
	if s.registry, err = devices.NewRegistry(ctx, s.db, s.orgs); err != nil {
		return err
	}
	if s.audit, err = audit.Open(ctx, s.db); err != nil {
		return err
	}
	if s.presence, err = devices.NewPresence(ctx, s.db); err != nil {
		return err
	}
	if s.commands, err = devices.NewCommands(ctx, s.db, s.registry, s.presence, commandPublisher{s}, s.audit,
		s.log.With("component", "commands")); err != nil {
		return err
	}
	s.registry.OnRemoved = s.commands.DeviceRemoved
	s.presence.OnChange = func(id devices.ID, state string, _ time.Time) {
		switch state {
		case devices.StateOnline:
			go s.commands.DeviceOnline(id) // not on the MQTT handler's goroutine: it publishes
		case devices.StateOffline:
			s.commands.DeviceOffline(id)
		}
	}
	if s.cfg.Demo.Enabled {
		if _, err := demo.SeedOrgs(ctx, s.orgs, root.ID, s.log); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) startMQTT(context.Context) error {
	if s.cfg.MQTT.Mode != "embedded" {
		return nil
	}
	b, err := broker.New(broker.Params{Addr: s.cfg.MQTT.Embedded.Addr, Log: s.log.With("component", "mqtt-broker"), Metrics: s.metrics,
		Devices: s.registry})
	if err != nil {
		return err
	}
	// The server takes the devices' messages from the embedded broker in
	// process, on the goroutine of the device's own connection: no second
	// network hop per message, no client of the server's own whose queue
	// holds everything every device sends, and a device that sends faster
	// than the server takes is slowed on its own connection. The
	// subscriptions are made before the broker listens, so that no
	// device's retained status comes before them.
	for i, sub := range []struct {
		filter string
		handle func(topic string, payload []byte)
	}{
		{pipeline.TelemetryFilter, s.seen(s.ingest.HandleTelemetry)},
		{pipeline.NMEAFilter, s.seen(s.ingest.HandleNMEA)},
		{devices.TopicRoot + "+/status", s.handleStatus},
		{devices.TopicRoot + "+/cmd/ack", s.seen(s.handleAck)},
	} {
		if err := b.Subscribe(sub.filter, i+1, sub.handle); err != nil {
			return fmt.Errorf("subscribe %s: %w", sub.filter, err)
		}
	}
	if err := b.Start(); err != nil {
		b.Close()
		return err
	}
	s.broker = b
	s.registry.OnAccessChanged = func(id devices.ID) {
		if n := b.DisconnectUser(string(id)); n > 0 {
			s.log.Info("device sessions closed after its access changed", "device", id, "sessions", n)
		}
	}
	s.health.Add("mqtt_broker", b.Check)
	return nil
}

func (s *Server) stopMQTT(context.Context) error {
	if s.broker == nil {
		return nil
	}
	s.health.Remove("mqtt_broker")
	return s.broker.Close()
}

// startMQTTClient connects the server's own MQTT client to the external
// broker. The embedded broker needs none: its messages are taken in
// process (startMQTT).
func (s *Server) startMQTTClient(context.Context) error {
	if s.broker != nil {
		return nil
	}
	p := mqtt.Params{Log: s.log.With("component", "mqtt-client"), Metrics: s.metrics}
	ext := s.cfg.MQTT.External
	p.URL, p.Username, p.Password, p.ClientID = ext.URL, ext.Username, ext.Password.Reveal(), ext.ClientID
	if p.ClientID == "" {
		host, _ := os.Hostname()
		p.ClientID = "lookout-" + host
	}
	c, err := mqtt.New(p)
	if err != nil {
		return err
	}
	// Nodes of one shared group split the messages instead of each taking
	// all of them.
	share := ""
	if g := s.cfg.MQTT.External.SharedGroup; g != "" {
		share = "$share/" + g + "/"
	}
	c.Subscribe(share+pipeline.TelemetryFilter, 1, s.seen(s.ingest.HandleTelemetry))
	c.Subscribe(share+pipeline.NMEAFilter, 1, s.seen(s.ingest.HandleNMEA))
	c.Subscribe(share+devices.TopicRoot+"+/status", 1, s.handleStatus)
	c.Subscribe(share+devices.TopicRoot+"+/cmd/ack", 1, s.seen(s.handleAck))
	c.Start()
	s.mqtt = c
	s.health.Add("mqtt_client", c.Check)
	return nil
}

func (s *Server) stopMQTTClient(context.Context) error {
	if s.mqtt == nil {
		return nil
	}
	s.health.Remove("mqtt_client")
	s.mqtt.Close()
	return nil
}

// startTSDB opens the time-series store: the embedded one in the data
// directory, or InfluxDB.
func (s *Server) startTSDB(ctx context.Context) error {
	switch s.cfg.TSDB.Backend {
	case "influxdb":
		in := s.cfg.TSDB.InfluxDB
		s.tsdb = tsdb.NewInflux(tsdb.InfluxParams{URL: in.URL, Token: in.Token.Reveal(), Org: in.Org, Bucket: in.Bucket})
	default:
		st, err := tsdb.OpenEmbedded(ctx, s.cfg.DataDir, s.cfg.TSDB.Embedded.Retention.D(), s.log.With("component", "tsdb"))
		if err != nil {
			return err
		}
		s.tsdb = st
	}
	s.health.Add("tsdb", s.tsdb.Check)
	return nil
}

func (s *Server) stopTSDB(context.Context) error {
	s.health.Remove("tsdb")
	return s.tsdb.Close()
}

// startIngest opens the spool and starts the telemetry pipeline; the MQTT
// client feeds it once connected.
func (s *Server) startIngest(context.Context) error {
	sp, err := spool.Open(filepath.Join(s.cfg.DataDir, "spool"), s.cfg.Ingest.SpoolMaxBytes)
	if err != nil {
		return err
	}
	if n := sp.Points(); n > 0 {
		s.log.Info("telemetry spool holds points from before; replaying", "points", n)
	}
	pl, err := pipeline.New(pipeline.Params{
		Store: s.tsdb, Spool: sp, Devices: s.registry, Vessels: s.registry, Log: s.log.With("component", "ingest"), Metrics: s.metrics,
		BatchSize: s.cfg.Ingest.BatchSize, FlushInterval: s.cfg.Ingest.FlushInterval.D(), Observe: s.alertEngine.Observe,
	})
	if err != nil {
		sp.Close()
		return err
	}
	pl.Start()
	s.spool, s.ingest = sp, pl
	return nil
}

func (s *Server) stopIngest(context.Context) error {
	s.ingest.Close()
	return s.spool.Close()
}

func (s *Server) startHTTP(context.Context) error {
	front, err := web.New(s.cfg.Console.Map.Tiles)
	if err != nil {
		return err
	}
	if !front.Built() {
		s.log.Warn("the console front end is not in this binary; the API works, pages answer 503", "why", web.ErrNotBuilt)
	}
	h, err := httpapi.New(httpapi.Params{
		Log:          s.log.With("component", "http"),
		Metrics:      s.metrics,
		Health:       s.health,
		Orgs:         s.orgs,
		Users:        s.users,
		Devices:      s.registry,
		Audit:        s.audit,
		Presence:     s.presence,
		Commands:     s.commands,
		Rules:        s.rules,
		Alerts:       s.alerts,
		Events:       s.events,
		Cameras:      s.cameras,
		WHEP:         s.whep,
		Rooms:        s.rooms,
		Meetings:     s.meetings,
		Walls:        s.walls,
		Petitions:    s.petitions,
		Hearings:     s.hearings,
		Clips:        s.clips,
		Telemetry:    s.tsdb,
		Signer:       s.signer,
		Throttle:     auth.NewThrottle(s.cfg.Auth.LoginFreeFailures, s.cfg.Auth.LoginBaseDelay.D(), s.cfg.Auth.LoginMaxDelay.D()),
		TokenTTL:     s.cfg.Auth.TokenTTL.D(),
		MaxBodyBytes: s.cfg.HTTP.MaxBodyBytes,
		Version:      s.p.Version,
		Console:      front,
		ConsoleConfig: httpapi.ConsoleConfig{Map: httpapi.MapConfig{
			Tiles: s.cfg.Console.Map.Tiles, Attribution: s.cfg.Console.Map.Attribution, MaxZoom: s.cfg.Console.Map.MaxZoom}},
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.HTTP.Addr)
	if err != nil {
		return err
	}
	s.httpLn = ln
	s.httpSrv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.cfg.HTTP.ReadHeaderTimeout.D(),
		ErrorLog:          slog.NewLogLogger(s.log.With("component", "http").Handler(), slog.LevelWarn),
	}
	s.httpWG.Add(1)
	go func() {
		defer s.httpWG.Done()
		if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}()
	return nil
}

// stopHTTP lets requests in flight finish for up to http.shutdown_timeout,
// then closes what is left.
func (s *Server) stopHTTP(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.HTTP.ShutdownTimeout.D())
	defer cancel()
	// Events streams last until their client leaves: end them first, or
	// Shutdown would wait for them until its timeout.
	s.events.Close()
	err := s.httpSrv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, s.httpSrv.Close())
	}
	s.httpWG.Wait()
	return err
}

// startPprof serves net/http/pprof on its own listener when configured.
func (s *Server) startPprof(context.Context) error {
	if s.cfg.Debug.PprofAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Debug.PprofAddr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.pprof = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.httpWG.Add(1)
	go func() {
		defer s.httpWG.Done()
		_ = s.pprof.Serve(ln)
	}()
	s.log.Info("pprof serving", "addr", ln.Addr().String())
	return nil
}

func (s *Server) stopPprof(context.Context) error {
	if s.pprof == nil {
		return nil
	}
	return s.pprof.Close()
}

// commandPublisher hands commands to the embedded broker in process, or to
// an external broker through the server's MQTT client.
type commandPublisher struct{ s *Server }

// InProcess tells whether commands go to the embedded broker, which
// queues them for the device's connection without waiting.
func (p commandPublisher) InProcess() bool { return p.s.broker != nil }

func (p commandPublisher) PublishCommand(device devices.ID, payload []byte) error {
	if p.s.broker != nil {
		// The embedded broker takes it in process: a command costs no
		// network round trip to the broker and back.
		return p.s.broker.Publish(devices.TopicRoot+string(device)+"/cmd", payload, 1)
	}
	if p.s.mqtt == nil {
		return errors.New("mqtt client not started")
	}
	return p.s.mqtt.Publish(devices.TopicRoot+string(device)+"/cmd", 1, false, payload, 5*time.Second)
}

// seen wraps a message handler so that every message of a known device
// counts as a sign of life for its online state.
func (s *Server) seen(h mqtt.Handler) mqtt.Handler {
	return func(topic string, payload []byte) {
		h(topic, payload)
		if id, _, ok := devices.ParseTopic(topic); ok {
			if _, known := s.registry.Lookup(id); known {
				s.presence.Seen(context.Background(), id)
			}
		}
	}
}

// sweepEvery is how often online devices are checked for staleness.
const sweepEvery = 10 * time.Second

func (s *Server) sweepPresence(stop <-chan struct{}) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	kindOf := func(id devices.ID) (string, bool) {
		d, ok := s.registry.Lookup(id)
		return d.Kind, ok
	}
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.presence.Sweep(context.Background(), kindOf)
		}
	}
}

func (s *Server) startCommands(context.Context) error {
	s.sweepStop, s.sweepDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.sweepDone)
		s.sweepPresence(s.sweepStop)
	}()
	s.commands.UnknownAcks = s.unknownAcks.Inc
	roundTrip := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "lookout_command_ack_seconds",
		Help:    "Time from a command's acceptance by the API to the device's ack.",
		Buckets: []float64{.005, .01, .02, .03, .05, .075, .1, .15, .2, .3, .5, 1, 2, 5, 10},
	})
	if err := s.metrics.Register(roundTrip); err != nil {
		return err
	}
	s.commands.OnChange = func(c devices.Command) {
		if c.State == devices.CommandAcked && c.DoneAt != nil {
			roundTrip.Observe(c.DoneAt.Sub(c.CreatedAt).Seconds())
		}
	}
	s.commands.Start()
	return nil
}

func (s *Server) stopCommands(context.Context) error {
	close(s.sweepStop)
	<-s.sweepDone
	s.commands.Close()
	return nil
}

// handleStatus takes a device's retained status or Last Will.
func (s *Server) handleStatus(topic string, payload []byte) {
	id, leaf, ok := devices.ParseTopic(topic)
	if !ok || leaf != "status" {
		return
	}
	if _, known := s.registry.Lookup(id); !known {
		return
	}
	state := strings.TrimSpace(string(payload))
	if state != devices.StateOnline && state != devices.StateOffline {
		s.log.Warn("device status is neither online nor offline", "device", id, "status", truncate(state, 40))
		return
	}
	if err := s.presence.Set(context.Background(), id, state); err != nil {
		s.log.Error("presence not stored", "device", id, "err", err)
	}
}

// handleAck takes a device's answer to a command.
func (s *Server) handleAck(topic string, payload []byte) {
	id, leaf, ok := devices.ParseTopic(topic)
	if !ok || leaf != "cmd/ack" {
		return
	}
	if s.log.Enabled(context.Background(), slog.LevelDebug) { // no copy of the payload per ack otherwise
		s.log.Debug("command ack", "device", id, "payload", truncate(string(payload), 200))
	}
	s.commands.HandleAck(id, payload)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// siteOrgs tells the petitions which organisation a site belongs to.
type siteOrgs struct{ reg *devices.Registry }

func (s siteOrgs) SiteOrg(ctx context.Context, scope orgs.Scope, id string) (orgs.ID, error) {
	site, err := s.reg.GetSite(ctx, scope, devices.SiteID(id))
	if err != nil {
		return "", err
	}
	return site.OrgID, nil
}
