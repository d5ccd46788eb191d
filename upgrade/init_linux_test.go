package upgrade

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMainPID(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want int
		ok   bool
	}{
		{"READY=1\nMAINPID=42\nSTATUS=serving", 42, true},
		{"MAINPID=7", 7, true},
		{"READY=1", 0, false},
		{"MAINPID=1", 0, false}, // never itself
		{"MAINPID=-5", 0, false},
		{"MAINPID=x", 0, false},
	} {
		if got, ok := mainPID(tc.msg); got != tc.want || ok != tc.ok {
			t.Errorf("%q: %d %v, want %d %v", tc.msg, got, ok, tc.want, tc.ok)
		}
	}
}

// notify sends systemd's datagram to NOTIFY_SOCKET: READY=1 with this
// process as the main one.
func TestNotifyReachesTheSocket(t *testing.T) {
	name := "@cloudxr-wss-proxy-test-" + strconv.Itoa(os.Getpid())
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Setenv("NOTIFY_SOCKET", name)
	if err := notify("READY=1\nMAINPID=" + strconv.Itoa(os.Getpid())); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 256)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if pid, ok := mainPID(string(buf[:n])); !ok || pid != os.Getpid() || !strings.Contains(string(buf[:n]), "READY=1") {
		t.Errorf("got %q", buf[:n])
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if err := notify("READY=1"); err != nil {
		t.Errorf("without NOTIFY_SOCKET: %v", err)
	}
}
