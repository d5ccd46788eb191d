// Package health watches the backend with checks on a ticker, the way
// HAProxy's "check inter X rise R fall F" does, and reports state changes.
// A check connects and, with a Probe (HTTP by default), asks whether what
// answers is the runtime's HTTP server: another program on the port is not
// a runtime that is up.
package health

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"
)

// State is the backend's health as the checker sees it.
type State int

const (
	Unknown State = iota // before the first check
	Up
	Down
)

func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "unknown"
}

// Options configure a Checker.
type Options struct {
	Addr     string        // host:port to connect to
	Interval time.Duration // between checks
	Timeout  time.Duration // for one connect
	Rise     int           // consecutive good checks to mark up
	Fall     int           // consecutive failed checks to mark down
	Logger   *zap.Logger
	// OnCheck, if set, is told each check's result and duration.
	OnCheck func(ok bool, took time.Duration)
	// Dial is the connect function; nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Probe, if set, asks what answers on the connected socket (HTTP:
	// is it the runtime's HTTP server?); nil: a connect is enough
	// (HEALTH_CHECK_MODE=tcp, as HAProxy's check).
	Probe Probe
}

// Checker runs checks one at a time on a ticker.
type Checker struct {
	opts     Options
	watchers []func(s State, reason string) // see OnChange

	mu      sync.Mutex
	state   State
	since   time.Time
	good    int   // consecutive good results while down or unknown
	bad     int   // consecutive failed results while up or unknown
	lastErr error // the last check's error, nil when it passed
}

// New returns a Checker; Run starts it.
func New(o Options) *Checker {
	if o.Dial == nil {
		o.Dial = (&net.Dialer{}).DialContext
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return &Checker{opts: o, since: time.Now()}
}

// OnChange adds f to what is told of each change of state, from the
// checker's goroutine or from a session's in Observe. Call it before Run:
// whoever acts on changes (the proxy, the metrics) can then be built after
// the checker, which they need, and subscribe once they exist.
func (c *Checker) OnChange(f func(s State, reason string)) {
	c.watchers = append(c.watchers, f)
}

func (c *Checker) changed(s State, reason string) {
	for _, f := range c.watchers {
		f(s, reason)
	}
}

// Run checks once at once, then every Interval until ctx ends.
func (c *Checker) Run(ctx context.Context) {
	t := time.NewTicker(c.opts.Interval)
	defer t.Stop()
	for {
		c.checkOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Checker) checkOnce(parent context.Context) {
	ctx, cancel := context.WithTimeout(parent, c.opts.Timeout)
	defer cancel()
	start := time.Now()
	conn, err := c.opts.Dial(ctx, "tcp", c.opts.Addr)
	if err == nil {
		if c.opts.Probe != nil {
			deadline, _ := ctx.Deadline()
			err = c.opts.Probe(conn, deadline)
		}
		conn.Close()
	}
	if parent.Err() != nil {
		return // shutting down; not the backend's fault
	}
	c.record(err, time.Since(start))
}

// record applies one check result to the rise/fall counters.
func (c *Checker) record(err error, took time.Duration) {
	c.mu.Lock()
	prev := c.state
	c.lastErr = err
	if err == nil {
		c.bad = 0
		c.good++
		// The first check decides the start state at once; afterwards a
		// down backend needs Rise good checks in a row.
		if c.state == Unknown || (c.state == Down && c.good >= c.opts.Rise) {
			c.set(Up)
		}
	} else {
		c.good = 0
		c.bad++
		if c.state == Unknown || (c.state == Up && c.bad >= c.opts.Fall) {
			c.set(Down)
		}
	}
	next := c.state
	c.mu.Unlock()

	if c.opts.OnCheck != nil {
		c.opts.OnCheck(err == nil, took)
	}
	log := c.opts.Logger
	if ce := log.Check(zap.DebugLevel, "health check"); ce != nil {
		ce.Write(zap.String("backend", c.opts.Addr), zap.Bool("ok", err == nil), zap.Duration("took", took), zap.Error(err))
	}
	if next == prev {
		return
	}
	var reason string
	switch {
	case next == Up && prev == Unknown:
		reason = "first check connected"
		log.Info("backend is up", zap.String("backend", c.opts.Addr), zap.String("reason", reason))
	case next == Up:
		reason = "checks connect again"
		log.Info("backend is up", zap.String("backend", c.opts.Addr), zap.String("reason", reason), zap.Int("good_checks", c.opts.Rise))
	case errors.Is(err, ErrNotRuntime):
		reason = "something else is listening on its port"
		log.Warn("backend is down: something else is listening on its port, not a CloudXR runtime",
			zap.String("backend", c.opts.Addr), zap.String("reason", reason), zap.Error(err))
	case prev == Unknown:
		reason = "first check failed"
		// Expected while the runtime starts: a warning, not a failure.
		log.Warn("backend is down; waiting for the CloudXR runtime to accept connections",
			zap.String("backend", c.opts.Addr), zap.String("reason", reason), zap.Error(err))
	default:
		reason = "checks failed"
		log.Warn("backend is down", zap.String("backend", c.opts.Addr), zap.String("reason", reason),
			zap.Int("failed_checks", c.opts.Fall), zap.Error(err))
	}
	c.changed(next, reason)
}

// Observe lets a session report that it connected to the backend. A
// connection that works is better evidence than any check, so a backend
// marked down is marked up at once: a restarted runtime must not cost users
// Rise intervals of refusals.
func (c *Checker) Observe() {
	c.mu.Lock()
	if c.state == Up {
		c.mu.Unlock()
		return
	}
	prev := c.state
	c.set(Up)
	c.bad, c.good = 0, 0
	c.mu.Unlock()
	reason := "a session connected"
	c.opts.Logger.Info("backend is up", zap.String("backend", c.opts.Addr), zap.String("reason", reason), zap.Stringer("was", prev))
	c.changed(Up, reason)
}

func (c *Checker) set(s State) {
	c.state = s
	c.since = time.Now()
	c.good, c.bad = 0, 0
}

// Problem is why the last check failed, when it found something other
// than the runtime on the port (ErrNotRuntime); nil otherwise.
func (c *Checker) Problem() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if errors.Is(c.lastErr, ErrNotRuntime) {
		return c.lastErr
	}
	return nil
}

// State returns the current state and when it began.
func (c *Checker) State() (State, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state, c.since
}
