package swarm

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Logging follows one vocabulary: constant messages and the attributes
// peer, content, chunk and err. Per-chunk events (a bad chunk, a stalled
// upload) go out at Debug (a local disk failure at Warn) through a chunkLog, which lets at most
// chunkLogBurst of them through per chunkLogPeriod and counts the rest in
// the next message's "suppressed" attribute.
const (
	chunkLogBurst  = 10
	chunkLogPeriod = time.Second
)

// chunkLog rate-limits per-chunk Debug logs. Safe for concurrent use.
type chunkLog struct {
	log *slog.Logger

	mu         sync.Mutex
	start      time.Time // of the current period
	n          int       // messages let through in the period
	suppressed int       // messages dropped since the last one let through
}

func newChunkLog(l *slog.Logger) *chunkLog { return &chunkLog{log: l} }

// debug logs msg at Debug unless the period's budget is spent.
func (c *chunkLog) debug(msg string, args ...any) { c.logAt(slog.LevelDebug, msg, args) }

// warn logs msg at Warn unless the period's budget is spent (a local
// failure repeated for every chunk).
func (c *chunkLog) warn(msg string, args ...any) { c.logAt(slog.LevelWarn, msg, args) }

func (c *chunkLog) logAt(level slog.Level, msg string, args []any) {
	if !c.log.Enabled(context.Background(), level) {
		return
	}
	now := time.Now()
	c.mu.Lock()
	if now.Sub(c.start) >= chunkLogPeriod {
		c.start, c.n = now, 0
	}
	if c.n >= chunkLogBurst {
		c.suppressed++
		c.mu.Unlock()
		return
	}
	c.n++
	sup := c.suppressed
	c.suppressed = 0
	c.mu.Unlock()
	if sup > 0 {
		args = append(args, "suppressed", sup)
	}
	c.log.Log(context.Background(), level, msg, args...)
}
