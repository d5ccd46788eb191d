//go:build e2e

package e2e

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

// netns is a network namespace joined to this one by a veth pair: the
// host end hostIP, the namespace end peerIP, on a /30 of their own.
type netns struct {
	name           string
	hostIP, peerIP string
	peerLink       string
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newNetns(t *testing.T) *netns {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("ip (iproute2) is needed for the network namespace tests")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the network namespace tests need root (CI runs as root)")
	}
	id := os.Getpid() % 10000
	n := &netns{name: fmt.Sprintf("cxp-test-%d", id), hostIP: "10.203.0.1", peerIP: "10.203.0.2", peerLink: fmt.Sprintf("cxpc%d", id)}
	hostLink := fmt.Sprintf("cxph%d", id)
	exec.Command("ip", "link", "del", hostLink).Run() // left over from a killed run
	exec.Command("ip", "netns", "del", n.name).Run()
	ipCmd(t, "netns", "add", n.name)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", hostLink).Run()
		exec.Command("ip", "netns", "del", n.name).Run()
	})
	ipCmd(t, "link", "add", hostLink, "type", "veth", "peer", "name", n.peerLink, "netns", n.name)
	ipCmd(t, "addr", "add", n.hostIP+"/30", "dev", hostLink)
	ipCmd(t, "link", "set", hostLink, "up")
	ipCmd(t, "-n", n.name, "addr", "add", n.peerIP+"/30", "dev", n.peerLink)
	ipCmd(t, "-n", n.name, "link", "set", n.peerLink, "up")
	ipCmd(t, "-n", n.name, "link", "set", "lo", "up")
	return n
}

// dial connects from inside the namespace: the socket is made on a thread
// that joined it, and stays there. The thread is never returned to the
// scheduler, so it ends with its goroutine.
func (n *netns) dial(addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open("/var/run/netns/" + n.name)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{nil, err}
			return
		}
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// A headset that vanishes without a FIN (switched off, out of Wi-Fi) is
// found by TCP keepalive and TCP_USER_TIMEOUT and its session closed, with
// the backend connection, long before TUNNEL_TIMEOUT (an hour).
func TestVanishedClientReaped(t *testing.T) {
	n := newNetns(t)
	b := backend(t)
	dir := t.TempDir()
	p := startProc(t, "CERT_DIR="+dir, "BACKEND_HOST=127.0.0.1", fmt.Sprintf("BACKEND_PORT=%d", b.Port()),
		"LISTEN_ADDRESS="+n.hostIP, "CLIENT_KEEPALIVE=2s")
	addr := p.addr()

	raw, err := n.dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tc := tls.Client(raw, trustPEM(t, dir+"/ca.crt"))
	c, err := wstest.Upgrade(tc, "localhost", "/sign_in?peer_id=vanishing")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Echo("still here", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the backend connection", func() bool { return b.OpenConns() == 1 })

	// The headset's side of the link goes down: nothing it sends (not even
	// a FIN when it closes) reaches the proxy any more.
	gone := time.Now()
	ipCmd(t, "-n", n.name, "link", "set", n.peerLink, "down")
	raw.Close()

	end := p.waitLine(20*time.Second, "vanished client's session end", func(l map[string]any) bool {
		return l["msg"] == "session ended" && strings.HasPrefix(fmt.Sprint(l["client"]), n.peerIP+":")
	})
	took := time.Since(gone)
	// 2 s idle + 3 probes 1 s apart, or the 4 s user timeout; never the tunnel timeout.
	if took < 2*time.Second {
		t.Errorf("session ended %v after the client vanished: before keepalive could have decided", took)
	}
	t.Logf("reaped after %v: %v", took.Round(100*time.Millisecond), end["reason"])
	if r := fmt.Sprint(end["reason"]); !strings.Contains(r, "client") {
		t.Errorf("reason %q does not blame the client", r)
	}
	waitFor(t, 5*time.Second, "the backend connection to close", func() bool { return b.OpenConns() == 0 })
}
