//go:build unix

package main

import (
	"strings"
	"testing"
)

// The hint for a port below 1024 names the way that works where the
// program runs, and only that one.
func TestLowPortHint(t *testing.T) {
	for _, tc := range []struct {
		by        launcher
		want, not string
	}{
		{container, "ip_unprivileged_port_start=443", "make install"},
		{container, "-p 443:48322", "setcap"},
		{systemd, "make install PROXY_PORT=443", "setcap"},
		{systemd, "AmbientCapabilities=CAP_NET_BIND_SERVICE", "-p 443"},
		{byHand, "setcap cap_net_bind_service=ep /opt/cxp/cloudxr-wss-proxy", "make install"},
	} {
		got := lowPortHint("PROXY_PORT", "443", tc.by, "/opt/cxp/cloudxr-wss-proxy")
		if !strings.Contains(got, tc.want) || strings.Contains(got, tc.not) {
			t.Errorf("launcher %d: %q, want %q and not %q", tc.by, got, tc.want, tc.not)
		}
	}
}
