package server

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lookout-cc/lookout/ingest/ais"
	"github.com/lookout-cc/lookout/internal/testpeers"
)

// An AIS receiver publishes NMEA over MQTT (mosquitto_pub): each vessel
// becomes a device in the receiver's site with its position as telemetry
// and its name and ship type from the static report; a corrupt sentence is
// counted and the lines around it still count.
func TestAISReceiverMakesVessels(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	tok, _ := provision(t, base)
	st, b := getJSON(t, "POST", base+"/api/v1/devices", tok, map[string]any{"id": "port-ais-2", "kind": "ais_receiver", "name": "港口AIS基站", "site_id": "bht", "lat": 27.2, "lon": 102.9})
	if st != 201 {
		t.Fatalf("receiver: %d %v", st, b)
	}
	pass := b["mqtt"].(map[string]any)["password"].(string)

	enc := ais.NewEncoder()
	lines := append([]string{}, enc.Static(412345678, "MIN HAI YU 01", 30)...)
	lines = append(lines, "!AIVDM,1,1,,B,177KQJ5000G?tO`K>RA1wUbN0TKH,0*00") // bad checksum
	lines = append(lines, enc.Position(412345678, 24.4475, 118.0712, 8.5, 135.2, 134)...)
	lines = append(lines, enc.ClassBPosition(412999001, 24.45, 118.08, 3.2, 270, 511)...)
	host, port, _ := strings.Cut(s.MQTTAddr(), ":")
	pub, err := testpeers.FindBinary("mosquitto_pub", "", "/usr/bin/mosquitto_pub")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pub, "-h", host, "-p", port, "-u", "port-ais-2", "-P", pass, "-V", "311", "-q", "1", "-t", "lookout/v1/devices/port-ais-2/nmea", "-s")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\r\n"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub: %v %s", err, out)
	}

	var vessel map[string]any
	waitFor(t, 5*time.Second, func() bool {
		st, v := getJSON(t, "GET", base+"/api/v1/devices/vessel-412345678", tok, nil)
		vessel = v
		latest, _ := v["latest"].(map[string]any)
		return st == 200 && latest["lat"] != nil
	})
	latest := vessel["latest"].(map[string]any)
	if vessel["kind"] != "vessel" || vessel["name"] != "MIN HAI YU 01" || vessel["site_id"] != "bht" || vessel["org_id"] != "qj" ||
		vessel["meta"].(map[string]any)["ship_type"] != "30" {
		t.Fatalf("vessel device: %v", vessel)
	}
	for metric, want := range map[string]float64{"lat": 24.4475, "lon": 118.0712, "sog": 8.5, "cog": 135.2, "heading": 134} {
		got := latest[metric].(map[string]any)["value"].(float64)
		if d := got - want; d > 0.001 || d < -0.001 {
			t.Errorf("%s = %v, want %v", metric, got, want)
		}
	}
	_, classB := getJSON(t, "GET", base+"/api/v1/devices/vessel-412999001", tok, nil)
	if _, has := classB["latest"].(map[string]any)["heading"]; has || classB["name"] != "MMSI 412999001" {
		t.Fatalf("class B vessel (no heading, no name yet): %v", classB)
	}
	if v := metricValue(t, base, `lookout_ingest_rejected_total{reason="bad_nmea"}`); v != 1 {
		t.Fatalf("bad_nmea counted %v", v)
	}
}

// A vessel with its own GPS tracker reports JSON positions like any device.
func TestVesselJSONPositions(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Bootstrap.AdminPassword = "admin-password"
	s := start(t, cfg, nil)
	defer stop(t, s)
	base := "http://" + s.HTTPAddr()
	tok, _ := provision(t, base)
	st, b := getJSON(t, "POST", base+"/api/v1/devices", tok, map[string]any{"id": "patrol-boat-1", "kind": "vessel", "name": "巡逻艇1号", "site_id": "bht", "lat": 27.2, "lon": 102.9})
	if st != 201 {
		t.Fatalf("vessel: %d %v", st, b)
	}
	pass := b["mqtt"].(map[string]any)["password"].(string)
	host, port, _ := strings.Cut(s.MQTTAddr(), ":")
	pub, err := testpeers.FindBinary("mosquitto_pub", "", "/usr/bin/mosquitto_pub")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(pub, "-h", host, "-p", port, "-u", "patrol-boat-1", "-P", pass, "-V", "311", "-q", "1",
		"-t", "lookout/v1/devices/patrol-boat-1/telemetry", "-m", `{"lat": 27.21, "lon": 102.91, "sog": 6.5, "cog": 212.0}`).CombinedOutput()
	if err != nil {
		t.Fatalf("%v %s", err, out)
	}
	waitFor(t, 5*time.Second, func() bool {
		_, d := getJSON(t, "GET", base+"/api/v1/devices/patrol-boat-1", tok, nil)
		l, _ := d["latest"].(map[string]any)
		return len(l) == 4
	})
}
