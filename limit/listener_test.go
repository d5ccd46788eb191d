package limit

import (
	"io"
	"net"
	"testing"
	"time"
)

// The listener closes a connection over the per-client limit at once and
// gives a place back when an admitted connection closes.
func TestListenerLimitsConnections(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := make(chan string, 4)
	ln := New(Options{MaxConns: 1, TableSize: 1024}).Listener(raw, func(l string) { refused <- l })
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial()
	first := <-accepted
	second := dial()
	if got := <-refused; got != Connections {
		t.Errorf("refused for %q, want %q", got, Connections)
	}
	second.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := second.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the refused connection read %v, want EOF", err)
	}
	first.Close()
	first.Close() // the place is given back once
	dial()
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("a connection after the first closed was not admitted")
	}
}
