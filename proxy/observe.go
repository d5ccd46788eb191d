package proxy

import (
	"time"
)

// Observer is told what the proxy does, for metrics. Its methods are
// called on the data path's edges (never per byte) from many goroutines.
type Observer interface {
	HandshakeSucceeded()
	HandshakeFailed(class string)
	// SessionEnded reports a session that completed its TLS handshake:
	// why it ended (a short, fixed word list, see reason.go), bytes each way
	// and how long it lasted.
	SessionEnded(outcome string, clientToBackend, backendToClient int64, took time.Duration)
	ConnectionRefused()
	// AuthRefused counts a refused credential by why (auth.Why's words).
	AuthRefused(why string)
	// ClientLimited counts a connection or request refused by a
	// per-client limit ("connections", "handshakes", "auth failures").
	ClientLimited(limit string)
	// PoolRefused counts an upgrade that found no runtime in the pool.
	PoolRefused()
}

type nopObserver struct{}

func (nopObserver) HandshakeSucceeded()                              {}
func (nopObserver) HandshakeFailed(string)                           {}
func (nopObserver) SessionEnded(string, int64, int64, time.Duration) {}
func (nopObserver) ConnectionRefused()                               {}
func (nopObserver) AuthRefused(string)                               {}
func (nopObserver) ClientLimited(string)                             {}
func (nopObserver) PoolRefused()                                     {}
