package upgrade

import (
	"net"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/limit"
)

// Windows has no way to hand a listening socket to a new process that
// tableflip supports: there, New always fails with ErrUnsupported and a
// restart drains the sessions for SHUTDOWN_GRACE.

// Handover is not available here; New says so.
type Handover struct{}

// Report: see the other systems' report.go.
type Report struct {
	PID      int
	Sessions int
	Spent    []limit.Spent
	Gone     bool
}

func New(string, time.Duration) (*Handover, error) { return nil, ErrUnsupported }

func (*Handover) HasParent() bool { return false }
func (*Handover) Listen(name, network, addr string, open func(network, addr string) (net.Listener, error)) (net.Listener, bool, error) {
	ln, err := open(network, addr)
	return ln, false, err
}
func (*Handover) Ready() error                { return nil }
func (*Handover) Upgrade() error              { return ErrUnsupported }
func (*Handover) Exit() <-chan struct{}       { return nil }
func (*Handover) Stop()                       {}
func (*Handover) ParentGone() <-chan struct{} { c := make(chan struct{}); close(c); return c }
func (*Handover) Send(Report) error           { return ErrUnsupported }
func (*Handover) Previous(func(Report))       {}
