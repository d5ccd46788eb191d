package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

// echoBackend stands in for the CloudXR runtime: it answers the upgrade,
// then echoes raw bytes. Frames are not parsed; the client reads its own
// masked frames back, which costs the backend nothing, so the machine's
// cores go to the proxies being measured. The echo is a plain read/write
// loop: io.Copy between TCP connections would splice through a pipe, two
// descriptors per waiting connection, and 5,000 idle sessions would run
// this process out of descriptors.
type echoBackend struct {
	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startEchoBackend() (*echoBackend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &echoBackend{ln: ln, conns: map[net.Conn]struct{}{}}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "bench: echo backend:", err)
				time.Sleep(10 * time.Millisecond) // like net/http's accept backoff
				continue
			}
			b.mu.Lock()
			b.conns[c] = struct{}{}
			b.mu.Unlock()
			b.wg.Add(1)
			go b.serve(c)
		}
	}()
	return b, nil
}

func (b *echoBackend) port() int { return b.ln.Addr().(*net.TCPAddr).Port }

func (b *echoBackend) serve(c net.Conn) {
	defer b.wg.Done()
	defer func() {
		b.mu.Lock()
		delete(b.conns, c)
		b.mu.Unlock()
		c.Close()
	}()
	br := bufio.NewReaderSize(c, 4096)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	if req.Header.Get("Upgrade") == "" {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
		return
	}
	io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+
		wstest.AcceptKey(req.Header.Get("Sec-WebSocket-Key"))+"\r\n\r\n")
	if n := br.Buffered(); n > 0 {
		p, _ := br.Peek(n)
		c.Write(p)
	}
	buf := make([]byte, 32<<10)
	io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, buf)
}

func (b *echoBackend) close() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}
