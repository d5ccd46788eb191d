package proxy

import (
	"fmt"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

// Sessions run on workers that wait for the next session once theirs is
// over: one after another, they all run on one; many at once leave at
// most maxIdleWorkers waiting, for workerIdle; Shutdown ends the waiting
// ones (the package's goleak check sees any left).
func TestWorkersCarryOn(t *testing.T) {
	e := start(t)
	for i := range 5 {
		cl := e.ws(fmt.Sprintf("/one-after-another/%d", i))
		if err := cl.Echo("hello", 5*time.Second); err != nil {
			t.Fatal(err)
		}
		cl.Close()
		waitFor(t, 5*time.Second, "the session's end", func() bool { return e.srv.ActiveConnections() == 0 })
		waitFor(t, 5*time.Second, "its worker waiting", func() bool { return e.srv.idleWorkers.Load() == 1 })
	}
	const n = maxIdleWorkers + 8
	cls := make([]*wstest.Client, n)
	for i := range cls {
		cls[i] = e.ws(fmt.Sprintf("/at-once/%d", i))
		if err := cls[i].Echo("hello", 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for _, cl := range cls {
		cl.Close()
	}
	waitFor(t, 5*time.Second, "every session's end", func() bool { return e.srv.ActiveConnections() == 0 })
	waitFor(t, 5*time.Second, "the workers back", func() bool { return e.srv.idleWorkers.Load() == maxIdleWorkers })
	// Once sessions stop coming, the workers go, and their stacks with them.
	waitFor(t, workerIdle+5*time.Second, "the workers gone", func() bool { return e.srv.idleWorkers.Load() == 0 })
}
