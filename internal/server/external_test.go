package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/internal/config"
	"github.com/lookout-cc/lookout/internal/testpeers"
)

// waitHealth polls /healthz until it answers status, and returns the
// components' states as JSON.
func waitHealth(t *testing.T, base string, status int, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got, body := getJSON(t, "GET", base+"/healthz", "", nil)
		comps, _ := json.Marshal(body["components"])
		if got == status {
			return string(comps)
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz still %d after %s, want %d: %s", got, within, status, comps)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The production shape: an external Mosquitto and InfluxDB 1.8. /healthz
// follows each of them down and back up, and a broker that is down when the
// server starts is connected once it comes up.
func TestExternalBrokerAndInfluxDB(t *testing.T) {
	mosq := testpeers.StartMosquitto(t, testpeers.MosquittoOptions{Users: map[string]string{"lookout-node": "node-password"}})
	influx := testpeers.StartInfluxDB(t)

	mosq.Stop() // down at start
	cfg := testConfig(t, t.TempDir())
	cfg.MQTT.Mode = "external"
	cfg.MQTT.External = config.ExternalMQTT{URL: mosq.URL, Username: "lookout-node", Password: "node-password", ClientID: "lookout-test", SharedGroup: "lookout"}
	cfg.TSDB.Backend = "influxdb"
	cfg.TSDB.InfluxDB = config.InfluxDB{URL: influx.URL, Token: config.Secret(influx.Token), Org: influx.Org, Bucket: influx.Bucket}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	if s.MQTTAddr() != "" {
		t.Fatal("an embedded broker runs in external mode")
	}

	comps := waitHealth(t, base, 503, 5*time.Second)
	if !strings.Contains(comps, `"name":"mqtt_client","ok":false`) || !strings.Contains(comps, `"name":"tsdb","ok":true`) {
		t.Fatalf("broker down at start: %s", comps)
	}
	mosq.Start()
	comps = waitHealth(t, base, 200, 15*time.Second)
	if strings.Contains(comps, "mqtt_broker") {
		t.Fatalf("embedded broker checked in external mode: %s", comps)
	}

	mosq.Restart() // a broker restart
	waitHealth(t, base, 200, 15*time.Second)
	mosq.Stop()
	comps = waitHealth(t, base, 503, 5*time.Second)
	if !strings.Contains(comps, `"name":"mqtt_client","ok":false`) {
		t.Fatalf("broker down: %s", comps)
	}
	mosq.Start()
	waitHealth(t, base, 200, 40*time.Second)

	influx.Stop()
	comps = waitHealth(t, base, 503, 5*time.Second)
	if !strings.Contains(comps, `"name":"tsdb","ok":false`) || !strings.Contains(comps, `"name":"mqtt_client","ok":true`) {
		t.Fatalf("influxdb down: %s", comps)
	}
	influx.Start()
	waitHealth(t, base, 200, 10*time.Second)
}

// Wrong InfluxDB credentials are reported by /healthz, without the token.
func TestInfluxDBWrongCredentials(t *testing.T) {
	influx := testpeers.StartInfluxDB(t)
	cfg := testConfig(t, t.TempDir())
	cfg.TSDB.Backend = "influxdb"
	cfg.TSDB.InfluxDB = config.InfluxDB{URL: influx.URL, Token: "lookout:not-the-password", Org: influx.Org, Bucket: influx.Bucket}
	s := start(t, cfg, nil)
	defer stop(t, s)
	comps := waitHealth(t, "http://"+s.HTTPAddr(), 503, 5*time.Second)
	if !strings.Contains(comps, `"name":"tsdb","ok":false`) || strings.Contains(comps, "not-the-password") {
		t.Fatalf("wrong influx credentials: %s", comps)
	}
}
