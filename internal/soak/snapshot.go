package soak

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/procstat"
)

// Snapshot is the proxy process's footprint at one moment.
type Snapshot struct {
	Goroutines   int
	FDs          int
	RSS          int64
	AnonRSS      int64 // RSS without the file-backed pages of the binary and libraries
	HeapInuse    int64 // the Go heap's spans in use: what is left of RSS once the runtime has returned the rest
	OpenSessions int
}

func (s Snapshot) String() string {
	return fmt.Sprintf("goroutines %d, descriptors %d, RSS %.1f MiB (anonymous %.1f MiB, Go heap in use %.1f MiB), open sessions %d",
		s.Goroutines, s.FDs, mib(s.RSS), mib(s.AnonRSS), mib(s.HeapInuse), s.OpenSessions)
}

func mib(n int64) float64 {
	return float64(n) / (1 << 20)
}

// Settled reports whether the proxy is back at its baseline after a run:
// no session open, no more goroutines or descriptors than before, the Go
// heap in use back near the start (where leaked objects would show), and
// the anonymous part of resident memory back near the start too. "Near"
// for the heap is 6 MiB or a quarter of its climb to the peak, whichever
// is more; for anonymous memory 12 MiB or half the climb, since the
// runtime keeps metadata in proportion to the peak (GC bitmaps, spans,
// about 7 MiB after a peak of 200 to 300 sessions), not to the sessions
// served. The file-backed rest of RSS is left out: it is the binary's
// code, which grows as a run first takes error paths (503 answers,
// closes) and which the kernel can drop at will.
func Settled(before, peak, now Snapshot) bool {
	near := func(before, peak, now, floor, share int64) bool {
		return now <= before+max(floor, (peak-before)/share)
	}
	return now.OpenSessions == 0 && now.Goroutines <= before.Goroutines && now.FDs <= before.FDs &&
		near(before.HeapInuse, peak.HeapInuse, now.HeapInuse, 6<<20, 4) &&
		near(before.AnonRSS, peak.AnonRSS, now.AnonRSS, 12<<20, 2)
}

// Await polls the proxy's snapshot until ok holds or d has passed, and
// returns the last one read.
func Await(pid int, adminAddr string, d time.Duration, ok func(Snapshot) bool) (Snapshot, error) {
	deadline := time.Now().Add(d)
	for {
		s, err := Take(pid, adminAddr)
		if err == nil && ok(s) {
			return s, nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("not so after %v: %v", d, s)
			}
			return s, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Take reads pid's descriptors and memory from /proc and its goroutines and
// open sessions from the admin listener's /metrics (adminAddr host:port).
func Take(pid int, adminAddr string) (Snapshot, error) {
	var s Snapshot
	var err error
	if s.FDs, err = procstat.FDs(pid); err != nil {
		return s, err
	}
	if s.RSS, err = procstat.RSS(pid); err != nil {
		return s, err
	}
	if s.AnonRSS, err = procstat.AnonRSS(pid); err != nil {
		return s, err
	}
	// A fresh connection each time, closed after: a kept-alive scrape
	// connection would be one more goroutine in the proxy.
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		f, _ := strconv.ParseFloat(v, 64)
		switch name {
		case "go_goroutines":
			s.Goroutines = int(f)
		case "go_memstats_heap_inuse_bytes":
			s.HeapInuse = int64(f)
		case "cloudxr_wss_proxy_sessions_open":
			s.OpenSessions = int(f)
		}
	}
	return s, sc.Err()
}
