// Package mqtt is the server's own MQTT client (paho): one long-lived
// connection to the embedded broker or to an external one (Mosquitto, EMQX),
// with a persistent session, automatic reconnect with backoff, and its
// subscriptions made again on every connect. Telemetry ingestion hangs its
// handlers on it.
package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
)

// brokerClient is the part of paho's client this package uses.
type brokerClient interface {
	Connect() paho.Token
	Disconnect(quiesce uint)
	IsConnectionOpen() bool
	Publish(topic string, qos byte, retained bool, payload any) paho.Token
	AddRoute(topic string, callback paho.MessageHandler)
}

// Handler receives a message: its topic and payload. It runs on paho's
// goroutines; a handler that blocks holds back further messages (and, at
// QoS 1, their acknowledgement), which is the backpressure the ingest path
// wants.
type Handler func(topic string, payload []byte)

// Params configure the client.
type Params struct {
	// URL is the broker, e.g. tcp://127.0.0.1:1883.
	URL      string
	Username string
	Password string
	// ClientID must be stable across restarts, so that the broker keeps the
	// persistent session (and the QoS 1 messages queued in it) meanwhile.
	ClientID string
	// MaxReconnectInterval caps the doubling wait between reconnects.
	MaxReconnectInterval time.Duration
	Log                  *slog.Logger
	Metrics              prometheus.Registerer
}

// Client is the server's connection to the broker.
//
// Lifecycle: New, Start once, Close once. Start does not wait for the
// broker: a broker that is down at start is retried until it is up, and
// Check reports the state meanwhile.
type Client struct {
	p         Params
	c         brokerClient
	connected prometheus.Gauge
	lost      prometheus.Counter

	mu      sync.Mutex
	lastErr error
	subs    []subscription
}

type subscription struct {
	filter  string
	qos     byte
	handler Handler
}

// New builds the client; it does not connect until Start.
func New(p Params) (*Client, error) {
	if p.MaxReconnectInterval <= 0 {
		p.MaxReconnectInterval = 30 * time.Second
	}
	c := &Client{
		p: p,
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lookout_mqtt_connected",
			Help: "1 while the server's MQTT client is connected to the broker.",
		}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lookout_mqtt_connection_lost_total",
			Help: "Times the server's MQTT connection to the broker was lost.",
		}),
	}
	for _, m := range []prometheus.Collector{c.connected, c.lost} {
		if err := p.Metrics.Register(m); err != nil {
			return nil, err
		}
	}
	opts := paho.NewClientOptions().
		AddBroker(p.URL).
		SetClientID(p.ClientID).
		SetUsername(p.Username).
		SetPassword(p.Password).
		SetProtocolVersion(4).
		SetCleanSession(false).
		SetStore(NewInboundOnlyStore()).
		// Handlers run one at a time on paho's router goroutine: messages
		// keep their order, and a handler that waits (a full ingest queue)
		// stops reading from the broker instead of piling up goroutines.
		SetOrderMatters(true).
		SetKeepAlive(30 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(p.MaxReconnectInterval).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetOnConnectHandler(c.onConnect).
		SetConnectionLostHandler(c.onConnectionLost).
		SetConnectionAttemptHandler(func(broker *url.URL, cfg *tls.Config) *tls.Config {
			p.Log.Debug("mqtt connecting", "broker", broker.Redacted())
			return cfg
		})
	if u, err := url.Parse(p.URL); err == nil && u.Scheme != "ws" && u.Scheme != "wss" {
		opts.SetCustomOpenConnectionFn(openBuffered)
	}
	c.c = paho.NewClient(opts)
	return c, nil
}

// Start begins connecting in the background.
func (c *Client) Start() {
	c.mu.Lock()
	for _, sub := range c.subs {
		h := sub.handler
		c.c.AddRoute(sub.filter, func(_ paho.Client, m paho.Message) { h(m.Topic(), m.Payload()) })
	}
	c.mu.Unlock()
	tok := c.c.Connect()
	go func() {
		// With ConnectRetry the token completes only once connected, or
		// with an error that no retry will mend (the client was closed).
		tok.Wait()
		if err := tok.Error(); err != nil {
			c.setErr(err)
		}
	}()
}

// Subscribe registers a handler for a topic filter. Call it before Start:
// the subscriptions are made on every connect, so they come back after a
// reconnect even when the broker lost the session.
func (c *Client) Subscribe(filter string, qos byte, h Handler) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subs = append(c.subs, subscription{filter: filter, qos: qos, handler: h})
}

func (c *Client) onConnect(pc paho.Client) {
	c.connected.Set(1)
	c.setErr(nil)
	c.p.Log.Info("mqtt connected", "broker", c.p.URL, "client_id", c.p.ClientID)
	c.mu.Lock()
	filters := make(map[string]byte, len(c.subs))
	for _, sub := range c.subs {
		filters[sub.filter] = sub.qos
	}
	c.mu.Unlock()
	if len(filters) == 0 {
		return
	}
	// One SUBSCRIBE for every filter: taken one by one, a device's status
	// could arrive, and a command be sent and acked, before the ack filter
	// was in place. Messages go to the handlers by the routes added in Start.
	tok := pc.SubscribeMultiple(filters, nil)
	// paho runs this handler on a goroutine of its own, so waiting for the
	// SUBACK here holds up nothing else.
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		c.p.Log.Error("mqtt subscribe failed; will retry on reconnect", "filters", len(filters), "err", tok.Error())
	}
}

// Publish sends a message and waits up to timeout for the broker to take it
// (at QoS 1, its PUBACK).
//
// It refuses at once while the client is not connected rather than let
// paho store the message for its reconnect: the caller keeps it and retries
// (paho's resume of messages stored while connecting races with its own
// sender).
func (c *Client) Publish(topic string, qos byte, retained bool, payload []byte, timeout time.Duration) error {
	if !c.c.IsConnectionOpen() {
		return fmt.Errorf("publish to %s: not connected to %s", topic, c.p.URL)
	}
	tok := c.c.Publish(topic, qos, retained, payload)
	if !tok.WaitTimeout(timeout) {
		return fmt.Errorf("publish to %s: no answer within %s", topic, timeout)
	}
	return tok.Error()
}

func (c *Client) onConnectionLost(_ paho.Client, err error) {
	c.connected.Set(0)
	c.lost.Inc()
	c.setErr(err)
	c.p.Log.Warn("mqtt connection lost; reconnecting", "broker", c.p.URL, "err", err)
}

func (c *Client) setErr(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastErr = err
}

// Check reports whether the client is connected to the broker.
func (c *Client) Check(context.Context) error {
	if c.c.IsConnectionOpen() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastErr != nil {
		return fmt.Errorf("not connected to %s: %v", c.p.URL, c.lastErr)
	}
	return errors.New("not connected to " + c.p.URL)
}

// Close disconnects, letting in-flight work finish for up to 250 ms.
func (c *Client) Close() {
	c.c.Disconnect(250)
	c.connected.Set(0)
}
