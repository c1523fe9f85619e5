// Package broker runs the embedded MQTT broker (mochi-mqtt v2) that devices
// connect to on the embedded default. It listens on TCP so that real devices
// and mosquitto clients can connect, refuses anonymous and unknown clients,
// and limits each client to the topics its identity allows.
package broker

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"
)

// ServiceUsername is the MQTT user name of the server's own clients. The '$'
// keeps it apart from every device id, which cannot contain one.
const ServiceUsername = "$lookout"

// Identity is who an authenticated MQTT client is.
type Identity struct {
	// Service is the server's own client: it may publish and subscribe
	// anywhere.
	Service bool
	// DeviceID is set for devices; they are limited to their own topics.
	DeviceID string
}

// DeviceAuthenticator checks a device's MQTT credentials. The device
// registry provides it; without one only the server's own clients connect.
type DeviceAuthenticator interface {
	AuthenticateDevice(username, password string) (deviceID string, ok bool)
	// DeviceMayAccess reports whether the device may publish (write) or
	// subscribe to topic.
	DeviceMayAccess(deviceID, topic string, write bool) bool
}

// Params configure the broker.
type Params struct {
	Addr    string
	Log     *slog.Logger
	Metrics prometheus.Registerer
	Devices DeviceAuthenticator // nil: devices are refused
}

// Broker is the embedded MQTT broker.
//
// Lifecycle: New, then Start once, then Close once.
type Broker struct {
	srv             *mqtt.Server
	listener        *tcpListener
	servicePassword string
	refused         *prometheus.CounterVec
	closeOnce       sync.Once
}

// New builds a broker; it does not listen until Start.
func New(p Params) (*Broker, error) {
	b := &Broker{
		servicePassword: randomHex(24),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lookout_mqtt_refused_total",
			Help: "MQTT connections and topic accesses the embedded broker refused, by reason.",
		}, []string{"reason"}),
	}
	if err := p.Metrics.Register(b.refused); err != nil {
		return nil, err
	}
	// mochi logs every client disconnect as a warning ("read connection:
	// EOF"); with thousands of devices that drowns the log, so only its
	// errors pass. Refusals are logged by the access hook below.
	quiet := slog.New(levelFloor{Handler: p.Log.Handler(), min: slog.LevelError})
	// The inline client lets the server hand commands to the broker in
	// process (Publish), without a network round trip per command.
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumClientWritesPending = maxPendingWrites
	b.srv = mqtt.New(&mqtt.Options{Logger: quiet, InlineClient: true, Capabilities: caps})
	if err := b.srv.AddHook(&accessHook{b: b, devices: p.Devices, log: p.Log}, nil); err != nil {
		return nil, err
	}
	b.listener = newTCPListener("tcp", p.Addr)
	return b, nil
}

// Start opens the TCP listener and serves clients.
func (b *Broker) Start() error {
	if err := b.srv.AddListener(b.listener); err != nil {
		return fmt.Errorf("mqtt listener: %w", err)
	}
	return b.srv.Serve()
}

// Close disconnects every client and closes the listener. Calls after the
// first do nothing.
//
// The listener goes first (listener.go): it stops accepting, disconnects
// its clients and waits for every connection, at most closeWait for one
// that never sent CONNECT. The clients are listed here with GetAll rather
// than by mochi's Close: mochi v2.7.9 lists a listener's clients holding
// its clients' read lock and takes that read lock again inside
// (Clients.GetByListener calls Len), so a session ending at that moment
// (its Delete waiting for the write lock between the two) deadlocks the
// shutdown; it hung CI once. mochi's Close then finds the listener closed
// and its clients gone.
func (b *Broker) Close() error {
	var err error
	b.closeOnce.Do(func() {
		b.listener.Close(func(string) {
			for _, cl := range b.srv.Clients.GetAll() {
				if cl.Net.Listener == b.listener.ID() {
					_ = b.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
				}
			}
		})
		err = errors.Join(b.srv.Close(), b.listener.closeErr)
	})
	return err
}

// maxPendingWrites is how many messages may wait to be written to one
// client. mochi's default, 8,192, is a channel of that many pointers for
// every session: 64 KiB a device, most of the server's heap with a
// thousand lamps connected, which every garbage collection scans (a
// collection then took some 90 ms of CPU, in the middle of a burst of
// commands). A device is sent its commands and little else, and the
// server takes the devices' messages in process (Subscribe), not as a
// client that subscribes to all of them; a client whose 256 messages wait
// unwritten is not reading, and what comes on is dropped and counted
// (mochi's messages dropped).
const maxPendingWrites = 256

// closeWait bounds Close's wait for the broker's connections to end.
const closeWait = 3 * time.Second

// Addr is the address the broker listens on (with the real port when the
// configured one was 0).
func (b *Broker) Addr() string { return b.listener.Address() }

// Subscribe delivers the messages of filter to h in process, on the
// goroutine of the client that published them: h must return quickly. The
// payload is the broker's; h copies what it keeps.
func (b *Broker) Subscribe(filter string, id int, h func(topic string, payload []byte)) error {
	return b.srv.Subscribe(filter, id, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		h(pk.TopicName, pk.Payload)
	})
}

// Publish hands a message to the broker in process: it is routed to the
// subscribers (at up to qos) before Publish returns, and taken from there
// by the broker's QoS 1 delivery to each device session.
func (b *Broker) Publish(topic string, payload []byte, qos byte) error {
	return b.srv.Publish(topic, payload, false, qos)
}

// ServiceCredentials are the user name and password of the server's own MQTT
// clients. The password is made anew at every start and never stored.
func (b *Broker) ServiceCredentials() (username, password string) {
	return ServiceUsername, b.servicePassword
}

// Check reports whether the broker accepts TCP connections.
func (b *Broker) Check(ctx context.Context) error {
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", b.Addr())
	if err != nil {
		return errors.New("mqtt listener not accepting connections")
	}
	return c.Close()
}

// accessHook authenticates clients at CONNECT and checks every publish and
// subscribe against the client's identity.
type accessHook struct {
	mqtt.HookBase
	b       *Broker
	devices DeviceAuthenticator
	log     *slog.Logger
}

func (h *accessHook) ID() string { return "lookout-access" }

func (h *accessHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *accessHook) identify(username, password []byte) (Identity, bool) {
	if string(username) == ServiceUsername {
		ok := subtle.ConstantTimeCompare(password, []byte(h.b.servicePassword)) == 1
		return Identity{Service: true}, ok
	}
	if h.devices == nil || len(username) == 0 {
		return Identity{}, false
	}
	id, ok := h.devices.AuthenticateDevice(string(username), string(password))
	return Identity{DeviceID: id}, ok
}

func (h *accessHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if len(pk.Connect.Username) == 0 {
		h.b.refused.WithLabelValues("anonymous").Inc()
		h.log.Warn("mqtt connection refused", "reason", "anonymous", "client_id", cl.ID, "remote", cl.Net.Remote)
		return false
	}
	if _, ok := h.identify(pk.Connect.Username, pk.Connect.Password); !ok {
		h.b.refused.WithLabelValues("bad_credentials").Inc()
		h.log.Warn("mqtt connection refused", "reason", "bad credentials", "username", string(pk.Connect.Username), "remote", cl.Net.Remote)
		return false
	}
	return true
}

func (h *accessHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	username := cl.Properties.Username
	if string(username) == ServiceUsername {
		return true
	}
	if h.devices != nil && h.devices.DeviceMayAccess(string(username), topic, write) {
		return true
	}
	h.b.refused.WithLabelValues("acl").Inc()
	return false
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}

// levelFloor drops records below min.
type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (h levelFloor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelFloor) WithAttrs(as []slog.Attr) slog.Handler {
	return levelFloor{Handler: h.Handler.WithAttrs(as), min: h.min}
}

func (h levelFloor) WithGroup(name string) slog.Handler {
	return levelFloor{Handler: h.Handler.WithGroup(name), min: h.min}
}

// DisconnectUser closes every session of the given MQTT user name, for a
// device whose credentials changed: it must connect again with the new ones.
// It returns how many sessions it closed.
func (b *Broker) DisconnectUser(username string) int {
	n := 0
	for _, cl := range b.srv.Clients.GetAll() {
		if string(cl.Properties.Username) == username && !cl.Closed() {
			_ = b.srv.DisconnectClient(cl, packets.ErrNotAuthorized)
			n++
		}
	}
	return n
}
