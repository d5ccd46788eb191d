package tunnel

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/certs"
)

// The tests' pair: a client and a backend joined by a tunnel, run on
// both pumps.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	certOnce sync.Once
	cert     tls.Certificate
)

func serverConfig(t testing.TB) *tls.Config {
	certOnce.Do(func() {
		g, err := certs.GenerateSelfSigned([]string{"localhost"}, time.Now())
		if err != nil {
			panic(err)
		}
		if cert, err = certs.ParseKeyPair(append(g.CertPEM, g.KeyPEM...)); err != nil {
			panic(err)
		}
	})
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

// pair is a tunnel on real loopback sockets: client is the test's TLS
// client, far the backend's end; the tunnel sits between them.
type pair struct {
	client *tls.Conn
	far    net.Conn
	tun    *Tunnel
	result chan Result
	down   sync.WaitGroup
	body   int64 // the request body's length Open is given
}

// upgrade starts the way down, as after a 101.
func (p *pair) upgrade() { p.down.Go(p.tun.upgrade) }

// openPair starts a tunnel as the proxy does (New at accept, the
// handshake, attach, open with the request's body length) and, with
// upgrade, its ways both ways (as after a 101).
func openPair(t testing.TB, o Options, upgrade bool) *pair {
	t.Helper()
	return openPairBody(t, o, upgrade, 0)
}

func openPairBody(t testing.TB, o Options, upgrade bool, body int64) *pair {
	t.Helper()
	p := &pair{result: make(chan Result, 1), body: body}
	if o.Idle == 0 {
		o.Idle, o.ResponseIdle = time.Hour, time.Hour
	}
	o.Policy = endedPolicy{ended: func(r Result) { p.result <- r }}
	o.portable = portablePump
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- err
			return
		}
		p.tun = New(c.(*net.TCPConn), o)
		p.tun.useConn(nil, serverConfig(t))
		accepted <- p.tun.tls.Handshake()
	}()
	client, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	bln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer bln.Close()
	near, err := net.Dial("tcp", bln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	far, err := bln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	p.client, p.far = client, far
	if !p.tun.attach(near) {
		t.Fatal("not attached")
	}
	p.tun.open(p.body)
	if upgrade {
		p.upgrade()
	}
	t.Cleanup(func() {
		client.Close()
		far.Close()
		p.tun.Stop(Cut, Shutdown)
		p.down.Wait()
	})
	return p
}

// portablePump makes openPair's tunnels use the portable pump (pump.go),
// the only one off Linux; bothPumps runs a test with each.
var portablePump bool

func bothPumps(t *testing.T, test func(*testing.T)) {
	for _, portable := range []bool{false, true} {
		name := map[bool]string{false: "raw", true: "portable"}[portable]
		t.Run(name, func(t *testing.T) {
			portablePump = portable
			defer func() { portablePump = false }()
			test(t)
		})
	}
}

// endedPolicy is a Policy whose one call here is Ended: the tests drive the
// owner's steps themselves (attach, open, relay, upgrade).
type endedPolicy struct {
	Policy
	ended func(Result)
}

func (p endedPolicy) Ended(r Result) { p.ended(r) }

// wait returns the tunnel's result.
func (p *pair) wait(t *testing.T) Result {
	t.Helper()
	select {
	case r := <-p.result:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the tunnel did not end")
	}
	return Result{}
}

// echo sends msg from the client, reads it at the far end, sends it back
// and reads it at the client.
func (p *pair) echo(t testing.TB, msg []byte) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	p.client.SetDeadline(deadline)
	p.far.SetDeadline(deadline)
	if _, err := p.client.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(p.far, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("backend read %d bytes: %v", len(got), err)
	}
	if _, err := p.far.Write(got); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(p.client, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("client read back: %v", err)
	}
}
