// Package soak drives many short WebSocket sessions through the proxy for
// a long time while the backend is restarted, verifies every echoed byte,
// and sorts every failure into a class. The soak command (bench/soak) and
// the backend-restart test use it.
package soak

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

// Options configure a Run.
type Options struct {
	Addr     string      // the proxy's host:port
	TLS      *tls.Config // trusting the proxy's certificate
	Workers  int         // sessions open at once; each worker runs one after another
	Duration time.Duration
	// Messages per session, each of 1 to MaxMessage random bytes.
	Messages, MaxMessage int
	// Stall is how long any one step may take before the session counts
	// as stuck.
	Stall time.Duration
	// Restart, if set, is called every RestartEvery to restart the backend.
	Restart      func() error
	RestartEvery time.Duration
	// Source, if set, is worker w's client address: each worker its own,
	// as each headset has, so that the proxy's per-client limits stay on.
	Source func(w int) net.IP
	// Watch, if set, is called every second for the proxy's footprint;
	// Result.Peak keeps the largest of each figure.
	Watch func() (Snapshot, error)
}

// Outcome classes. Completed is the only success; the failures a backend
// restart may cause are ClosedCleanly and Refused503. A 502 would mean the
// proxy blamed a runtime that had merely stopped: one that drops a request
// and then refuses connections gets 503.
const (
	Completed     = "completed"
	Refused503    = "refused 503 (backend down)"
	Refused502    = "refused 502 (bad gateway)"
	ClosedCleanly = "closed mid-session (clean close)"
	Reset         = "reset mid-session"
	Corrupt       = "echo corrupted"
	Stalled       = "stalled"
	ConnectFailed = "connect or TLS failed"
)

// Expected reports whether a class is one a backend restart may cause.
func Expected(class string) bool {
	return class == Completed || class == Refused503 || class == ClosedCleanly
}

// Result is what a Run saw.
type Result struct {
	Sessions      int64            // started
	BytesVerified int64            // echoed back intact, both ways counted once
	Classes       map[string]int64 // sessions by outcome
	Restarts      int
	RestartErrors []string
	Elapsed       time.Duration
	Peak          Snapshot
	// Examples holds one error text per failure class.
	Examples map[string]string
}

// Unexpected is the number of sessions in classes a restart must not cause.
func (r *Result) Unexpected() int64 {
	var n int64
	for c, v := range r.Classes {
		if !Expected(c) {
			n += v
		}
	}
	return n
}

// Run drives sessions until Duration has passed and every worker's last
// session has ended.
func Run(o Options) *Result {
	res := &Result{Classes: map[string]int64{}, Examples: map[string]string{}}
	var (
		mu       sync.Mutex
		sessions atomic.Int64
		verified atomic.Int64
	)
	record := func(class string, err error) {
		mu.Lock()
		res.Classes[class]++
		if err != nil && res.Examples[class] == "" {
			res.Examples[class] = err.Error()
		}
		mu.Unlock()
	}
	start := time.Now()
	deadline := start.Add(o.Duration)
	stop := make(chan struct{})
	var background sync.WaitGroup
	if o.Restart != nil {
		background.Go(func() {
			every(o.RestartEvery, stop, func() {
				if err := o.Restart(); err != nil {
					res.RestartErrors = append(res.RestartErrors, err.Error())
				}
				res.Restarts++
			})
		})
	}
	if o.Watch != nil {
		background.Go(func() {
			every(time.Second, stop, func() {
				s, err := o.Watch()
				if err != nil {
					return
				}
				p := &res.Peak
				p.Goroutines, p.FDs, p.OpenSessions = max(p.Goroutines, s.Goroutines), max(p.FDs, s.FDs), max(p.OpenSessions, s.OpenSessions)
				p.RSS, p.AnonRSS, p.HeapInuse = max(p.RSS, s.RSS), max(p.AnonRSS, s.AnonRSS), max(p.HeapInuse, s.HeapInuse)
			})
		})
	}

	var wg sync.WaitGroup
	for w := range o.Workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			for time.Now().Before(deadline) {
				sessions.Add(1)
				n, class, err := session(o, w, rng)
				verified.Add(n)
				record(class, err)
			}
		})
	}
	wg.Wait()
	close(stop)
	background.Wait()
	res.Sessions = sessions.Load()
	res.BytesVerified = verified.Load()
	res.Elapsed = time.Since(start)
	return res
}

// Sources gives each worker an address of its own in 127.2.0.0/16, for up
// to 65,024 workers.
func Sources(w int) net.IP {
	return wstest.Source(2, w)
}

// every calls f every d until stop is closed.
func every(d time.Duration, stop <-chan struct{}, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			f()
		}
	}
}

// session runs one: connect, upgrade, exchange Messages echoes, close.
func session(o Options, w int, rng *rand.Rand) (verified int64, class string, err error) {
	d := net.Dialer{Timeout: o.Stall}
	if o.Source != nil {
		d.LocalAddr = &net.TCPAddr{IP: o.Source(w)}
	}
	raw, err := d.Dial("tcp", o.Addr)
	if err != nil {
		return 0, ConnectFailed, err
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(o.Stall))
	tc := tls.Client(raw, o.TLS)
	if err := tc.Handshake(); err != nil {
		return 0, failure(err, ConnectFailed), err
	}
	cl, err := wstest.Upgrade(tc, "localhost", "/sign_in?peer_id=soak")
	if err != nil {
		if cl != nil && cl.Response != nil {
			switch cl.Response.StatusCode {
			case 503:
				return 0, Refused503, nil
			case 502:
				return 0, Refused502, nil
			}
			return 0, fmt.Sprintf("refused %d", cl.Response.StatusCode), err
		}
		return 0, failure(err, ClosedCleanly), err
	}
	for range o.Messages {
		raw.SetDeadline(time.Now().Add(o.Stall))
		msg := make([]byte, 1+rng.IntN(o.MaxMessage))
		for i := range msg {
			msg[i] = byte(rng.Uint32())
		}
		if err := cl.Send(wstest.OpBinary, msg); err != nil {
			return verified, sendFailure(cl, raw, err), err
		}
		op, got, err := cl.Receive()
		if err != nil {
			return verified, failure(err, ClosedCleanly), err
		}
		if op == wstest.OpClose {
			return verified, ClosedCleanly, nil
		}
		if op != wstest.OpBinary || !bytes.Equal(got, msg) {
			return verified, Corrupt, fmt.Errorf("sent %d bytes, got op %d with %d bytes", len(msg), op, len(got))
		}
		verified += int64(len(msg))
	}
	raw.SetDeadline(time.Now().Add(o.Stall))
	cl.Close()
	return verified, Completed, nil
}

// sendFailure sorts a failed send. When the backend dies the proxy says
// goodbye (close_notify, FIN), waits a moment for the client to close, then
// closes its socket; a client that is not reading meanwhile (this one only
// reads after it has sent) meets the closed socket with its next write,
// "broken pipe". Whether the goodbye came first is in what is left to
// read: the proxy's close_notify (EOF) makes it a clean close; a reset or
// anything else leaves it the failure the write saw.
func sendFailure(cl *wstest.Client, raw net.Conn, err error) string {
	class := failure(err, ClosedCleanly)
	if class != Reset {
		return class
	}
	raw.SetReadDeadline(time.Now().Add(time.Second))
	if _, _, rerr := cl.Receive(); errors.Is(rerr, io.EOF) {
		return ClosedCleanly
	}
	return class
}

// failure sorts a session's error: a deadline is a stall, a reset is a
// reset, the end of the stream is ifEOF.
func failure(err error, ifEOF string) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		return Stalled
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return Reset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), strings.Contains(err.Error(), "use of closed"):
		return ifEOF
	}
	return ifEOF + ": " + err.Error()
}

// Report is a Result as text, classes in a stable order.
func (r *Result) Report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sessions started   %d in %v (%.0f/s)\n", r.Sessions, r.Elapsed.Round(time.Second), float64(r.Sessions)/r.Elapsed.Seconds())
	fmt.Fprintf(&b, "bytes verified     %d (%.1f MiB)\n", r.BytesVerified, float64(r.BytesVerified)/(1<<20))
	fmt.Fprintf(&b, "backend stops and starts %d\n", r.Restarts)
	classes := make([]string, 0, len(r.Classes))
	for c := range r.Classes {
		classes = append(classes, c)
	}
	slices.Sort(classes)
	for _, c := range classes {
		mark := ""
		if !Expected(c) {
			mark = "   <- not expected"
		}
		fmt.Fprintf(&b, "  %-48s %8d%s\n", c, r.Classes[c], mark)
		if ex := r.Examples[c]; ex != "" && !Expected(c) {
			fmt.Fprintf(&b, "    e.g. %s\n", ex)
		}
	}
	for _, e := range r.RestartErrors {
		fmt.Fprintf(&b, "restart error: %s\n", e)
	}
	return b.String()
}
