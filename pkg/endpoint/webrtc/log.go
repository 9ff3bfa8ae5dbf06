package webrtc

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// SlogFactory routes pion's logs into the server's slog logger, tagged with pion's scope
// ("ice", "dtls", …). pion's errors are about one peer's connection (a bad packet, a failed
// handshake), not about the server, so they come out as warnings; its info and below as debug.
// A datagram for a just-closed ICE connection is routine and not logged.
type SlogFactory struct{ Log *slog.Logger }

// NewLogger implements logging.LoggerFactory.
func (f SlogFactory) NewLogger(scope string) logging.LeveledLogger {
	// The scope is added when something is logged, not here: pion makes a dozen loggers per
	// connection, and a With per logger would cost every endpoint memory for nothing.
	return slogLogger{log: f.Log, scope: scope, quiet: scope == "ice-mux"}
}

type slogLogger struct {
	log   *slog.Logger
	scope string
	quiet bool
}

func (l slogLogger) emit(level slog.Level, msg string) {
	if l.quiet && level > slog.LevelDebug {
		level = slog.LevelDebug
	}
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, msg, "component", "pion", "scope", l.scope)
	}
}

func (l slogLogger) emitf(level slog.Level, format string, args ...any) {
	if l.quiet && level > slog.LevelDebug {
		level = slog.LevelDebug
	}
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...), "component", "pion", "scope", l.scope)
	}
}

func (l slogLogger) Trace(msg string)                  { l.emit(slog.LevelDebug-4, msg) }
func (l slogLogger) Tracef(format string, args ...any) { l.emitf(slog.LevelDebug-4, format, args...) }
func (l slogLogger) Debug(msg string)                  { l.emit(slog.LevelDebug, msg) }
func (l slogLogger) Debugf(format string, args ...any) { l.emitf(slog.LevelDebug, format, args...) }
func (l slogLogger) Info(msg string)                   { l.emit(slog.LevelDebug, msg) }
func (l slogLogger) Infof(format string, args ...any)  { l.emitf(slog.LevelDebug, format, args...) }
func (l slogLogger) Warn(msg string)                   { l.emit(slog.LevelWarn, msg) }
func (l slogLogger) Warnf(format string, args ...any)  { l.emitf(slog.LevelWarn, format, args...) }
func (l slogLogger) Error(msg string)                  { l.emit(slog.LevelWarn, msg) }
func (l slogLogger) Errorf(format string, args ...any) { l.emitf(slog.LevelWarn, format, args...) }
