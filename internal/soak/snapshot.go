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
	HeapInuse    int64 // the Go heap's spans in use: what is left of RSS once the runtime has returned the rest
	OpenSessions int
}

func (s Snapshot) String() string {
	return fmt.Sprintf("goroutines %d, descriptors %d, RSS %.1f MiB (Go heap in use %.1f MiB), open sessions %d",
		s.Goroutines, s.FDs, float64(s.RSS)/(1<<20), float64(s.HeapInuse)/(1<<20), s.OpenSessions)
}

// Settled reports whether the proxy is back at its baseline after a run:
// no session open, no more goroutines or descriptors than before, the Go
// heap in use back near the start (where leaked objects would show), and
// resident memory back near the start too. "Near" for the heap is 4 MiB or
// a quarter of its climb to the peak, whichever is more. Resident memory
// keeps more: the binary's code pages that the run touched for the first
// time (error paths, 502/503 answers) and the runtime's metadata in
// proportion to the peak (spans, GC bitmaps), not to the sessions served;
// so "near" there is 12 MiB or a quarter of the climb.
func Settled(before, peak, now Snapshot) bool {
	near := func(before, peak, now, floor int64) bool {
		return now <= before+max(floor, (peak-before)/4)
	}
	return now.OpenSessions == 0 && now.Goroutines <= before.Goroutines && now.FDs <= before.FDs &&
		near(before.HeapInuse, peak.HeapInuse, now.HeapInuse, 4<<20) &&
		near(before.RSS, peak.RSS, now.RSS, 12<<20)
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
