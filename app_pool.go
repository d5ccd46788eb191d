package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/config"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/health"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/pool"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/portal"
)

// The runtime pool (BACKEND_POOL): where its runtimes come from, where its
// claims are kept, and one health checker per runtime, started and stopped
// as discovery sees runtimes come and go.

// poolParts are the pool's pieces; nil without BACKEND_POOL.
type poolParts struct {
	pool    *pool.Pool
	sources []pool.Source
	claims  string // config.ClaimsMemory or ClaimsKubernetes, for the log

	mu     sync.Mutex
	checks map[string]*runtimeCheck
	start  func(*health.Checker) context.CancelFunc // set by serve; nil before
}

type runtimeCheck struct {
	c    *health.Checker
	stop context.CancelFunc // nil until started
}

// newPool makes the pool: its store of claims and its sources. Its errors
// are the user's to fix and name the setting.
func (a *app) newPool() error {
	cfg := a.cfg
	if cfg.Pool() == nil {
		return nil
	}
	p := &poolParts{checks: map[string]*runtimeCheck{}, claims: cfg.PoolClaimsIn()}
	var kube *pool.Kube
	namespace := cfg.PoolNamespace
	needKube := p.claims == config.ClaimsKubernetes
	for _, s := range cfg.Pool() {
		needKube = needKube || s.Kind == config.PoolKubernetes
	}
	if needKube {
		rc, ns, err := kubeConfig()
		if err != nil {
			return fmt.Errorf("BACKEND_POOL: %w", err)
		}
		rc.QPS, rc.Burst = kubeQPS, kubeBurst
		if kube, err = pool.NewKube(rc); err != nil {
			return fmt.Errorf("BACKEND_POOL: the Kubernetes API client: %w", err)
		}
		namespace = cmp.Or(namespace, ns)
	}
	host, _ := os.Hostname()
	replica := cmp.Or(os.Getenv("POD_NAME"), host)
	var store pool.Store = pool.NewMemory()
	if p.claims == config.ClaimsKubernetes {
		store = pool.NewLeases(kube.Leases(namespace), replica)
	}
	var static pool.Static
	for _, s := range cfg.Pool() {
		switch s.Kind {
		case config.PoolStatic:
			static = append(static, s.Addr)
		case config.PoolDNS, config.PoolSRV:
			d := &pool.DNS{Name: s.Name, Port: s.Port, SRV: s.Kind == config.PoolSRV, Interval: cfg.PoolDNSInterval.D(), Logger: a.log}
			if srv := cfg.PoolDNSServerAddr(); srv != "" {
				d.Resolver = pool.ResolverAt(srv)
			}
			p.sources = append(p.sources, d)
		case config.PoolKubernetes:
			p.sources = append(p.sources, &pool.EndpointSlices{Client: kube.Discovery(),
				Namespace: cmp.Or(s.Namespace, namespace), Service: s.Name, Port: s.Port})
		}
	}
	if static != nil {
		p.sources = append(p.sources, static)
	}
	p.pool = pool.New(pool.Options{Store: store, Replica: replica, Up: p.up, Grace: cfg.PoolReconnectGrace.D(),
		GracesPerClient: cfg.PoolGracesPerClient, MaxPerUser: cfg.PoolMaxPerUser, Lease: cfg.PoolLease.D()}, nil)
	a.pool = p
	names := make([]string, len(p.sources))
	for i, s := range p.sources {
		names[i] = s.String()
	}
	where := "in this process (one replica)"
	if p.claims == config.ClaimsKubernetes {
		where = "in Kubernetes Leases in namespace " + namespace + " (shared by every replica)"
	}
	a.log.Info("runtime pool on: each new session gets a free runtime", zap.Strings("sources", names), zap.String("claims", where),
		zap.Duration("reconnect_grace", cfg.PoolReconnectGrace.D()), zap.Int("max_per_user", cfg.PoolMaxPerUser))
	return nil
}

// kubeConfig is the Kubernetes API's address and credentials: the pod's
// service account inside a cluster, else KUBECONFIG (or ~/.kube/config),
// with the namespace they name.
func kubeConfig() (*rest.Config, string, error) {
	if rc, err := rest.InClusterConfig(); err == nil {
		ns, _ := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
		return rc, cmp.Or(strings.TrimSpace(string(ns)), "default"), nil
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), nil)
	rc, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("not inside a Kubernetes pod, and no usable KUBECONFIG: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("KUBECONFIG: %w", err)
	}
	return rc, ns, nil
}

// kubeQPS and kubeBurst are the pool's rate of API requests: client-go's default (5 a
// second, bursts of 10) would make 20 sessions starting at once wait
// seconds for their claims.
const kubeQPS, kubeBurst = 100, 200

// up is the pool's view of a runtime's health: not marked down (a runtime
// not yet checked may be handed out; a dial then tells).
func (p *poolParts) up(runtime string) bool {
	c := p.checker(runtime)
	if c == nil {
		return false
	}
	st, _ := c.State()
	return st != health.Down
}

// checker is the runtime's health checker, or nil.
func (p *poolParts) checker(runtime string) *health.Checker {
	p.mu.Lock()
	defer p.mu.Unlock()
	if rc := p.checks[runtime]; rc != nil {
		return rc.c
	}
	return nil
}

// setRuntimes is discovery's news: checkers for new runtimes, none for
// those gone, and the pool's list.
func (a *app) setRuntimes(runtimes []string) {
	p := a.pool
	p.mu.Lock()
	keep := map[string]bool{}
	var added, removed []string
	for _, r := range runtimes {
		keep[r] = true
		if p.checks[r] == nil {
			c := a.newChecker(r)
			a.watchChecker(r, c)
			rc := &runtimeCheck{c: c}
			if p.start != nil {
				rc.stop = p.start(c)
			}
			p.checks[r] = rc
			added = append(added, r)
		}
	}
	for r, rc := range p.checks {
		if !keep[r] {
			if rc.stop != nil {
				rc.stop()
			}
			delete(p.checks, r)
			a.metrics.BackendGone(r)
			removed = append(removed, r)
		}
	}
	p.mu.Unlock()
	p.pool.SetRuntimes(runtimes)
	a.log.Info("runtime pool changed", zap.Strings("runtimes", runtimes), zap.Strings("added", added), zap.Strings("removed", removed))
}

// runPool discovers the runtimes, checks each, and renews the claims of
// this replica's sessions, until ctx ends.
func (a *app) runPool(ctx context.Context, bg *sync.WaitGroup) {
	p := a.pool
	p.mu.Lock()
	p.start = func(c *health.Checker) context.CancelFunc {
		cctx, cancel := context.WithCancel(ctx)
		bg.Go(func() { c.Run(cctx) })
		return cancel
	}
	for _, rc := range p.checks {
		rc.stop = p.start(rc.c)
	}
	p.mu.Unlock()
	bg.Go(func() { pool.Discover(ctx, p.sources, a.setRuntimes) })
	bg.Go(func() { p.pool.Run(ctx, a.srv.ClaimLost) })
}

// poolCounts is pool_runtimes: the runtimes by state.
func (a *app) poolCounts() map[string]int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := a.pool.pool.Status(ctx)
	if err != nil {
		return nil
	}
	n := map[string]int{}
	for _, r := range st {
		n[string(r.State)]++
	}
	return n
}

// poolStatus is the pool for the page and /status.json.
func (a *app) poolStatus() (portal.PoolStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := a.pool.pool.Status(ctx)
	if err != nil {
		return portal.PoolStatus{}, err
	}
	users := a.srv.PoolUsers()
	out := portal.PoolStatus{Claims: a.pool.claims, Grace: a.cfg.PoolReconnectGrace.D()}
	for _, r := range st {
		pr := portal.PoolRuntime{Address: r.Runtime, Up: r.Up, State: string(r.State), Since: r.Since, User: users[r.Runtime]}
		if c := a.pool.checker(r.Runtime); c != nil {
			b := backendStatus(r.Runtime, c)
			pr.Health, pr.HealthSince, pr.Problem = b.State, b.Since, b.Problem
		}
		out.Runtimes = append(out.Runtimes, pr)
	}
	return out, nil
}
