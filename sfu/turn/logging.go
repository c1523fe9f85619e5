package turn

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// slogFactory sends pion/turn's logs into the server's slog logger, one
// scope per pion subsystem (a copy of sfu/rtc's adapter, which is not
// exported). Pion's trace, debug, info and warnings become debug: they
// come with every allocation's ordinary life (a permission refused, a
// client gone). Pion's errors become warnings, not errors: on a port open
// to the internet most of them are caused by what a remote, possibly
// unauthenticated, client sends.
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
func (l slogLogger) Error(msg string)                  { l.logf(slog.LevelWarn, "%s", msg) }
func (l slogLogger) Errorf(format string, args ...any) { l.logf(slog.LevelWarn, format, args...) }
