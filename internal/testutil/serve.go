package testutil

import (
	"net"
	"testing"
)

// ServeEach listens on a free loopback port and runs f for each connection,
// one at a time, closing it after: a stand-in for whatever program a test
// needs on a port (one that greets in another protocol, one that stays
// silent). It stops when the test ends and returns the address.
func ServeEach(t testing.TB, f func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f(c)
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// SSHGreeting is what an SSH server says first: a program that holds a
// port and does not speak HTTP.
func SSHGreeting(c net.Conn) { c.Write([]byte("SSH-2.0-OpenSSH_9.2p1\r\n")) }
