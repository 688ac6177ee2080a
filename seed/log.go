package seed

import (
	"context"
	"log/slog"
)

// partsLogger is the logger the node hands its parts (overlay, DHT,
// discovery, swarm): the node's own, from Warn up, so that the node's Info
// log stays one line per download started, finished or failed. Their
// Debug lines show with SHOAL_DEBUG, which sets a Debug handler.
func partsLogger(l *slog.Logger) *slog.Logger {
	if l.Enabled(context.Background(), slog.LevelDebug) {
		return l
	}
	return slog.New(minLevel{level: slog.LevelWarn, Handler: l.Handler()})
}

// minLevel drops records below level.
type minLevel struct {
	level slog.Level
	slog.Handler
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.level, h.Handler.WithAttrs(as)}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.level, h.Handler.WithGroup(name)}
}
