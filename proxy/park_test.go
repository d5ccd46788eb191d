package proxy

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

func parking(o *Options) { o.ParkAfter = 100 * time.Millisecond }

func TestQuietSessionsParkAndWake(t *testing.T) {
	e := start(t, parking)
	const n = 20
	before := runtime.NumGoroutine()
	cls := make([]*wstest.Client, n)
	for i := range cls {
		cls[i] = e.ws(fmt.Sprintf("/s%d", i))
		if err := cls[i].Echo("first", 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "every direction parked", func() bool { return e.srv.ParkedDirections() == 2*n })
	// Parked sessions hold no goroutines of their own (the test's backend
	// keeps one per connection).
	if g := runtime.NumGoroutine(); g > before+n+5 {
		t.Errorf("%d goroutines with %d parked sessions (started with %d)", g, n, before)
	}
	// Each wakes, echoes, and parks again.
	for round := range 3 {
		for i, c := range cls {
			msg := fmt.Sprintf("round %d session %d %s", round, i, make([]byte, round*5000))
			if err := c.Echo(msg, 5*time.Second); err != nil {
				t.Fatalf("round %d session %d: %v", round, i, err)
			}
		}
		waitFor(t, 5*time.Second, "parked again", func() bool { return e.srv.ParkedDirections() == 2*n })
	}
	// A close handshake wakes both directions and ends the session cleanly.
	if err := cls[0].Close(); err != nil {
		t.Fatal(err)
	}
	if l := e.sessionLog("path", "/s0"); l["reason"] != "backend closed" && l["reason"] != "client closed" {
		t.Errorf("reason %v", l["reason"])
	}
}

func TestParkedSessionIdleTimeout(t *testing.T) {
	e := start(t, parking, func(o *Options) { o.TunnelTimeout = 600 * time.Millisecond })
	c := e.ws("/quiet")
	waitFor(t, 5*time.Second, "parked", func() bool { return e.srv.ParkedDirections() == 2 })
	c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.Receive(); err == nil || isTimeout(err) {
		t.Fatalf("quiet parked session not closed: %v", err)
	}
	if l := e.sessionLog("path", "/quiet"); l["reason"] != "idle timeout" {
		t.Errorf("reason %v", l["reason"])
	}
}

func TestParkedSessionsClosedOnShutdown(t *testing.T) {
	e := start(t, parking)
	c := e.ws("/parked")
	waitFor(t, 5*time.Second, "parked", func() bool { return e.srv.ParkedDirections() == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	began := time.Now()
	e.srv.Shutdown(ctx)
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.Receive(); err == nil || isTimeout(err) {
		t.Fatalf("parked session not closed: %v", err)
	}
	if l := e.sessionLog("path", "/parked"); l["reason"] != "shutdown" {
		t.Errorf("reason %v", l["reason"])
	}
}
