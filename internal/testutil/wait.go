// Package testutil holds what the tests of several packages share.
package testutil

import (
	"testing"
	"time"
)

// WaitFor polls cond until it holds, failing the test when d has passed:
// tests wait for state this way, never with a sleep. Call it from the
// test's own goroutine.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
