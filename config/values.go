package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Port is a TCP port number. Zero is accepted and means "any free port",
// which tests use; the listener logs the port it really got.
type Port uint16

// UnmarshalText implements encoding.TextUnmarshaler, which caarlos0/env uses.
func (p *Port) UnmarshalText(b []byte) error {
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil || n > 65535 {
		return fmt.Errorf("want a port number from 1 to 65535")
	}
	*p = Port(n)
	return nil
}

func (p Port) String() string { return strconv.Itoa(int(p)) }

// Duration is a time span written as HAProxy writes one: a bare number is
// milliseconds, a number with one of the units us, ms, s, m, h or d is taken
// as such. Go's own forms such as "1m30s" are accepted too.
type Duration time.Duration

var haproxyUnits = []struct {
	suffix string
	unit   time.Duration
}{
	// Longer suffixes first, so "ms" is not read as "m" followed by junk.
	{"us", time.Microsecond},
	{"ms", time.Millisecond},
	{"s", time.Second},
	{"m", time.Minute},
	{"h", time.Hour},
	{"d", 24 * time.Hour},
}

// ParseDuration parses a duration in HAProxy's notation (see Duration).
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("want a duration such as 2s, 500ms or 2000 (milliseconds)")
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("must be positive: a number with a unit (us, ms, s, m, h, d), or a bare number of milliseconds")
	}
	if n, err := strconv.ParseUint(s, 10, 63); err == nil {
		return scale(n, time.Millisecond)
	}
	for _, u := range haproxyUnits {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(num, 10, 63); err == nil {
			return scale(n, u.unit)
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return d, nil
	}
	return 0, fmt.Errorf("unknown duration: want a number with a unit (us, ms, s, m, h, d), or a bare number of milliseconds")
}

func scale(n uint64, unit time.Duration) (time.Duration, error) {
	if n > uint64(1<<63-1)/uint64(unit) {
		return 0, fmt.Errorf("duration too long")
	}
	return time.Duration(n) * unit, nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }
