package rtc

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// slogFactory sends pion's logs into the server's slog logger, one scope
// per pion subsystem. Pion's trace, debug and info become debug, and its
// warnings too: they come with every session's ordinary life (a candidate
// pair not there yet, streams closed as a viewer leaves), and the session
// layer logs what became of each session. Pion's errors stay errors.
type slogFactory struct{ log *slog.Logger }

func (f slogFactory) NewLogger(scope string) logging.LeveledLogger {
	return slogLogger{log: f.log.With("pion", scope)}
}

type slogLogger struct{ log *slog.Logger }

func (l slogLogger) logf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (l slogLogger) Trace(msg string)                  { l.logf(slog.LevelDebug, "%s", msg) }
func (l slogLogger) Tracef(format string, args ...any) { l.logf(slog.LevelDebug, format, args...) }
func (l slogLogger) Debug(msg string)                  { l.logf(slog.LevelDebug, "%s", msg) }
func (l slogLogger) Debugf(format string, args ...any) { l.logf(slog.LevelDebug, format, args...) }
func (l slogLogger) Info(msg string)                   { l.logf(slog.LevelDebug, "%s", msg) }
func (l slogLogger) Infof(format string, args ...any)  { l.logf(slog.LevelDebug, format, args...) }
func (l slogLogger) Warn(msg string)                   { l.logf(slog.LevelDebug, "%s", msg) }
func (l slogLogger) Warnf(format string, args ...any)  { l.logf(slog.LevelDebug, format, args...) }
func (l slogLogger) Error(msg string)                  { l.logf(slog.LevelError, "%s", msg) }
func (l slogLogger) Errorf(format string, args ...any) { l.logf(slog.LevelError, format, args...) }
