package proxy

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/auth"
)

// Local answers the requests the proxy serves itself (the portal): GET and
// HEAD of the paths it Owns. Everything else goes to the backend.
type Local interface {
	http.Handler
	Owns(method, target string) bool
}

// localBufferLimit: a local response without a Content-Length is held up to
// this size, so its length can be sent and the connection kept alive.
const localBufferLimit = 64 << 10

// serveLocal runs the local handler for a head and reports whether the
// connection can carry another request.
func (s *session) serveLocal(req requestHead, head []byte) bool {
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
	if err != nil {
		s.refuse(badHead("malformed request"))
		return false
	}
	st := s.tc.ConnectionState()
	r.TLS = &st
	r.RemoteAddr = s.client
	ctx, cancel := context.WithTimeout(s.srv.ctx, s.srv.opts.ResponseTimeout)
	defer cancel()
	if s.authenticated(req) {
		ctx = auth.WithAuthenticated(ctx) // the pages may show the backend
	}
	w := &localWriter{s: s, header: http.Header{}, noBody: req.method == http.MethodHead, keep: !req.close && !req.hasBody}
	s.srv.opts.Local.ServeHTTP(w, r.WithContext(ctx))
	w.finish()
	s.status = w.status
	return w.keep && w.err == nil
}

// localWriter is an http.ResponseWriter that writes to the session's TLS
// connection: it adds the header set, keeps the connection alive when the
// length is known, and drops the body of a HEAD response.
type localWriter struct {
	s      *session
	header http.Header
	status int
	noBody bool
	keep   bool
	sent   bool // head written
	buf    []byte
	// discarded counts the body of a HEAD answer.
	discarded int
	err       error
}

func (w *localWriter) Header() http.Header { return w.header }

func (w *localWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *localWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.err != nil {
		return 0, w.err
	}
	if w.noBody || !bodyAllowed(w.status) {
		w.discarded += len(b) // a HEAD answer still says how long the body is
		return len(b), nil
	}
	if !w.sent {
		if w.header.Get("Content-Length") == "" && len(w.buf)+len(b) <= localBufferLimit {
			w.buf = append(w.buf, b...)
			return len(b), nil
		}
		w.writeHead(-1)
		if _, err := w.write(w.buf); err != nil {
			return 0, err
		}
		w.buf = nil
	}
	return w.write(b)
}

func (w *localWriter) write(b []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.s.tun.Write(b)
	w.err = err
	return n, err
}

// finish sends what the handler left buffered.
func (w *localWriter) finish() {
	w.WriteHeader(http.StatusOK)
	if !w.sent {
		w.writeHead(len(w.buf) + w.discarded)
		w.write(w.buf)
	}
}

// writeHead writes the status line and headers. length is the body's
// length when known, or -1: then the body runs to the connection's close.
func (w *localWriter) writeHead(length int) {
	w.sent = true
	h := w.header
	for _, n := range w.s.cors.closing {
		h.Del(n)
	}
	if h.Get("Content-Length") == "" && bodyAllowed(w.status) {
		if length >= 0 {
			h.Set("Content-Length", strconv.Itoa(length))
		} else {
			w.keep = false
		}
	}
	if !w.keep {
		h.Set("Connection", "close")
	}
	if h.Get("Date") == "" {
		h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 " + strconv.Itoa(w.status) + " " + http.StatusText(w.status) + "\r\n")
	h.Write(&b)
	b.Write(w.s.cors.block)
	b.WriteString("\r\n")
	w.write(b.Bytes())
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}
