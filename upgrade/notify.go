//go:build !windows

package upgrade

import (
	"fmt"
	"net"
	"os"
	"time"
)

// notify sends state to systemd (sd_notify(3)) when it asked for it
// (NOTIFY_SOCKET, Type=notify): READY=1 once serving, and MAINPID= so
// that the process an upgrade started becomes the service's main one.
// Without NOTIFY_SOCKET it does nothing.
func notify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' {
		path = "\x00" + path[1:] // an abstract socket
	}
	c, err := net.DialTimeout("unixgram", path, time.Second)
	if err != nil {
		return fmt.Errorf("telling systemd (NOTIFY_SOCKET): %w", err)
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("telling systemd (NOTIFY_SOCKET): %w", err)
	}
	return nil
}
