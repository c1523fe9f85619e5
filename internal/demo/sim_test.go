package demo

import (
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"
)

func TestGaugeCurveAndFlood(t *testing.T) {
	s := NewSimulator(SimParams{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), FloodRisePerMinute: 0.5})
	d := DeviceSpec{ID: "g"}
	d.Sim.BaseM, d.Sim.DailyM = 800, 0.6
	now := time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC) // 15:00 Beijing, near the daily peak
	if l := s.gaugeLevel(d, now); l < 800.4 || l > 800.7 {
		t.Fatalf("afternoon level %v", l)
	}
	s.TriggerFlood()
	s.floodSince.Store(now.Add(-10 * time.Minute).UnixMilli())
	if l := s.gaugeLevel(d, now); l < 805.4 || l > 805.7 {
		t.Fatalf("after 10 minutes of flood at 0.5 m/min: %v", l)
	}
	s.TriggerFlood()
	if l := s.gaugeLevel(d, now); l > 800.7 {
		t.Fatalf("flood did not end: %v", l)
	}
}

func TestLampCommands(t *testing.T) {
	l := &lampState{}
	now := time.Now()
	tests := []struct {
		cmd string
		ok  bool
	}{
		{`{"id":"1","name":"set_power","params":{"on":true}}`, true},
		{`{"id":"2","name":"set_brightness","params":{"level":30}}`, true},
		{`{"id":"3","name":"set_brightness","params":{"level":101}}`, false},
		{`{"id":"4","name":"set_power","params":{}}`, false},
		{`{"id":"5","name":"reboot","params":{}}`, false},
		{`{"id":"6","name":"set_power","params":{"on":false},"expires_at":1}`, false},
	}
	for _, tt := range tests {
		var c command
		if err := json.Unmarshal([]byte(tt.cmd), &c); err != nil {
			t.Fatal(err)
		}
		if err := l.apply(c, now); (err == nil) != tt.ok {
			t.Errorf("%s: %v", tt.cmd, err)
		}
	}
	if !l.on || l.brightness != 30 {
		t.Fatalf("lamp state %+v", l)
	}
	// Command 2 again (a repeat after the lamp went away before acking):
	// answered as before, not carried out again over command 2.
	l.brightness = 55
	if err := l.apply(command{ID: "2", Name: "set_brightness", Params: json.RawMessage(`{"level":30}`)}, now); err != nil || l.brightness != 55 {
		t.Fatalf("repeat carried out again: %v %d", err, l.brightness)
	}
	if err := l.apply(command{ID: "3", Name: "set_brightness", Params: json.RawMessage(`{"level":101}`)}, now); err == nil {
		t.Fatal("a repeat of a refused command answered ok")
	}
}
