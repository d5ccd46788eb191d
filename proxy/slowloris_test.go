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
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	dribble := func(c net.Conn, payload []byte) {
		defer wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i = (i + 1) % len(payload) {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			if _, err := c.Write(payload[i : i+1]); err != nil {
				return
			}
		}
	}
	// Half dribble a TLS handshake; the other half finish it, then
	// dribble a request head.
	sem := make(chan struct{}, 64)
	var opened sync.WaitGroup
	for i := range n {
		opened.Add(1)
		sem <- struct{}{}
		go func() {
			defer opened.Done()
			defer func() { <-sem }()
			raw, err := net.Dial("tcp", e.addr)
			if err != nil {
				return
			}
			var c net.Conn = raw
			payload := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}
			if i%2 == 1 {
				tc := tls.Client(raw, e.tls)
				tc.SetDeadline(time.Now().Add(20 * time.Second))
				if tc.Handshake() != nil {
					raw.Close()
					return
				}
				tc.SetDeadline(time.Time{})
				c, payload = tc, []byte("GET /slow HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go dribble(c, payload)
		}()
	}
	opened.Wait()
	mu.Lock()
	held := len(conns)
	mu.Unlock()
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
