// Package procstat reads a process's CPU time, resident memory and open
// descriptors from /proc, for the bench, the soak and the tests that check
// the proxy returns to its baseline.
package procstat

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the kernel's USER_HZ, the unit of utime and stime in
// /proc/PID/stat; 100 on every Linux this runs on.
const clockTick = 10 * time.Millisecond

// CPUTime is the process's user+system time over all its threads.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it are
	// counted from the closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+2:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	return time.Duration(ut+st) * clockTick, nil
}

// RSS is the process's resident memory in bytes.
func RSS(pid int) (int64, error) { return statusKB(pid, "VmRSS:") }

// AnonRSS is the anonymous part of RSS: the heap, stacks and runtime data,
// without the pages of the binary and libraries mapped from files (those
// grow as more of the code runs, and the kernel can drop them at will).
func AnonRSS(pid int) (int64, error) { return statusKB(pid, "RssAnon:") }

// statusKB reads one "Name:  N kB" field of /proc/pid/status, in bytes.
func statusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// FDs is the number of descriptors the process has open.
func FDs(pid int) (int, error) {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(entries), err
}
