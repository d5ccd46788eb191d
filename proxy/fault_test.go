package proxy

import (
	"bytes"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

// The backend dies while a session is streaming: the client's session ends
// promptly, what was delivered before is intact, and the log says why.
func TestBackendKilledMidTransfer(t *testing.T) {
	e := start(t)
	c := e.ws("/doomed")
	payload := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	for i := range 5 {
		c.Conn.SetDeadline(time.Now().Add(5 * time.Second))
		if err := c.Send(wstest.OpBinary, payload); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Receive()
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("message %d not echoed intact: %v", i, err)
		}
	}
	began := time.Now()
	e.backend.Close() // every backend connection closes, as when the runtime is killed
	c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.Receive(); err == nil || isTimeout(err) {
		t.Fatalf("session not ended: %v", err)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("ended after %v", d)
	}
	c.Conn.Close() // as a browser does on the end of the stream
	if l := e.sessionLog("path", "/doomed"); l["reason"] != "backend closed" {
		t.Errorf("reason %v", l["reason"])
	}
}
