package main

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// gcPercent is the proxy's default GC target. Handshakes make short-lived
// garbage and little that lives; collecting at 4× the live heap instead of
// 2× cut the proxy's CPU per session by 3 to 10 % in side-by-side runs
// (bench/README.md, item 15). GOGC set in the environment wins.
const gcPercent = 400

// tuneGC sets the GC target and a soft memory limit, so the higher target
// cannot grow the heap without bound: the limit is sized from the
// connection cap (64 MiB plus 64 KiB a connection), and kept under 80 % of a
// container's memory limit (cgroup v2 memory.max) when there is one.
// GOMEMLIMIT set in the environment wins.
func tuneGC(maxConns int, log *zap.Logger) {
	percent := os.Getenv("GOGC")
	if percent == "" {
		debug.SetGCPercent(gcPercent)
		percent = strconv.Itoa(gcPercent)
	}
	limit := os.Getenv("GOMEMLIMIT")
	if limit == "" {
		l := int64(64<<20) + int64(maxConns)*(64<<10)
		if c := cgroupMemoryMax(); c > 0 && c*8/10 < l {
			l = c * 8 / 10
		}
		debug.SetMemoryLimit(l)
		limit = strconv.FormatInt(l>>20, 10) + "MiB"
	}
	log.Info("garbage collector", zap.String("GOGC", percent), zap.String("GOMEMLIMIT", limit))
}

// cgroupMemoryMax is the container's memory limit in bytes, or 0.
func cgroupMemoryMax() int64 {
	b, err := os.ReadFile("/sys/fs/cgroup/memory.max")
	if err != nil {
		return 0
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil { // "max": no limit
		return 0
	}
	return v
}
