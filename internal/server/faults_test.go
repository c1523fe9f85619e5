package server

import (
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	lookoutmqtt "github.com/lookout-cc/lookout/ingest/mqtt"
	"github.com/lookout-cc/lookout/internal/config"
	"github.com/lookout-cc/lookout/internal/testpeers"
)

// publisher is a device's paho client with a persistent session, as a
// well-behaved gauge would have.
func publisher(t *testing.T, url, user, pass string) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID("pub-" + user).SetUsername(user).SetPassword(pass).
		SetProtocolVersion(4).SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(200 * time.Millisecond).SetMaxReconnectInterval(500 * time.Millisecond).
		SetStore(lookoutmqtt.NewInboundOnlyStore()) // publishQoS1 retries; see the store's comment
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// publishQoS1 publishes until the broker has acknowledged the message,
// retrying across a broker outage; a retry may duplicate, which the store's
// idempotent writes absorb.
func publishQoS1(t *testing.T, c paho.Client, topic, payload string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Publish only while connected: paho's resume of messages stored
		// while connecting races with its sender (seen with -race).
		for !c.IsConnectionOpen() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		tok := c.Publish(topic, 1, false, payload)
		if tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish not acknowledged within 30 s: %v", tok.Error())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func externalConfig(t *testing.T, mosq *testpeers.Mosquitto) config.Config {
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	cfg.MQTT.Mode = "external"
	cfg.MQTT.External = config.ExternalMQTT{URL: mosq.URL, Username: "lookout-node", Password: "node-password", ClientID: "lookout-test", SharedGroup: "lookout"}
	return cfg
}

func waitCount(t *testing.T, within time.Duration, want int, count func() int) {
	t.Helper()
	got := count()
	if !eventually(within, func() bool { got = count(); return got == want }) {
		t.Fatalf("%d points stored after %s, want %d", got, within, want)
	}
}

// InfluxDB is killed while points flow; 5,000 points published meanwhile
// wait in the spool and all arrive, each once, when it is back.
func TestInfluxDBDownNothingLost(t *testing.T) {
	mosq := testpeers.StartMosquitto(t, testpeers.MosquittoOptions{Users: map[string]string{"lookout-node": "node-password", "gauge-1": "gauge-password"}})
	influx := testpeers.StartInfluxDB(t)
	cfg := externalConfig(t, mosq)
	cfg.TSDB.Backend = "influxdb"
	cfg.TSDB.InfluxDB = config.InfluxDB{URL: influx.URL, Token: config.Secret(influx.Token), Org: influx.Org, Bucket: influx.Bucket}
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	tok, _ := provision(t, base, "gauge-1")
	waitHealth(t, base, 200, 15*time.Second)

	pub := publisher(t, mosq.URL, "gauge-1", "gauge-password")
	t0 := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	const total = 5000
	for i := 0; i < total; i++ {
		if i == 1000 {
			influx.Kill()
		}
		publishQoS1(t, pub, "lookout/v1/devices/gauge-1/telemetry", fmt.Sprintf(`{"ts": %d, "water_level_m": %d}`, t0.UnixMilli()+int64(i), i))
	}
	waitFor(t, 20*time.Second, func() bool { return metricValue(t, base, "lookout_ingest_messages_total") == total })
	if metricValue(t, base, "lookout_ingest_spool_points") == 0 {
		t.Fatal("nothing waited in the spool while InfluxDB was down")
	}
	influx.Start()
	count := func() int { return pointCount(t, base, tok, "gauge-1", "water_level_m", t0, t0.Add(time.Hour)) }
	waitCount(t, 60*time.Second, total, count)

	// Each exactly once: the values are 0..4999, each present.
	_, b := getJSON(t, "GET", fmt.Sprintf("%s/api/v1/devices/gauge-1/telemetry?metric=water_level_m&from=%d&to=%d", base, t0.UnixMilli(), t0.Add(time.Hour).UnixMilli()), tok, nil)
	seen := make([]bool, total)
	for _, p := range b["points"].([]any) {
		v := int(p.(map[string]any)["value"].(float64))
		if v < 0 || v >= total || seen[v] {
			t.Fatalf("value %d out of range or twice", v)
		}
		seen[v] = true
	}
	if metricValue(t, base, `lookout_ingest_points_dropped_total{cause="spool_full"}`) != 0 {
		t.Fatal("points dropped")
	}
	waitFor(t, 10*time.Second, func() bool { return metricValue(t, base, "lookout_ingest_spool_points") == 0 })
}

// Mosquitto is stopped and started again mid-stream: no QoS 1 message is
// lost, neither the device's nor the server's session loses one. The node
// subscribes plainly (no shared group): Mosquitto 2.0 does not restore
// shared subscriptions after its restart (see config ExternalMQTT).
func TestBrokerRestartNoQoS1Loss(t *testing.T) {
	mosq := testpeers.StartMosquitto(t, testpeers.MosquittoOptions{Users: map[string]string{"lookout-node": "node-password", "gauge-1": "gauge-password"}})
	cfg := externalConfig(t, mosq)
	cfg.MQTT.External.SharedGroup = ""
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	tok, _ := provision(t, base, "gauge-1")
	waitHealth(t, base, 200, 15*time.Second)

	pub := publisher(t, mosq.URL, "gauge-1", "gauge-password")
	t0 := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	const total = 3000
	for i := 0; i < total; i++ {
		if i == 1000 {
			mosq.Restart()
		}
		publishQoS1(t, pub, "lookout/v1/devices/gauge-1/telemetry", fmt.Sprintf(`{"ts": %d, "water_level_m": %d}`, t0.UnixMilli()+int64(i), i))
	}
	count := func() int { return pointCount(t, base, tok, "gauge-1", "water_level_m", t0, t0.Add(time.Hour)) }
	waitCount(t, 30*time.Second, total, count)
	if metricValue(t, base, "lookout_mqtt_connection_lost_total") < 1 {
		t.Fatal("the server never noticed the broker going away")
	}
}

// Two nodes in one shared group split the messages: each is taken by one
// node, none by both, none by neither.
func TestSharedSubscriptionSplitsLoad(t *testing.T) {
	mosq := testpeers.StartMosquitto(t, testpeers.MosquittoOptions{Users: map[string]string{"lookout-node": "node-password", "gauge-1": "gauge-password"}})
	var bases []string
	for i := 0; i < 2; i++ {
		cfg := externalConfig(t, mosq)
		cfg.MQTT.External.ClientID = fmt.Sprintf("lookout-node-%d", i)
		s := start(t, cfg, nil)
		defer stop(t, s)
		base := "http://" + s.HTTPAddr()
		provision(t, base, "gauge-1") // each node's own registry, until state is shared
		waitHealth(t, base, 200, 15*time.Second)
		bases = append(bases, base)
	}
	pub := publisher(t, mosq.URL, "gauge-1", "gauge-password")
	const total = 1000
	t0 := time.Now().Add(-time.Minute).UnixMilli()
	for i := 0; i < total; i++ {
		publishQoS1(t, pub, "lookout/v1/devices/gauge-1/telemetry", fmt.Sprintf(`{"ts": %d, "v": %d}`, t0+int64(i), i))
	}
	var a, b float64
	waitFor(t, 10*time.Second, func() bool {
		a, b = metricValue(t, bases[0], "lookout_ingest_messages_total"), metricValue(t, bases[1], "lookout_ingest_messages_total")
		return a+b == total
	})
	if a == 0 || b == 0 {
		t.Fatalf("one node took everything: %v and %v", a, b)
	}
}
