package proxy

import (
	"strings"
	"time"
)

// Observer is told what the proxy does, for metrics. Its methods are
// called on the data path's edges (never per byte) from many goroutines.
type Observer interface {
	HandshakeSucceeded()
	HandshakeFailed(class string)
	// SessionEnded reports a session that completed its TLS handshake:
	// why it ended (a short, fixed word list, see outcome), bytes each way
	// and how long it lasted.
	SessionEnded(outcome string, clientToBackend, backendToClient int64, took time.Duration)
	ConnectionRefused()
}

type nopObserver struct{}

func (nopObserver) HandshakeSucceeded()                              {}
func (nopObserver) HandshakeFailed(string)                           {}
func (nopObserver) SessionEnded(string, int64, int64, time.Duration) {}
func (nopObserver) ConnectionRefused()                               {}

// outcome turns a session's end reason into a metric label: the reason
// without any detail after a colon, so the label set stays small.
func outcome(reason string) string {
	o, _, _ := strings.Cut(reason, ":")
	if o == "" {
		return "unknown"
	}
	return o
}
