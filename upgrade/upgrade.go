//go:build !windows

// Package upgrade hands the running process over to a new one without a
// refused connection: the new process is started from the binary at the
// same path (the new one, if a package has just replaced it), inherits
// the listening sockets, reads its settings afresh, and takes over once it
// says it is ready; the old one then stops accepting and finishes the
// sessions it has. github.com/cloudflare/tableflip does the fork and the
// passing of sockets; this package adds the report the old process keeps
// sending the new one while it drains (see report.go) and the systemd
// notifications (notify.go).
package upgrade

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/cloudflare/tableflip"
)

// reportName is the inherited pipe the previous process reports on.
const reportName = "cloudxr-wss-proxy-report"

// Handover is this process's part in upgrades: the one it may have been
// started by (its parent), and the one it may start.
type Handover struct {
	upg    *tableflip.Upgrader
	report *os.File // the write end of the pipe the next process inherits
	parent *os.File // the read end the previous process writes to; nil without one
	gone   chan struct{}
}

// New prepares hand-overs. pidFile, if not empty, gets this process's
// pid once it is ready (systemd's PIDFile=). timeout bounds how long a new
// process may take to become ready before it is killed and this one
// carries on.
func New(pidFile string, timeout time.Duration) (*Handover, error) {
	upg, err := tableflip.New(tableflip.Options{PIDFile: pidFile, UpgradeTimeout: timeout})
	if err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	h := &Handover{upg: upg, gone: make(chan struct{})}
	if h.parent, err = upg.File(reportName); err != nil {
		upg.Stop()
		return nil, fmt.Errorf("upgrade: the previous process's report: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		upg.Stop()
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	// The next process inherits a copy of the read end (AddFile dups it,
	// and replaces any copy inherited from the previous process).
	err = upg.AddFile(reportName, r)
	r.Close()
	if err != nil {
		w.Close()
		upg.Stop()
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	h.report = w
	if upg.HasParent() {
		go func() {
			upg.WaitForParent(context.Background()) // its exit closes the pipe tableflip keeps
			close(h.gone)
		}()
	} else {
		close(h.gone)
	}
	return h, nil
}

// HasParent reports whether this process was started by an upgrade.
func (h *Handover) HasParent() bool { return h.upg.HasParent() }

// Listen returns the listener named name (the setting it is for) that the
// previous process handed over, if it was at the same addr, or else one
// open makes; inherited says which. A changed address is a new listener,
// and the old one is closed with the previous process.
func (h *Handover) Listen(name, network, addr string, open func(network, addr string) (net.Listener, error)) (ln net.Listener, inherited bool, err error) {
	inherited = true
	var openErr error
	// tableflip keys listeners by address; two settings may give the same
	// one (port 0), so the key carries the name too.
	ln, err = h.upg.ListenWithCallback(network, name+" "+addr, func(string, string) (net.Listener, error) {
		inherited = false
		l, err := open(network, addr)
		openErr = err
		return l, err
	})
	if openErr != nil {
		return nil, false, openErr // as open said it, for the caller's words
	}
	if err != nil {
		return nil, false, fmt.Errorf("upgrade: %w", err)
	}
	return ln, inherited, nil
}

// Ready says this process serves: the previous one, if any, is told to
// stop accepting, systemd is told this is the main process now, and the
// PID file is written.
func (h *Handover) Ready() error {
	if err := h.upg.Ready(); err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	return notify(fmt.Sprintf("READY=1\nMAINPID=%d\nSTATUS=serving", os.Getpid()))
}

// Upgrade starts the binary at this program's path again, with the
// listeners, and returns once it is ready (nil: this process is to
// finish its sessions and exit) or has failed (this one keeps serving).
func (h *Handover) Upgrade() error {
	select {
	case <-h.gone:
	default:
		return ErrPreviousDraining
	}
	if err := h.upg.Upgrade(); err != nil {
		return fmt.Errorf("the new process did not take over: %w", err)
	}
	return nil
}

// Exit is closed once a new process has taken over.
func (h *Handover) Exit() <-chan struct{} { return h.upg.Exit() }

// Stop gives up hand-overs (at shutdown): the listeners are closed with
// the process.
func (h *Handover) Stop() { h.upg.Stop() }

// ParentGone is closed once the process before this one has exited (at
// once without one).
func (h *Handover) ParentGone() <-chan struct{} { return h.gone }
