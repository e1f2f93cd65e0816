package events

import (
	"fmt"
	"time"
)

// ParseSince reads a --since or ?since= value: a time (RFC 3339) or a
// duration back from now (1h, 90s).
func ParseSince(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("since: %q is neither a time (2026-12-03T01:02:03Z) nor a duration back from now (1h, 90s)", v)
	}
	return now.Add(-d), nil
}
