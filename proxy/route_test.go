package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/allow"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

func TestRoute(t *testing.T) {
	r, err := newRouter(t, 49100, []string{"10.0.3.0/24", "192.168.1.50", "fd00:cafe::/64", "runtime-1.cloudxr.svc", "*.gpu.lab"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		target, addr, rest string
		status             int // 0: routed
	}{
		{"/10.0.3.17/sign_in?peer_id=1&x=%2F", "10.0.3.17:49100", "/sign_in?peer_id=1&x=%2F", 0},
		{"/10.0.3.17:50000/sign_in", "10.0.3.17:50000", "/sign_in", 0},
		{"/10.0.3.0/x", "10.0.3.0:49100", "/x", 0},     // network address: inside the /24
		{"/10.0.3.255/x", "10.0.3.255:49100", "/x", 0}, // last address: inside
		{"/10.0.4.0/x", "", "", 403},                   // one past the end
		{"/10.0.2.255/x", "", "", 403},                 // one before the start
		{"/192.168.1.50", "192.168.1.50:49100", "/", 0},
		{"/192.168.1.50?q=1", "192.168.1.50:49100", "/?q=1", 0},
		{"/192.168.1.51/x", "", "", 403},
		{"/[fd00:cafe::17]/sign_in", "[fd00:cafe::17]:49100", "/sign_in", 0},
		{"/[fd00:cafe::17]:49200/sign_in", "[fd00:cafe::17]:49200", "/sign_in", 0},
		{"/%5Bfd00:cafe::17%5D/sign_in", "[fd00:cafe::17]:49100", "/sign_in", 0},
		{"/[fd00:beef::17]/sign_in", "", "", 403},
		{"/[FD00:CAFE:0:0::17]/x", "[fd00:cafe::17]:49100", "/x", 0}, // one spelling for checks and logs
		{"/RUNTIME-1.cloudxr.svc/sign_in", "runtime-1.cloudxr.svc:49100", "/sign_in", 0},
		{"/runtime-2.cloudxr.svc/sign_in", "", "", 403},
		{"/node7.gpu.lab/sign_in", "node7.gpu.lab:49100", "/sign_in", 0},
		{"/gpu.lab/sign_in", "", "", 403}, // the wildcard is for names under it
		{"/evilgpu.lab/x", "", "", 403},
		{"/127.0.0.1/x", "", "", 403},
		{"/169.254.169.254/latest/meta-data", "", "", 403}, // cloud metadata: not listed, not dialed
		{"/", "", "", 400},
		{"/?peer_id=1", "", "", 400},
		{"//sign_in", "", "", 400},
		{"/10.0.3.17:0/x", "", "", 400},
		{"/10.0.3.17:99999/x", "", "", 400},
		{"/10.0.3.17:http/x", "", "", 400},
		{"/user@10.0.3.17/x", "", "", 403},
	}
	for _, c := range cases {
		addr, rest, err := r.Route(c.target, false)
		if c.status != 0 {
			var re *refusal
			if !errors.As(err, &re) || re.status != c.status {
				t.Errorf("%s: %q %q %v, want status %d", c.target, addr, rest, err, c.status)
			}
			continue
		}
		if err != nil || addr != c.addr || rest != c.rest {
			t.Errorf("%s: got %q %q %v, want %q %q", c.target, addr, rest, err, c.addr, c.rest)
		}
	}
}

func TestRoutingEndToEnd(t *testing.T) {
	b1, b2 := backendOn(t), backendOn(t)
	router, err := newRouter(t, 1, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	e := startWith(t, nil, "unused:1", func(o *Options) { o.Router = router })

	for _, b := range []*wstest.Backend{b1, b2} {
		c := e.ws(fmt.Sprintf("/127.0.0.1:%d/sign_in?peer_id=%d", b.Port(), b.Port()))
		wantCORS(t, c.Response.Header)
		if err := c.Echo("routed", 5*time.Second); err != nil {
			t.Fatal(err)
		}
		got := <-b.NextRequest()
		if got.Target != fmt.Sprintf("/sign_in?peer_id=%d", b.Port()) {
			t.Errorf("backend %d got target %q", b.Port(), got.Target)
		}
	}

	// Not allowed: 403 with the header set, nothing dialed.
	ln, _ := net.Listen("tcp", "127.0.0.2:0")
	defer ln.Close()
	dialed := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			dialed <- struct{}{}
			c.Close()
		}
	}()
	cl, _ := wstest.Upgrade(e.dial(), "localhost", "/"+ln.Addr().String()+"/sign_in")
	if cl == nil || cl.Response.StatusCode != http.StatusForbidden {
		t.Fatalf("denied target: %v", cl)
	}
	wantCORS(t, cl.Response.Header)
	select {
	case <-dialed:
		t.Fatal("a denied target was dialed")
	default:
	}

	// Allowed but nothing there: 502.
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := free.Addr().String()
	free.Close()
	cl, _ = wstest.Upgrade(e.dial(), "localhost", "/"+addr+"/sign_in")
	if cl == nil || cl.Response.StatusCode != http.StatusBadGateway {
		t.Fatalf("unreachable target: %v", cl)
	}
	io.Copy(io.Discard, cl.Response.Body)

	// No segment: 400.
	cl, _ = wstest.Upgrade(e.dial(), "localhost", "/")
	if cl == nil || cl.Response.StatusCode != http.StatusBadRequest {
		t.Fatalf("missing segment: %v", cl)
	}
	if l := e.sessionLog("status", int64(403)); l["reason"] != "route refused" {
		t.Errorf("log %v", l)
	}
}

// A host name on the allow-list that resolves to loopback (or link-local,
// where cloud metadata services answer) is not dialed unless that address
// is listed too: DNS for an allowed name cannot point the proxy at itself.
func TestRoutedNameResolvingToLoopback(t *testing.T) {
	b := backendOn(t)
	for _, tc := range []struct {
		allow  []string
		status int
	}{
		{[]string{"localhost"}, http.StatusBadGateway},
		{[]string{"localhost", "127.0.0.0/8"}, http.StatusSwitchingProtocols},
	} {
		router, err := newRouter(t, 1, tc.allow)
		if err != nil {
			t.Fatal(err)
		}
		e := startWith(t, nil, "unused:1", func(o *Options) { o.Router = router })
		cl, _ := wstest.Upgrade(e.dial(), "localhost", fmt.Sprintf("/localhost:%d/sign_in", b.Port()))
		if cl == nil || cl.Response.StatusCode != tc.status {
			t.Fatalf("allow %v: %v, want %d", tc.allow, cl, tc.status)
		}
		if tc.status == http.StatusBadGateway {
			io.Copy(io.Discard, cl.Response.Body)
			if n := b.Accepted(); n != 0 {
				t.Fatalf("allow %v: the loopback backend was connected to", tc.allow)
			}
			if l := e.sessionLog("status", int64(502)); !strings.Contains(fmt.Sprint(l["backend_error"]), "must be on ROUTE_ALLOW") {
				t.Errorf("log %v", l)
			}
		}
	}
}

// newRouter routes to the runtimes on allow, BACKEND_PORT port.
func newRouter(t *testing.T, port int, allowList []string) (*Router, error) {
	t.Helper()
	r, err := allow.NewRuntimes(allowList, port)
	if err != nil {
		return nil, err
	}
	return NewRouter(r, 0), nil
}

func backendOn(t *testing.T) *wstest.Backend {
	b, err := wstest.StartBackend("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}
