//go:build !windows

package upgrade

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/limit"
)

// Report is what a process that has handed over tells the new one while
// it finishes its sessions, one JSON line each: how many sessions it
// still has (so "how many are streaming" stays true where an operator
// looks), and once, at the start, the clients that had spent part of
// their authentication-failure budget (so a reload does not hand a
// guessing client a fresh one).
type Report struct {
	PID      int           `json:"pid"`
	Sessions int           `json:"sessions"`
	Spent    []limit.Spent `json:"spent,omitempty"`
	// Gone is set on the last report a reader sees: the process has
	// exited (or closed its end).
	Gone bool `json:"-"`
}

// reportTimeout bounds one report's write: a new process that stopped
// reading must not hold the old one's drain.
const reportTimeout = 2 * time.Second

// Send writes r to the new process. It is for the old process, after
// Upgrade returned nil.
func (h *Handover) Send(r Report) error {
	r.PID = os.Getpid()
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	h.report.SetWriteDeadline(time.Now().Add(reportTimeout))
	if _, err := h.report.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("reporting to the new process: %w", err)
	}
	return nil
}

// maxReportLine bounds one report (a full table of spent clients is a few
// megabytes).
const maxReportLine = 16 << 20

// Previous calls fn with each report of the process before this one, and
// a last one with Gone set when it has exited; it returns then. Without a
// previous process it returns at once.
func (h *Handover) Previous(fn func(Report)) {
	if h.parent == nil {
		return
	}
	defer h.parent.Close()
	sc := bufio.NewScanner(h.parent)
	sc.Buffer(make([]byte, 0, 4096), maxReportLine)
	last := Report{}
	for sc.Scan() {
		var r Report
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue
		}
		last = r
		fn(r)
	}
	fn(Report{PID: last.PID, Gone: true})
}
