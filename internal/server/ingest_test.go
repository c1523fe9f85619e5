package server

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/internal/testpeers"
)

// admin logs in and makes a site and devices; it returns the token and each
// device's MQTT password.
func provision(t *testing.T, base string, deviceIDs ...string) (string, map[string]string) {
	t.Helper()
	st, login := getJSON(t, "POST", base+"/api/v1/auth/login", "", map[string]string{"username": "admin", "password": "admin-password"})
	if st != 200 {
		t.Fatalf("login: %d", st)
	}
	tok := login["token"].(string)
	if st, b := getJSON(t, "POST", base+"/api/v1/sites", tok, map[string]any{"id": "bht", "name": "白鹤滩", "kind": "reservoir", "org_id": "qj", "lat": 27.2, "lon": 102.9}); st != 201 {
		t.Fatalf("site: %d %v", st, b)
	}
	creds := map[string]string{}
	for _, id := range deviceIDs {
		st, b := getJSON(t, "POST", base+"/api/v1/devices", tok, map[string]any{"id": id, "kind": "water_level", "name": id, "site_id": "bht", "lat": 27.2, "lon": 102.9})
		if st != 201 {
			t.Fatalf("device: %d %v", st, b)
		}
		creds[id] = b["mqtt"].(map[string]any)["password"].(string)
	}
	return tok, creds
}

func metricValue(t *testing.T, base, series string) float64 {
	t.Helper()
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

func pointCount(t *testing.T, base, tok, device, metric string, from, to time.Time) int {
	t.Helper()
	url := fmt.Sprintf("%s/api/v1/devices/%s/telemetry?metric=%s&from=%d&to=%d", base, device, metric, from.UnixMilli(), to.UnixMilli())
	st, b := getJSON(t, "GET", url, tok, nil)
	if st != http.StatusOK {
		t.Fatalf("telemetry: %d %v", st, b)
	}
	return len(b["points"].([]any))
}

// Every refusal reason, published by a real mosquitto client into the
// embedded broker, is counted; the good messages around them all land.
func TestEveryRejectionIsCountedAndGoodMessagesLand(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	tok, creds := provision(t, base, "gauge-1")
	host, port, _ := strings.Cut(s.MQTTAddr(), ":")
	pub, err := testpeers.FindBinary("mosquitto_pub", "", "/usr/bin/mosquitto_pub")
	if err != nil {
		t.Fatal(err)
	}
	publish := func(user, pass, topic, payload string) {
		t.Helper()
		cmd := exec.Command(pub, "-h", host, "-p", port, "-u", user, "-P", pass, "-V", "311", "-q", "1", "-t", topic, "-s")
		cmd.Stdin = strings.NewReader(payload)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_pub %s: %v %s", topic, err, out)
		}
	}
	own := "lookout/v1/devices/gauge-1/telemetry"
	svcUser, svcPass := s.broker.ServiceCredentials()
	ts := time.Now().Add(-time.Minute).Truncate(time.Second)
	good := func(i int) string {
		return fmt.Sprintf(`{"ts": %d, "values": {"water_level_m": %d}}`, ts.Add(time.Duration(i)*time.Second).UnixMilli(), 800+i)
	}
	many := make([]string, 300)
	for i := range many {
		many[i] = fmt.Sprintf(`"k%d": %d`, i, i)
	}
	bad := []struct {
		reason      string
		user, topic string
		payload     string
	}{
		{"malformed", "gauge-1", own, `{"water_level_m": 1712.4`},
		{"nan_inf", "gauge-1", own, `{"water_level_m": 1e400}`},
		{"nested", "gauge-1", own, `{"water_level_m": {"value": 1}}`},
		{"too_large", "gauge-1", own, `{"x": "` + strings.Repeat("a", 70_000) + `"}`},
		{"too_many_keys", "gauge-1", own, "{" + strings.Join(many, ",") + "}"},
		{"bad_ts", "gauge-1", own, `{"ts": 12, "water_level_m": 1}`},
		{"bad_value", "gauge-1", own, `{"water_level_m": null}`},
		{"bad_metric", "gauge-1", own, `{"water level": 1}`},
		{"empty", "gauge-1", own, `{}`},
		{"unknown_device", svcUser, "lookout/v1/devices/ghost/telemetry", good(0)},
		{"wrong_topic", svcUser, "lookout/v1/devices//telemetry", good(0)},
	}
	pass := func(user string) string {
		if user == svcUser {
			return svcPass
		}
		return creds[user]
	}
	for i, b := range bad {
		publish("gauge-1", creds["gauge-1"], own, good(2*i))
		publish(b.user, pass(b.user), b.topic, b.payload)
	}
	publish("gauge-1", creds["gauge-1"], own, good(2*len(bad)))

	for _, b := range bad {
		series := `lookout_ingest_rejected_total{reason="` + b.reason + `"}`
		if !eventually(5*time.Second, func() bool { return metricValue(t, base, series) == 1 }) {
			v := metricValue(t, base, series)
			t.Errorf("%s = %v, want 1", series, v)
		}
	}
	want := len(bad) + 1
	count := func() int { return pointCount(t, base, tok, "gauge-1", "water_level_m", ts, ts.Add(time.Hour)) }
	waitCount(t, 5*time.Second, want, count)
	_, dev := getJSON(t, "GET", base+"/api/v1/devices/gauge-1", tok, nil)
	if v := dev["latest"].(map[string]any)["water_level_m"].(map[string]any)["value"]; v != float64(800+2*len(bad)) {
		t.Fatalf("latest value %v", v)
	}
}
