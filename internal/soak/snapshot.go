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
	OpenSessions int
}

func (s Snapshot) String() string {
	return fmt.Sprintf("goroutines %d, descriptors %d, RSS %.1f MiB, open sessions %d",
		s.Goroutines, s.FDs, float64(s.RSS)/(1<<20), s.OpenSessions)
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
		case "cloudxr_wss_proxy_sessions_open":
			s.OpenSessions = int(f)
		}
	}
	return s, sc.Err()
}
