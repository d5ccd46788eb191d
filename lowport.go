//go:build unix

package main

import (
	"fmt"
	"os"
)

// How a port below 1024 is granted depends on what runs the program; the
// start-up error names the way that applies here.

// launcher is what started the program, as far as the binding of a low
// port goes.
type launcher int

const (
	byHand    launcher = iota
	container          // Docker, Podman (their marker files)
	systemd            // a systemd unit (INVOCATION_ID)
)

// detectLauncher tells a container by the file its engine leaves at the
// root (Docker /.dockerenv, Podman /run/.containerenv) and a systemd
// service by the INVOCATION_ID systemd gives each unit it starts.
func detectLauncher() launcher {
	for _, marker := range []string{"/.dockerenv", "/run/.containerenv"} {
		if _, err := os.Stat(marker); err == nil {
			return container
		}
	}
	if os.Getenv("INVOCATION_ID") != "" {
		return systemd
	}
	return byHand
}

// portDenied says why binding setting's port was refused and how to allow
// it here.
func portDenied(setting, port string) string {
	exe, _ := os.Executable()
	return "needs the right to bind ports below 1024 (CAP_NET_BIND_SERVICE): " + lowPortHint(setting, port, detectLauncher(), exe)
}

// lowPortHint is how to let setting's port be bound, for the launcher.
func lowPortHint(setting, port string, by launcher, exe string) string {
	switch by {
	case container:
		return fmt.Sprintf("the image's binary carries CAP_NET_BIND_SERVICE, which this container does not allow: "+
			"run it without --cap-drop NET_BIND_SERVICE (ALL) and no-new-privileges (Kubernetes: add NET_BIND_SERVICE "+
			"to capabilities and allowPrivilegeEscalation: true); rootless Podman or Docker also need the host's "+
			"`sysctl net.ipv4.ip_unprivileged_port_start=%s`; or leave %s at its default and publish it (-p %s:48322, "+
			"without --network host)", port, setting, port)
	case systemd:
		return fmt.Sprintf("give the service CAP_NET_BIND_SERVICE: `make install PROXY_PORT=%s` installs a drop-in "+
			"granting it; for a package, `systemctl edit cloudxr-wss-proxy` and add [Service] "+
			"AmbientCapabilities=CAP_NET_BIND_SERVICE and CapabilityBoundingSet=CAP_NET_BIND_SERVICE", port)
	}
	return fmt.Sprintf("grant it to the binary once: `sudo setcap cap_net_bind_service=ep %s`", exe)
}
