package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/lookout-cc/lookout/devices"
	"github.com/lookout-cc/lookout/ingest/ais"
)

// Simulator plays the demo devices over real MQTT, each with its own
// credentials, as the contract in DESIGN.md says devices behave: reservoir
// gauges report a slow daily curve with noise (and a flood rise on demand),
// streetlights report power and brightness and answer commands, and the
// port's AIS receiver reports fishing boats entering and leaving.
//
// Lifecycle: NewSimulator, Run until its context ends; TriggerFlood at any
// time.
type Simulator struct {
	p     SimParams
	flood atomic.Bool
	// floodSince is when the flood began, Unix ms; 0 when none.
	floodSince atomic.Int64
}

// SimParams configure the simulator.
type SimParams struct {
	BrokerURL   string
	Devices     []DeviceSpec
	Credentials map[string]devices.Credentials
	// Interval between reports of each device (default 5 s).
	Interval time.Duration
	// FloodRisePerMinute is how fast a triggered flood raises the gauges
	// (default 0.5 m a minute, so that a demo shows it within minutes).
	FloodRisePerMinute float64
	Log                *slog.Logger
}

// NewSimulator returns a simulator of the given devices.
func NewSimulator(p SimParams) *Simulator {
	if p.Interval <= 0 {
		p.Interval = 5 * time.Second
	}
	if p.FloodRisePerMinute <= 0 {
		p.FloodRisePerMinute = 0.5
	}
	return &Simulator{p: p}
}

// TriggerFlood starts a flood rise at every reservoir gauge; a second call
// ends it.
func (s *Simulator) TriggerFlood() {
	if s.flood.CompareAndSwap(false, true) {
		s.floodSince.Store(time.Now().UnixMilli())
		s.p.Log.Info("simulated flood rise started")
		return
	}
	s.flood.Store(false)
	s.floodSince.Store(0)
	s.p.Log.Info("simulated flood rise ended")
}

// Run connects every device and plays it until ctx ends.
func (s *Simulator) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, d := range s.p.Devices {
		creds, ok := s.p.Credentials[d.ID]
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.play(ctx, d, creds)
		}()
	}
	wg.Wait()
	return nil
}

func topic(id, leaf string) string { return devices.TopicRoot + id + "/" + leaf }

// connect opens a device's MQTT session with its Last Will: status offline.
func (s *Simulator) connect(d DeviceSpec, creds devices.Credentials, onConnect func(paho.Client)) paho.Client {
	o := paho.NewClientOptions().AddBroker(s.p.BrokerURL).SetClientID("sim-"+d.ID).
		SetUsername(creds.Username).SetPassword(creds.Password).SetProtocolVersion(4).
		// A clean session: commands wait at Lookout, not at the broker, and
		// paho's resume of a persistent session races with publishing from
		// the connect handler.
		SetCleanSession(true).SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(2*time.Second).
		SetMaxReconnectInterval(10*time.Second).SetWill(topic(d.ID, "status"), "offline", 1, true).
		SetOnConnectHandler(func(c paho.Client) {
			// Ready for commands first, then say so: a device that says
			// online before it subscribes loses the commands sent meanwhile.
			if onConnect != nil {
				onConnect(c)
			}
			c.Publish(topic(d.ID, "status"), 1, true, "online")
		})
	return paho.NewClient(o)
}

// send publishes a report while connected and drops it otherwise: a
// simulated device need not buffer, and paho's resume of messages stored
// while connecting races with its sender.
func send(c paho.Client, topic string, payload any) {
	if c.IsConnectionOpen() {
		c.Publish(topic, 1, false, payload)
	}
}

// start connects in the background; reports begin once connected.
func start(c paho.Client) paho.Client {
	c.Connect()
	return c
}

func (s *Simulator) play(ctx context.Context, d DeviceSpec, creds devices.Credentials) {
	switch d.Kind {
	case "water_level":
		s.gauge(ctx, d, creds)
	case "streetlight":
		s.streetlight(ctx, d, creds)
	case "ais_receiver":
		s.aisReceiver(ctx, d, creds)
	}
}

func (s *Simulator) every(ctx context.Context, f func(now time.Time)) {
	t := time.NewTicker(s.p.Interval)
	defer t.Stop()
	f(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			f(now)
		}
	}
}

// gaugeLevel is a reservoir's level at now: base, a daily swing peaking in
// the afternoon, a little noise, and the flood rise while one runs.
func (s *Simulator) gaugeLevel(d DeviceSpec, now time.Time) float64 {
	h := float64(now.UTC().Hour()+8) + float64(now.Minute())/60 // Beijing time
	level := d.Sim.BaseM + d.Sim.DailyM*math.Sin(2*math.Pi*(h-9)/24) + (rand.Float64()-0.5)*0.02
	if since := s.floodSince.Load(); since > 0 {
		level += s.p.FloodRisePerMinute * float64(now.UnixMilli()-since) / 60000
	}
	return math.Round(level*1000) / 1000
}

func (s *Simulator) gauge(ctx context.Context, d DeviceSpec, creds devices.Credentials) {
	c := start(s.connect(d, creds, nil))
	defer c.Disconnect(250)
	battery := 3.95
	s.every(ctx, func(now time.Time) {
		battery = math.Max(3.5, battery-0.0001)
		payload := fmt.Sprintf(`{"ts": %d, "values": {"water_level_m": %.3f, "battery_v": %.3f}}`, now.UnixMilli(), s.gaugeLevel(d, now), battery)
		send(c, topic(d.ID, "telemetry"), payload)
	})
}

// lampState is a streetlight's state, changed by commands.
type lampState struct {
	mu         sync.Mutex
	on         bool
	brightness int
	// answered remembers the newest commands' results by id, so that a
	// command sent again (Lookout repeats a queued one the lamp took but
	// did not ack) is answered, not carried out twice.
	answered map[string]error
	order    []string
}

// rememberAnswers is how many commands a lamp remembers.
const rememberAnswers = 64

func (l *lampState) report(now time.Time) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	power := 0.5 // standby
	if l.on {
		power = 5 + 0.95*float64(l.brightness)
	}
	return fmt.Sprintf(`{"ts": %d, "values": {"on": %t, "brightness": %d, "power_w": %.1f, "fault": false}}`, now.UnixMilli(), l.on, l.brightness, power)
}

type command struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Params    json.RawMessage `json:"params"`
	ExpiresAt int64           `json:"expires_at"`
}

// apply carries out a command as a lamp's controller would, or says why not.
func (l *lampState) apply(cmd command, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err, seen := l.answered[cmd.ID]; seen {
		return err
	}
	err := l.carryOut(cmd, now)
	if l.answered == nil {
		l.answered = map[string]error{}
	}
	if len(l.order) == rememberAnswers {
		delete(l.answered, l.order[0])
		l.order = l.order[1:]
	}
	l.answered[cmd.ID] = err
	l.order = append(l.order, cmd.ID)
	return err
}

func (l *lampState) carryOut(cmd command, now time.Time) error {
	if cmd.ExpiresAt > 0 && now.UnixMilli() > cmd.ExpiresAt {
		return fmt.Errorf("command expired")
	}
	switch cmd.Name {
	case "set_power":
		var p struct {
			On *bool `json:"on"`
		}
		if err := json.Unmarshal(cmd.Params, &p); err != nil || p.On == nil {
			return fmt.Errorf("set_power needs on: true or false")
		}
		l.on = *p.On
	case "set_brightness":
		var p struct {
			Level *int `json:"level"`
		}
		if err := json.Unmarshal(cmd.Params, &p); err != nil || p.Level == nil || *p.Level < 0 || *p.Level > 100 {
			return fmt.Errorf("set_brightness needs level 0-100")
		}
		l.brightness = *p.Level
		l.on = *p.Level > 0
	case "set_schedule":
		// The controller keeps the schedule; the simulated lamp accepts it.
	default:
		return fmt.Errorf("unknown command %q", cmd.Name)
	}
	return nil
}

func (s *Simulator) streetlight(ctx context.Context, d DeviceSpec, creds devices.Credentials) {
	h := (time.Now().UTC().Hour() + 8) % 24
	lamp := &lampState{on: h >= 19 || h < 6, brightness: 80}
	c := start(s.connect(d, creds, func(pc paho.Client) {
		tok := pc.Subscribe(topic(d.ID, "cmd"), 1, func(pc paho.Client, m paho.Message) {
			var cmd command
			ack := map[string]any{}
			if err := json.Unmarshal(m.Payload(), &cmd); err != nil || cmd.ID == "" {
				s.p.Log.Warn("simulated lamp got a malformed command", "device", d.ID)
				return
			}
			ack["id"] = cmd.ID
			if err := lamp.apply(cmd, time.Now()); err != nil {
				ack["ok"], ack["error"] = false, err.Error()
			} else {
				ack["ok"] = true
			}
			js, _ := json.Marshal(ack)
			pc.Publish(topic(d.ID, "cmd/ack"), 1, false, js)
			pc.Publish(topic(d.ID, "telemetry"), 1, false, lamp.report(time.Now()))
		})
		tok.WaitTimeout(10 * time.Second) // on paho's OnConnect goroutine: blocks nothing else
	}))
	defer c.Disconnect(250)
	s.every(ctx, func(now time.Time) {
		send(c, topic(d.ID, "telemetry"), lamp.report(now))
	})
}

// boat is a simulated fishing boat on a line from the open sea into the
// port and back out.
type boat struct {
	mmsi   uint32
	name   string
	seaLat float64
	seaLon float64
	period time.Duration // out and back
	offset time.Duration
}

func (s *Simulator) aisReceiver(ctx context.Context, d DeviceSpec, creds devices.Credentials) {
	c := start(s.connect(d, creds, nil))
	defer c.Disconnect(250)
	enc := ais.NewEncoder()
	boats := []boat{
		{412440101, "MIN SHI YU 01", d.Lat - 0.12, d.Lon + 0.15, 20 * time.Minute, 0},
		{412440102, "MIN SHI YU 02", d.Lat - 0.05, d.Lon + 0.20, 24 * time.Minute, 7 * time.Minute},
		{412440103, "MIN SHI YU 03", d.Lat + 0.02, d.Lon + 0.18, 30 * time.Minute, 15 * time.Minute},
	}
	n := 0
	s.every(ctx, func(now time.Time) {
		var lines []string
		for _, b := range boats {
			// phase 0..1..0: at sea, in port at the middle, at sea again.
			ph := math.Mod(float64(now.Add(b.offset).UnixMilli())/float64(b.period.Milliseconds()), 1)
			f := 1 - math.Abs(2*ph-1)
			lat := b.seaLat + (d.Lat-b.seaLat)*f
			lon := b.seaLon + (d.Lon-b.seaLon)*f
			course := math.Mod(math.Atan2(d.Lon-b.seaLon, d.Lat-b.seaLat)*180/math.Pi+360, 360)
			if ph > 0.5 {
				course = math.Mod(course+180, 360)
			}
			speed := 7.5
			if f > 0.97 {
				speed = 0 // moored
			}
			lines = append(lines, enc.Position(b.mmsi, lat, lon, speed, course, int(course))...)
			if n%12 == 0 {
				lines = append(lines, enc.Static(b.mmsi, b.name, 30)...) // 30: fishing
			}
		}
		n++
		send(c, topic(d.ID, "nmea"), strings.Join(lines, "\r\n"))
	})
}
