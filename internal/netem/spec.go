package netem

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseConfig reads a Config from "key=value,..." with keys delay, jitter,
// reorder_delay (durations), loss, reorder (probabilities), seed and queue,
// e.g. "delay=20ms,jitter=5ms,loss=0.02,seed=1". The empty string is the
// zero Config. The drill program takes its -netem flag in this form.
func ParseConfig(spec string) (Config, error) {
	var cfg Config
	for _, kv := range strings.Split(spec, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return cfg, fmt.Errorf("netem: %q: want key=value", kv)
		}
		var err error
		switch k {
		case "delay":
			cfg.Delay, err = time.ParseDuration(v)
		case "jitter":
			cfg.Jitter, err = time.ParseDuration(v)
		case "reorder_delay":
			cfg.ReorderDelay, err = time.ParseDuration(v)
		case "loss":
			cfg.Loss, err = strconv.ParseFloat(v, 64)
		case "reorder":
			cfg.Reorder, err = strconv.ParseFloat(v, 64)
		case "seed":
			cfg.Seed, err = strconv.ParseUint(v, 10, 64)
		case "queue":
			cfg.QueueLimit, err = strconv.Atoi(v)
		default:
			return cfg, fmt.Errorf("netem: unknown key %q", k)
		}
		if err != nil {
			return cfg, fmt.Errorf("netem: %s: %w", k, err)
		}
	}
	return cfg, nil
}
