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
