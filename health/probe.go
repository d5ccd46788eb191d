package health

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/quote"
)

// A Probe asks the program behind a connected socket whether it is the
// runtime, before deadline; nil means it is.
type Probe func(conn net.Conn, deadline time.Time) error

// ErrNotRuntime is a check that connected to something other than a
// CloudXR runtime: the port answers, but not as the runtime's plain HTTP
// signaling server does.
var ErrNotRuntime = errors.New("something else is listening there")

// probeRequest is the check's request: the runtime's signaling server is
// an HTTP server (the WebSocket upgrade is HTTP), and any status it gives
// to a plain GET says it is there.
const probeRequest = "GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: cloudxr-wss-proxy health check\r\nConnection: close\r\n\r\n"

// HTTP is the default Probe: a plain GET, and any HTTP status line in
// answer counts. A TLS server (its alert, or the "plain HTTP sent to an
// HTTPS port" answer web servers give), another protocol's greeting or a
// close without an answer is something else; no answer in time (or a
// reset) is a failed check.
func HTTP(conn net.Conn, deadline time.Time) error {
	conn.SetDeadline(deadline)
	if _, err := fmt.Fprintf(conn, probeRequest, conn.RemoteAddr()); err != nil {
		return fmt.Errorf("sending the check's request: %w", err)
	}
	var buf [1024]byte
	n, err := io.ReadAtLeast(conn, buf[:], 5)
	return classify(buf[:n], err)
}

// classify says what an answer to the check's request shows.
func classify(answer []byte, readErr error) error {
	switch {
	case len(answer) >= 2 && (answer[0] == 0x15 || answer[0] == 0x16) && answer[1] == 0x03:
		return fmt.Errorf("%w: a TLS server (BACKEND_PORT must be the runtime's plain ws:// port)", ErrNotRuntime)
	case bytes.HasPrefix(answer, []byte("HTTP/1.")) && tlsComplaint(answer):
		return fmt.Errorf("%w: an HTTPS server, which says plain HTTP was sent to it (BACKEND_PORT must be the runtime's plain ws:// port)", ErrNotRuntime)
	case bytes.HasPrefix(answer, []byte("HTTP/")):
		return nil
	case len(answer) > 0:
		return fmt.Errorf("%w: it answered %s, not HTTP", ErrNotRuntime, quote.Clipped(string(answer), 32))
	case errors.Is(readErr, io.EOF):
		return fmt.Errorf("%w: it closed the connection without answering", ErrNotRuntime)
	case readErr != nil:
		// Silence or a reset is what a runtime that is restarting, or too
		// busy to answer in time, gives too: a failed check like a refused
		// connect, not proof that another program holds the port.
		return fmt.Errorf("no answer to an HTTP request: %w", readErr)
	}
	return nil
}

// tlsComplaint: a 400 whose words say the request should have been TLS,
// as Go's, nginx's and this proxy's HTTPS ports answer plain HTTP.
func tlsComplaint(answer []byte) bool {
	if len(answer) < 12 || string(answer[8:12]) != " 400" { // "HTTP/1.x 400"
		return false
	}
	lower := bytes.ToLower(answer)
	for _, w := range [][]byte{[]byte("https"), []byte("tls"), []byte("ssl")} {
		if bytes.Contains(lower, w) {
			return true
		}
	}
	return false
}
