// Package limit keeps the per-client limits: connections at once, new TLS
// handshakes per second, failed authentications per minute. A client is
// its address (behind a load balancer, the one the PROXY header names); an
// IPv6 /64 counts as one client, since one host holds a whole /64. The table
// of clients has a hard size: idle entries (no connection, every budget
// full) are swept, and when it is full the least recently used entry
// without a connection goes, so a flood from many addresses cannot grow it
// without bound. The token buckets are
// golang.org/x/time/rate's.
package limit

import (
	"container/list"
	"math"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Options set the limits; 0 turns one off.
type Options struct {
	MaxConns      int // connections at once per client
	HandshakeRate int // new connections (TLS handshakes) per second, bursts of twice that
	AuthFailures  int // failed authentications per minute
	TableSize     int // clients tracked at most
}

// Which limit refused, as the metric's label.
const (
	Connections  = "connections"
	Handshakes   = "handshakes"
	AuthFailures = "auth failures"
)

// Table is the per-client state.
type Table struct {
	o   Options
	mu  sync.Mutex
	m   map[netip.Addr]*entry
	lru list.List // of *entry, most recently used first
}

type entry struct {
	key   netip.Addr
	conns int
	hs    *rate.Limiter // nil: no handshake limit
	fails *rate.Limiter // nil: no failure limit
	elem  *list.Element
}

// New returns a table for o.
func New(o Options) *Table {
	return &Table{o: o, m: make(map[netip.Addr]*entry, min(o.TableSize, 4096))}
}

func (t *Table) drop(e *entry) {
	delete(t.m, e.key)
	t.lru.Remove(e.elem)
}

// Key is the client an address belongs to: itself, or its IPv6 /64.
func Key(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// Connect admits a new connection from a, or names the limit that refuses
// it. Each admitted connection must be ended with Disconnect.
func (t *Table) Connect(a netip.Addr) (ok bool, limit string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.get(Key(a))
	if e == nil {
		return true, "" // the table is full of live clients: the global cap still holds
	}
	if t.o.MaxConns > 0 && e.conns >= t.o.MaxConns {
		return false, Connections
	}
	if e.hs != nil && !e.hs.Allow() {
		return false, Handshakes
	}
	e.conns++
	return true, ""
}

// Disconnect ends a connection Connect admitted.
func (t *Table) Disconnect(a netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.m[Key(a)]; e != nil && e.conns > 0 {
		e.conns--
	}
}

// Blocked reports whether a has failed authentication too often, and how
// long until it may try again; no verification work is done for it.
func (t *Table) Blocked(a netip.Addr) (time.Duration, bool) {
	if t.o.AuthFailures == 0 {
		return 0, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.m[Key(a)]
	if e == nil || e.fails == nil {
		return 0, false
	}
	tokens := e.fails.Tokens()
	if tokens >= 1 {
		return 0, false
	}
	wait := time.Duration((1 - tokens) / float64(e.fails.Limit()) * float64(time.Second))
	return time.Duration(math.Ceil(wait.Seconds())) * time.Second, true
}

// Failed records a failed authentication from a.
func (t *Table) Failed(a netip.Addr) {
	if t.o.AuthFailures == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.get(Key(a)); e != nil {
		e.fails.Allow()
	}
}

// Len is the number of clients tracked.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// Sweep drops idle entries: they hold nothing a new entry would not.
func (t *Table) Sweep() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.m {
		if e.idle() {
			t.drop(e)
		}
	}
}

// get returns k's entry, making one; when the table is full it first
// drops the least recently used entry without a connection. nil: every
// entry has a connection.
func (t *Table) get(k netip.Addr) *entry {
	if e := t.m[k]; e != nil {
		t.lru.MoveToFront(e.elem)
		return e
	}
	if len(t.m) >= t.o.TableSize && !t.evict() {
		return nil
	}
	e := &entry{key: k}
	if t.o.HandshakeRate > 0 {
		e.hs = rate.NewLimiter(rate.Limit(t.o.HandshakeRate), 2*t.o.HandshakeRate)
	}
	if t.o.AuthFailures > 0 {
		e.fails = rate.NewLimiter(rate.Limit(float64(t.o.AuthFailures)/60), t.o.AuthFailures)
	}
	e.elem = t.lru.PushFront(e)
	t.m[k] = e
	return e
}

// evict makes room for one entry: the least recently used one without a
// connection goes (a client that failed or connected often long ago loses
// that history: the table's bound comes first). The caller holds t.mu.
func (t *Table) evict() bool {
	for el := t.lru.Back(); el != nil; el = el.Prev() {
		if e := el.Value.(*entry); e.conns == 0 {
			t.drop(e)
			return true
		}
	}
	return false
}

// idle: no connection and every budget full.
func (e *entry) idle() bool {
	return e.conns == 0 &&
		(e.hs == nil || e.hs.Tokens() >= float64(e.hs.Burst())) &&
		(e.fails == nil || e.fails.Tokens() >= float64(e.fails.Burst()))
}
