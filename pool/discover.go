package pool

// Discovery: where the pool's runtimes come from. Each Source runs until
// its context ends and reports its whole current set whenever it changes;
// Discover joins the sets of several sources into one list.

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Source finds runtimes (host:port each).
type Source interface {
	// Run reports the source's runtimes to set whenever they change (the
	// first time as soon as they are known), until ctx ends.
	Run(ctx context.Context, set func([]string))
	// String names the source for logs.
	String() string
}

// Discover runs every source and calls update with the union of their
// runtimes, sorted, each time it changes; it returns when ctx ends.
func Discover(ctx context.Context, sources []Source, update func([]string)) {
	var (
		mu   sync.Mutex
		sets = make([][]string, len(sources))
		last []string
		wg   sync.WaitGroup
	)
	for i, src := range sources {
		wg.Go(func() {
			src.Run(ctx, func(rs []string) {
				mu.Lock()
				defer mu.Unlock()
				sets[i] = slices.Clone(rs)
				var all []string
				for _, s := range sets {
					all = append(all, s...)
				}
				slices.Sort(all)
				all = slices.Compact(all)
				if last != nil && slices.Equal(all, last) {
					return
				}
				last = all
				update(all)
			})
		})
	}
	wg.Wait()
}

// Static is a fixed list.
type Static []string

func (s Static) Run(ctx context.Context, set func([]string)) { set(s) }
func (s Static) String() string                              { return strings.Join(s, ",") }

// DNS looks a name up every Interval: all its A and AAAA records at Port,
// or, with SRV, its SRV records (each target's addresses at the record's
// port). A failed lookup keeps the runtimes last found, except that a name
// that does not exist (any more) has none.
type DNS struct {
	Name     string
	Port     string // for A/AAAA
	SRV      bool
	Resolver *net.Resolver // nil: the system's
	Interval time.Duration
	Logger   *zap.Logger
}

func (d *DNS) String() string {
	if d.SRV {
		return "srv:" + d.Name
	}
	return "dns:" + d.Name
}

// Run implements Source.
func (d *DNS) Run(ctx context.Context, set func([]string)) {
	r := d.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	t := time.NewTicker(d.Interval)
	defer t.Stop()
	failing := false
	for {
		lctx, cancel := context.WithTimeout(ctx, min(d.Interval, 5*time.Second))
		rs, err := d.lookup(lctx, r)
		cancel()
		var dnsErr *net.DNSError
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			if failing && d.Logger != nil {
				d.Logger.Info("pool: DNS lookups work again", zap.Stringer("source", d), zap.Strings("runtimes", rs))
			}
			failing = false
			set(rs)
		case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
			set(nil)
		default:
			if !failing && d.Logger != nil {
				d.Logger.Warn("pool: DNS lookup failed; keeping the runtimes found before", zap.Stringer("source", d), zap.Error(err))
			}
			failing = true
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (d *DNS) lookup(ctx context.Context, r *net.Resolver) ([]string, error) {
	if !d.SRV {
		return addrsAt(ctx, r, d.Name, d.Port)
	}
	_, srvs, err := r.LookupSRV(ctx, "", "", d.Name)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range srvs {
		as, err := addrsAt(ctx, r, s.Target, strconv.Itoa(int(s.Port)))
		if err != nil {
			return nil, err
		}
		out = append(out, as...)
	}
	return out, nil
}

// addrsAt is every address of name, at port.
func addrsAt(ctx context.Context, r *net.Resolver, name, port string) ([]string, error) {
	ips, err := r.LookupIPAddr(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, net.JoinHostPort(ip.IP.String(), port))
	}
	return out, nil
}

// ResolverAt is a resolver that asks the DNS server at addr (host:port)
// only.
func ResolverAt(addr string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}
