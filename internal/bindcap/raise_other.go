//go:build !linux

package bindcap

import "net"

// Listen calls listen: file capabilities are Linux's.
func Listen(listen func() (net.Listener, error)) (net.Listener, error) { return listen() }
