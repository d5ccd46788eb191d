package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// sloppyBackend is a runtime that ignores "Connection: close": it answers
// every request it reads on a connection, keeps reading, and sends bytes
// past each response's declared length.
type sloppyBackend struct {
	ln  net.Listener
	mu  sync.Mutex
	got []string // request line and body of each request read
	wg  sync.WaitGroup
}

func startSloppy(t *testing.T, answer string) *sloppyBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &sloppyBackend{ln: ln}
	b.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					body, _ := io.ReadAll(req.Body)
					b.mu.Lock()
					b.got = append(b.got, req.Method+" "+req.RequestURI+" "+req.Header.Get("Authorization")+" "+string(body))
					b.mu.Unlock()
					io.WriteString(c, answer)
				}
			})
		}
	})
	t.Cleanup(func() { ln.Close(); b.wg.Wait() })
	return b
}

func (b *sloppyBackend) requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.got...)
}

// After a forwarded request, what the client sends next never reaches the
// runtime unchecked, and the client gets the response cut at its declared
// length (issue 18, finding 6).
func TestNothingPassesAfterTheRequest(t *testing.T) {
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer not-checked\r\n\r\n"
	for _, c := range []struct {
		name, request, answer, wantBody string
		wantBackend                     []string
	}{
		{"a POST and its body", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody" + smuggled,
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra", "ok", []string{"POST /a  body"}},
		{"a GET", "GET /b HTTP/1.1\r\nHost: x\r\n\r\n" + smuggled,
			"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nnoMORE", "no", []string{"GET /b  "}},
		{"a refused upgrade", upgradeHead("GET /c HTTP/1.1") + smuggled,
			"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbadMORE", "bad", []string{"GET /c  "}},
		{"a chunked response", "GET /e HTTP/1.1\r\nHost: x\r\n\r\n" + smuggled,
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra", "ok", []string{"GET /e  "}},
		{"a HEAD", "HEAD /d HTTP/1.1\r\nHost: x\r\n\r\n" + smuggled,
			"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nnot a HEAD body", "", []string{"HEAD /d  "}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := startSloppy(t, c.answer)
			e := startWith(t, nil, b.ln.Addr().String())
			conn := e.dial()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(conn, c.request)
			br := bufio.NewReader(conn)
			req, _ := http.NewRequest(strings.Fields(c.request)[0], "/", nil)
			resp, err := http.ReadResponse(br, req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			rest, _ := io.ReadAll(br)
			if string(body) != c.wantBody || len(rest) > 0 || !resp.Close {
				t.Errorf("client got body %q then %q (closing %v)", body, rest, resp.Close)
			}
			e.sessionLog("path", strings.Fields(c.request)[1])
			if got := b.requests(); strings.Join(got, "|") != strings.Join(c.wantBackend, "|") {
				t.Errorf("the runtime read %q, want %q", got, c.wantBackend)
			}
		})
	}
}

// A chunked request body for the runtime is refused with 411: the proxy
// would have to parse it to know where it ends.
func TestChunkedRequestBodyRefused(t *testing.T) {
	e := start(t)
	c := e.dial()
	io.WriteString(c, "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusLengthRequired {
		t.Fatalf("%v %v", resp, err)
	}
	if n := e.backend.Accepted(); n != 0 {
		t.Errorf("the backend was contacted %d times", n)
	}
}

// Bytes a client sends after its upgrade request, before the 101, reach
// the runtime once it has accepted, in order.
func TestEarlyBytesFollowTheUpgrade(t *testing.T) {
	e := start(t)
	c := e.dial()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// A masked WebSocket text frame "hi" right behind the head.
	frame := []byte{0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2}
	io.WriteString(c, upgradeHead("GET /sign_in HTTP/1.1")+string(frame))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("%v %v", resp, err)
	}
	echo := make([]byte, 4)
	if _, err := io.ReadFull(br, echo); err != nil || string(echo[2:]) != "hi" {
		t.Fatalf("echo %q %v", echo, err)
	}
}
