package seed

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseSize reads a byte count: a plain number, or one with a unit, decimal
// (kB, MB, GB, TB: powers of 1000) or binary (KiB, MiB, GiB, TiB: powers
// of 1024); "B" and case do not matter, and K, M, G, T alone are decimal.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.TrimSpace(t[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("size %q: want a number with an optional unit, e.g. 50MB or 10MiB", s)
	}
	mult := float64(1)
	switch strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(unit, "B"), "b")) {
	case "":
	case "k":
		mult = 1e3
	case "m":
		mult = 1e6
	case "g":
		mult = 1e9
	case "t":
		mult = 1e12
	case "ki":
		mult = 1 << 10
	case "mi":
		mult = 1 << 20
	case "gi":
		mult = 1 << 30
	case "ti":
		mult = 1 << 40
	default:
		return 0, fmt.Errorf("size %q: unknown unit %q (use B, kB, MB, GB, KiB, MiB, GiB)", s, unit)
	}
	if v*mult > math.MaxInt64/2 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(v * mult), nil
}

// FormatSize writes a byte count for people, in binary units with one
// decimal: "512 B", "1.5 KiB", "3.0 GiB".
func FormatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// ParseRate reads bytes per second: a size with an optional "/s".
func ParseRate(s string) (int64, error) {
	return ParseSize(strings.TrimSuffix(strings.TrimSpace(s), "/s"))
}

// Rate is a bytes-per-second limit in the config file: a number, or a
// string with units ("50MB/s", "10MiB").
type Rate int64

// UnmarshalJSON reads a number or a string with units.
func (r *Rate) UnmarshalJSON(b []byte) error {
	var n int64
	if err := json.Unmarshal(b, &n); err == nil {
		*r = Rate(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want bytes per second, a number or a string like \"10MiB/s\"")
	}
	v, err := ParseRate(s)
	*r = Rate(v)
	return err
}

// Size is a byte count in the config file: a number, or a string with
// units ("4GiB", "500MB").
type Size int64

// UnmarshalJSON reads a number or a string with units.
func (z *Size) UnmarshalJSON(b []byte) error {
	var n int64
	if err := json.Unmarshal(b, &n); err == nil {
		*z = Size(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a size in bytes, a number or a string like \"4GiB\"")
	}
	v, err := ParseSize(s)
	*z = Size(v)
	return err
}
