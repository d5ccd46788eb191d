package proxy

import (
	"fmt"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

// Freed memory is handed back a few seconds after a burst of connections,
// and again after a burst of sessions ending, even when no connection has
// arrived since: a lab where every headset leaves at once gets its memory
// back too.
func TestMemoryHandedBackAfterBursts(t *testing.T) {
	t.Parallel() // it waits; it measures nothing another test could move
	e := start(t, func(o *Options) { o.ReleaseIdleMemory = true })
	const n = 70 // more than the 64 a burst must have
	cls := make([]*wstest.Client, n)
	for i := range cls {
		cls[i] = e.ws(fmt.Sprintf("/held%d", i))
		if err := cls[i].Echo("hello", 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "a release after the burst of connections", func() bool { return e.srv.releases.Load() == 1 })

	for _, c := range cls {
		c.Close()
	}
	waitFor(t, 10*time.Second, "a release after the sessions ended", func() bool { return e.srv.releases.Load() == 2 })
	if n := e.srv.ActiveConnections(); n != 0 {
		t.Errorf("released while %d connections were still open", n)
	}
}
