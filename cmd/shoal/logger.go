package main

import (
	"log/slog"
)

// nodeLogger is the running node's log: one line per download started,
// finished or failed, and warnings, on stderr (JSON lines with --json).
func nodeLogger(a *app) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if a.json {
		return slog.New(slog.NewJSONHandler(a.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(a.stderr, opts))
}
