package main

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

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
	percent, follows := os.Getenv("GOGC"), false
	if percent == "" {
		debug.SetGCPercent(gcPercent)
		percent = strconv.Itoa(gcPercent)
		follows = true
		go followLiveHeap()
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
	log.Info("garbage collector", zap.String("GOGC", percent), zap.String("GOMEMLIMIT", limit),
		zap.Bool("follows_live_heap", follows))
}

// The GC target follows the live heap: 400 % buys handshake CPU while the
// heap is small (a handful of sessions, each handshake's garbage short
// lived), but at thousands of held sessions it lets a burst of handshakes
// grow the heap to five times the live sessions before a collection, and
// the sessions' objects end up scattered over spans that the burst's
// garbage filled; once the garbage is collected, those spans stay part
// full and resident (bench/README.md, item 25). The target is therefore
// 400 % while the live heap is no more than the program's own (gcOwnHeap:
// about 3 MiB at rest), and then the headroom shrinks by what sessions add
// to the live heap, down to gcHeadroom, never under gcMinPercent.
// 8 MiB rather than 16 took memory per idle session from 12.6 to 12.0 KiB,
// but cost 10 % per session while 2,000 idle sessions are held, when each
// collection marks them all (bench/README.md, item 27): at thousands of
// headsets memory is what runs out first, and their handshakes are rare.
// A quiet proxy keeps the 400 % that buys its handshake CPU.
const (
	gcOwnHeap    = 4 << 20
	gcHeadroom   = 8 << 20
	gcMinPercent = 25
)

// gcPercentFor is the target for a live heap of live bytes.
func gcPercentFor(live uint64) int {
	if live <= gcOwnHeap {
		return gcPercent
	}
	headroom := max(gcHeadroom, gcPercent*gcOwnHeap/100-int64(live-gcOwnHeap))
	return int(max(gcMinPercent, min(gcPercent, headroom*100/int64(live))))
}

// followLiveHeap sets the target from the live heap every half second,
// when it has moved by a tenth or more.
func followLiveHeap() {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	set := gcPercent
	for range time.Tick(500 * time.Millisecond) {
		metrics.Read(sample)
		if p := gcPercentFor(sample[0].Value.Uint64()); p*10 < set*9 || p*10 > set*11 {
			debug.SetGCPercent(p)
			set = p
		}
	}
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
