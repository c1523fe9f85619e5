package pionlog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// Pion's warnings are debug; its errors go out at the factory's level,
// with the subsystem named.
func TestLevels(t *testing.T) {
	for _, errLevel := range []slog.Level{slog.LevelWarn, slog.LevelError} {
		var out bytes.Buffer
		f := Factory{Log: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo})), ErrorLevel: errLevel}
		l := f.NewLogger("ice")
		l.Warnf("pair %d not there yet", 3)
		l.Errorf("read: %s", "closed")
		got := out.String()
		if strings.Contains(got, "not there yet") {
			t.Fatalf("a pion warning logged above debug: %s", got)
		}
		if !strings.Contains(got, "level="+errLevel.String()) || !strings.Contains(got, `msg="read: closed"`) || !strings.Contains(got, "pion=ice") {
			t.Fatalf("error at %s: %s", errLevel, got)
		}
	}
}

// Pion's debug lines are not formatted even for a debug log (formatting
// one races with pion's own goroutines).
func TestDebugLinesLeftOut(t *testing.T) {
	var out bytes.Buffer
	f := Factory{Log: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})), ErrorLevel: slog.LevelError}
	l := f.NewLogger("pc")
	l.Debugf("new track: %+v", struct{ SSRC uint32 }{1})
	l.Tracef("packet %d", 1)
	l.Warnf("pair %d not there yet", 3)
	got := out.String()
	if strings.Contains(got, "new track") || strings.Contains(got, "packet 1") || !strings.Contains(got, "not there yet") {
		t.Fatalf("a debug log: %s", got)
	}
}
