package admin

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Ready says whether the proxy should receive traffic and why, or what
// readiness does not cover ("" when there is nothing to say).
type Ready func() (ok bool, why string)

// Server serves /healthz (the process is alive), /readyz (listening, a
// certificate loaded and, with one backend, the backend up) and /metrics.
type Server struct {
	http *http.Server
}

// NewServer builds the admin handler; with profiling, Go's profiler is
// served at /debug/pprof/ too.
func NewServer(m *Metrics, ready Ready, profiling bool) *Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		ok, why := ready()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready: " + why + "\n"))
			return
		}
		if why != "" {
			why = ": " + why
		}
		w.Write([]byte("ready" + why + "\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
	if profiling {
		// Index also serves the named profiles: /debug/pprof/heap,
		// /debug/pprof/goroutine and the rest.
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return &Server{http: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
}

// Handler is the admin HTTP handler.
func (s *Server) Handler() http.Handler { return s.http.Handler }

// Serve answers on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.http.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops the server.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }
