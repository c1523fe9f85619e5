// Package pionlog sends pion's logs (webrtc, ice, dtls, turn) into the
// server's slog logger, one scope per pion subsystem.
//
// Pion's info and warnings become debug, its trace and debug LevelTrace,
// below debug, which no handler of ours enables: they come with
// every session's ordinary life (a candidate pair not there yet, streams
// closed as a viewer leaves, a TURN permission refused), and the session
// layers log what became of each session. Pion's errors go out at the
// factory's ErrorLevel. Pion's own debug lines are left out even of a
// debug log because formatting them is not safe: pion v4.2.20 logs a new
// track with %+v in onTrack while another of its goroutines writes the
// track (a data race the race detector finds in our tests).
package pionlog

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// LevelTrace is the level of pion's trace and debug lines.
const LevelTrace = slog.LevelDebug - 4

// Factory is a pion logging.LoggerFactory.
type Factory struct {
	Log *slog.Logger
	// ErrorLevel is the level of pion's errors: slog.LevelError where
	// they are the server's own trouble, slog.LevelWarn on a port open to
	// the internet, where most are caused by what a remote client sends.
	ErrorLevel slog.Level
}

// NewLogger is the logger of one pion subsystem.
func (f Factory) NewLogger(scope string) logging.LeveledLogger {
	return logger{log: f.Log.With("pion", scope), errLevel: f.ErrorLevel}
}

type logger struct {
	log      *slog.Logger
	errLevel slog.Level
}

func (l logger) logf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (l logger) Trace(msg string)                  { l.logf(LevelTrace, "%s", msg) }
func (l logger) Tracef(format string, args ...any) { l.logf(LevelTrace, format, args...) }
func (l logger) Debug(msg string)                  { l.logf(LevelTrace, "%s", msg) }
func (l logger) Debugf(format string, args ...any) { l.logf(LevelTrace, format, args...) }
func (l logger) Info(msg string)                   { l.logf(slog.LevelDebug, "%s", msg) }
func (l logger) Infof(format string, args ...any)  { l.logf(slog.LevelDebug, format, args...) }
func (l logger) Warn(msg string)                   { l.logf(slog.LevelDebug, "%s", msg) }
func (l logger) Warnf(format string, args ...any)  { l.logf(slog.LevelDebug, format, args...) }
func (l logger) Error(msg string)                  { l.logf(l.errLevel, "%s", msg) }
func (l logger) Errorf(format string, args ...any) { l.logf(l.errLevel, format, args...) }
