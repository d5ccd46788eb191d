package proxy

import (
	"crypto/tls"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

// 2,000 connections dribble a TLS hello or a request head a byte at a time;
// a legitimate client still connects and exchanges a message within 2 s.
func TestSlowlorisAtScale(t *testing.T) {
	e := start(t, func(o *Options) { o.MaxConnections = 5000 })
	const n = 2000
	held := openSlow(t, e, n)
	if held < n*9/10 {
		t.Fatalf("only %d of %d slow connections opened", held, n)
	}

	began := time.Now()
	c, err := wstest.Dial(e.addr, "/legit", e.tls)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Conn.Close()
	if err := c.Echo("through the crowd", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("a legitimate client took %v among %d slow ones", d, held)
	}
	if len(e.backend.Requests()) != 1 {
		t.Errorf("the backend saw %d requests; slow heads must not reach it", len(e.backend.Requests()))
	}
}

// openSlow opens n connections that send a byte every 200 ms: half dribble
// a TLS handshake, the other half finish it, then dribble a request head.
// It returns how many it holds; they close when the test ends.
func openSlow(t *testing.T, e *env, n int) int {
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	stop := make(chan struct{})
	t.Cleanup(func() {
		close(stop)
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	sem := make(chan struct{}, 64)
	var opened sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		opened.Go(func() {
			defer func() { <-sem }()
			c, payload := slowConn(e, i%2 == 1)
			if c == nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { dribble(c, payload, stop) })
		})
	}
	opened.Wait()
	mu.Lock()
	defer mu.Unlock()
	return len(conns)
}

// slowConn dials the proxy; with handshake, it completes TLS first and
// will dribble a request head, else a TLS record header.
func slowConn(e *env, handshake bool) (net.Conn, []byte) {
	raw, err := net.Dial("tcp", e.addr)
	if err != nil {
		return nil, nil
	}
	if !handshake {
		return raw, []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}
	}
	tc := tls.Client(raw, e.tls)
	tc.SetDeadline(time.Now().Add(20 * time.Second))
	if tc.Handshake() != nil {
		raw.Close()
		return nil, nil
	}
	tc.SetDeadline(time.Time{})
	return tc, []byte("GET /slow HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
}

// dribble writes payload a byte every 200 ms, round and round, until stop.
func dribble(c net.Conn, payload []byte, stop chan struct{}) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i = (i + 1) % len(payload) {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if _, err := c.Write(payload[i : i+1]); err != nil {
			return
		}
	}
}
