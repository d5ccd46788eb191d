// Package proxy is the data path: a TLS listener that answers preflights,
// forwards WebSocket upgrades and other requests to the CloudXR runtime,
// adds the CORS and Private-Network header set to every response, and then
// copies bytes both ways without parsing them.
package proxy

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/allow"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/auth"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/health"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/limit"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/pool"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/tunnel"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("proxy: server closed")

// Options configure a Server. Zero durations are not valid; config.Config
// supplies the defaults.
type Options struct {
	Backend string // host:port of the CloudXR runtime
	// GetCertificate supplies the TLS certificate (see certs.Provider).
	GetCertificate    func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	TLSSessionTickets bool
	TLSPostQuantum    bool // offer X25519MLKEM768 (see TLSConfig)
	// Health, if set, gates and speeds up backend dials; nil dials always
	// with ConnectTimeout.
	Health *health.Checker
	// RouteHealth holds checkers for routed runtimes listed in ROUTE_CHECK,
	// by the address Router.Target gives; a routed runtime without one is
	// checked on use only.
	RouteHealth map[string]*health.Checker

	ConnectTimeout   time.Duration
	TunnelTimeout    time.Duration
	HandshakeTimeout time.Duration
	HeadTimeout      time.Duration
	ResponseTimeout  time.Duration

	// Local, if set, answers the requests it owns instead of the backend.
	Local Local
	// AllowedOrigins, if set, is the ALLOWED_ORIGINS allow-list (see
	// Origins); nil allows any origin.
	AllowedOrigins *allow.Origins
	// Auth, if set, must accept the credential of every upgrade and
	// forwarded request (see authorize.go); the credential is taken out of
	// the request before it goes on. AuthQueryParam and AuthCookie name
	// where else than "Authorization: Bearer" it may be.
	Auth                       auth.Verifier
	AuthQueryParam, AuthCookie string
	// Limits, if set, are the per-client limits: connections and
	// handshakes checked before TLS, failed authentications before
	// verification (see authorize.go).
	Limits *limit.Table
	// NativeBackendPort, if set, is the runtime's port for upgrades from
	// native clients (x-cloudxr-device-type: native).
	NativeBackendPort int
	// Router, if set, picks the backend from each request's first path
	// segment (see Router) instead of Backend.
	Router *Router
	// Pool, if set, gives each new session a runtime of its own instead
	// of Backend (BACKEND_POOL; see pool.go); PoolHealth returns a pooled
	// runtime's checker, PoolCookie names the cookie that says who a
	// browser's user is (DefaultPoolCookie when empty).
	Pool       *pool.Pool
	PoolHealth func(runtime string) *health.Checker
	PoolCookie string
	// Observer, if set, is told about handshakes, sessions and refusals.
	Observer Observer
	// ACMEChallenges offers the ALPN protocol "acme-tls/1" beside
	// http/1.1, for an ACME CA's TLS-ALPN-01 validation: GetCertificate
	// answers its handshake with the challenge certificate, and the
	// connection then ends (reason "acme challenge answered").
	ACMEChallenges bool
	// CheckName, if set, is told after each handshake the name a client
	// asked for (its SNI, or the address it dialed when it sent none).
	CheckName func(name, client string)

	MaxConnections int  // 0: no limit
	ProxyProtocol  bool // require a PROXY protocol header
	Logger         *zap.Logger

	// ParkAfter is how long a tunnel must be quiet before it gives up its
	// goroutines (see package tunnel); 0 means 3 s, negative never.
	ParkAfter time.Duration
	// ReleaseIdleMemory returns freed memory to the OS once connections
	// have stopped arriving and ending for a few seconds after a burst.
	ReleaseIdleMemory bool
}

// parkAfter is how long a tunnel must be quiet before its ways park.
const parkAfter = 3 * time.Second

// downDialTimeout bounds a dial while the backend is marked down, so a new
// session learns within a second that the runtime is not there.
const downDialTimeout = time.Second

// Server accepts TLS connections and runs one session per connection.
type Server struct {
	opts    Options
	tlsConf *tls.Config
	log     *zap.Logger
	// floodLog is rate-limited: handshake failures and refusals can come
	// in floods from scanners and misconfigured clients.
	floodLog       *zap.Logger
	unreachableMsg string
	credNames      credentialNames
	poolCookie     credentialNames // only its cookie: the pool cookie
	// nativeBackend is the default backend's host at NativeBackendPort.
	nativeBackend string
	// dialer connects to the default backend; routedDialer to routed
	// runtimes, checking where their names resolved to
	// (allow.Runtimes.CheckResolved).
	dialer, routedDialer net.Dialer

	// ctx is cancelled when the server stops for good.
	ctx    context.Context
	cancel context.CancelFunc

	parker    *tunnel.Parker // nil: parking is off
	sweepOnce sync.Once
	stopOnce  sync.Once
	sweepStop chan struct{}
	sweepDone chan struct{}
	accepted  atomic.Int64
	releases  atomic.Int64 // times freed memory was handed back (ReleaseIdleMemory)

	mu        sync.Mutex
	sessions  map[*session]struct{}
	listeners map[net.Listener]struct{}
	shutting  bool
	wg        sync.WaitGroup // one per session goroutine
	active    atomic.Int64
}

// New returns a Server; Serve starts it.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := &Server{
		opts:    o,
		tlsConf: recordHello(TLSConfig(o.GetCertificate, o.TLSSessionTickets, o.TLSPostQuantum, o.ACMEChallenges)),
		log:     o.Logger,
		floodLog: o.Logger.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
			return zapcore.NewSamplerWithOptions(c, time.Second, 5, 1000)
		})),
		unreachableMsg: fmt.Sprintf("The CloudXR runtime at %s is not reachable. Start the runtime, or check BACKEND_HOST and BACKEND_PORT.\n", o.Backend),
		ctx:            ctx,
		cancel:         cancel,
		sessions:       map[*session]struct{}{},
		listeners:      map[net.Listener]struct{}{},
		sweepStop:      make(chan struct{}),
		sweepDone:      make(chan struct{}),
	}
	srv.credNames = credentialNames{param: o.AuthQueryParam, cookie: o.AuthCookie}
	srv.opts.PoolCookie = cmp.Or(o.PoolCookie, DefaultPoolCookie)
	srv.poolCookie = credentialNames{cookie: srv.opts.PoolCookie}
	if o.NativeBackendPort != 0 {
		host, _, _ := net.SplitHostPort(o.Backend)
		srv.nativeBackend = net.JoinHostPort(host, strconv.Itoa(o.NativeBackendPort))
	}
	srv.dialer, srv.routedDialer = backendDialer, backendDialer
	if o.Router != nil {
		srv.routedDialer.Control = checkResolved(o.Router.runtimes.CheckResolved)
	}
	if o.ParkAfter == 0 {
		o.ParkAfter = parkAfter
	}
	if o.ParkAfter > 0 {
		p, err := tunnel.NewParker(o.ParkAfter)
		switch {
		case errors.Is(err, tunnel.ErrNoParking):
			// Not this system's way (README: what differs per platform).
		case err != nil:
			o.Logger.Warn("quiet sessions cannot park; each keeps its goroutines", zap.Error(err))
		}
		srv.parker = p
	}
	return srv
}

// Serve accepts connections on ln (made by Listen, so accepted sockets
// inherit their options) until Shutdown. Temporary accept errors
// (out of descriptors) are retried with a backoff from 5 ms to 1 s, as
// net/http does.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.shutting {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	s.sweepOnce.Do(func() { go s.sweepLoop() })

	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isShutting() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.floodLog.Warn("accept failed; retrying", zap.Error(err), zap.Duration("retry_in", delay))
			select {
			case <-time.After(delay):
			case <-s.ctx.Done():
				return ErrServerClosed
			}
			continue
		}
		delay = 0
		s.accepted.Add(1)
		if max := s.opts.MaxConnections; max > 0 && s.active.Load() >= int64(max) {
			// Refuse at once rather than let the client wait in the
			// backlog: it can retry, and open sessions stay unharmed.
			s.opts.Observer.ConnectionRefused()
			s.floodLog.Warn("connection limit reached; refusing a connection",
				zap.Int("max_connections", max), zap.Stringer("client", c.RemoteAddr()))
			c.Close()
			continue
		}
		s.start(c.(*net.TCPConn))
	}
}

// start makes the connection's tunnel, with a session as its policy, and
// runs it on a goroutine of its own.
func (s *Server) start(c *net.TCPConn) {
	sess := &session{srv: s, start: time.Now(), client: c.RemoteAddr().String(), cors: anyOrigin}
	sess.tun = tunnel.New(c, tunnel.Options{
		Policy:           sess,
		TLS:              s.tlsConf,
		Context:          s.ctx,
		HandshakeTimeout: s.opts.HandshakeTimeout,
		HeadTimeout:      s.opts.HeadTimeout,
		Idle:             s.opts.TunnelTimeout,
		ResponseIdle:     s.opts.ResponseTimeout,
		Parker:           s.parker,
	})
	s.mu.Lock()
	s.sessions[sess] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.active.Add(1)
	go sess.tun.Serve() // the session's last goroutine, this or a way's, ends with s.wg.Done (Ended)
}

// forget drops a finished session.
func (s *Server) forget(sess *session) {
	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
	s.active.Add(-1)
}

func (s *Server) isShutting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutting
}

// ActiveConnections is the number of client connections open now.
func (s *Server) ActiveConnections() int { return int(s.active.Load()) }

// Shutdown stops accepting, closes connections that are not forwarding
// anything (handshakes, idle keep-alives), lets open sessions finish until
// ctx ends, then closes the rest. It returns when every session is gone.
func (s *Server) Shutdown(ctx context.Context) error { return s.stop(ctx, true) }

// Drain stops accepting and lets every connection go on as it would have,
// handshakes and keep-alives included, until ctx ends; then it closes the
// rest. It is for a process that has handed its listeners to a new one
// (which accepts what this one no longer does), so nobody is cut. Shutdown
// may follow it.
func (s *Server) Drain(ctx context.Context) error { return s.stop(ctx, false) }

func (s *Server) stop(ctx context.Context, closeIdle bool) error {
	s.mu.Lock()
	s.shutting = true
	for ln := range s.listeners {
		ln.Close()
	}
	var idle []*session
	for sess := range s.sessions {
		if closeIdle && !sess.tun.Forwarding() {
			idle = append(idle, sess)
		}
	}
	open := len(s.sessions) - len(idle)
	s.mu.Unlock()
	for _, sess := range idle {
		sess.tun.Stop(tunnel.Graceful, tunnel.Shutdown)
	}
	if open > 0 {
		s.log.Info("shutting down: waiting for open sessions", zap.Int("sessions", open))
	}

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		n := s.killAll(tunnel.Shutdown, nil)
		s.log.Info("shutdown grace period over: closing sessions", zap.Int("sessions", n))
		err = ctx.Err()
	}
	s.cancel()
	<-done
	s.stopOnce.Do(func() {
		s.sweepOnce.Do(func() { close(s.sweepDone) }) // never started
		close(s.sweepStop)
		<-s.sweepDone
		if s.parker != nil {
			s.parker.Close()
		}
	})
	return err
}

// sweepLoop hands freed memory back to the OS after a burst: a burst of
// connections, or of sessions ending, leaves garbage that the heap keeps
// until the next collection; once connections have stopped both arriving
// and ending for a few seconds, it is collected and the pages handed back.
func (s *Server) sweepLoop() {
	defer close(s.sweepDone)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastAccepted, acceptedAtRelease int64
	var lastOpen, openAtRelease int64
	var quietSince time.Time
	for {
		select {
		case <-s.sweepStop:
			return
		case now := <-t.C:
			if l := s.opts.Limits; l != nil && now.Second()%10 == 0 {
				l.Sweep()
			}
			acc, open := s.accepted.Load(), s.active.Load()
			if acc != lastAccepted || open != lastOpen {
				lastAccepted, lastOpen, quietSince = acc, open, now
			} else if s.opts.ReleaseIdleMemory && now.Sub(quietSince) >= 3*time.Second &&
				(acc-acceptedAtRelease >= 64 || openAtRelease-open >= 64) {
				acceptedAtRelease, openAtRelease = acc, open
				debug.FreeOSMemory()
				s.releases.Add(1)
			}
		}
	}
}

// ParkedDirections is how many tunnel directions wait without a goroutine.
func (s *Server) ParkedDirections() int {
	if s.parker == nil {
		return 0
	}
	return s.parker.Parked()
}
