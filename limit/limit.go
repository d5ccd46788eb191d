// Package limit keeps the per-client limits: connections at once, new TLS
// handshakes per second, failed authentications per minute. A client is
// its address (behind a load balancer, the one the PROXY header names); an
// IPv6 /64 counts as one client, since one host holds a whole /64; every
// source without an IP address (a PROXY header naming a Unix socket) is one
// client, NonIP. The table of clients has a hard size: idle entries (no
// connection, every budget full) are swept, and when it is full a least
// recently used entry that holds nothing (no connection, no limit in force)
// makes room. When none does, the new client shares one overflow entry with
// every other client the table could not take: the same limits, for all of
// them together. A full table thus fails safe: no client goes unlimited, and
// no blocked client is forgotten to make room. The token buckets are
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

// NonIP is the client every source without an IP address counts as.
var NonIP = netip.IPv6Unspecified()

// Table is the per-client state.
type Table struct {
	o        Options
	mu       sync.Mutex
	m        map[netip.Addr]*Client
	lru      list.List // of *Client, most recently used first
	overflow *Client   // the clients the full table could not take
}

// Client is one client's entry, from Connect to Disconnect: the session
// keeps it, so its limits and counts stay its own while it is connected
// (an entry with a connection is never dropped).
type Client struct {
	key   netip.Addr
	conns int
	hs    *rate.Limiter // nil: no handshake limit
	fails *rate.Limiter // nil: no failure limit
	elem  *list.Element // nil for the overflow entry
}

// New returns a table for o.
func New(o Options) *Table {
	t := &Table{o: o, m: make(map[netip.Addr]*Client, min(o.TableSize, 4096))}
	t.overflow = t.newClient(netip.Addr{})
	return t
}

func (t *Table) newClient(k netip.Addr) *Client {
	e := &Client{key: k}
	if t.o.HandshakeRate > 0 {
		e.hs = rate.NewLimiter(rate.Limit(t.o.HandshakeRate), 2*t.o.HandshakeRate)
	}
	if t.o.AuthFailures > 0 {
		e.fails = rate.NewLimiter(rate.Limit(float64(t.o.AuthFailures)/60), t.o.AuthFailures)
	}
	return e
}

func (t *Table) drop(e *Client) {
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

// Connect admits a new connection from a and returns its client, or names
// the limit that refuses it. Each admitted connection must be ended with
// Disconnect.
func (t *Table) Connect(a netip.Addr) (c *Client, limit string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.get(Key(a))
	if t.o.MaxConns > 0 && e.conns >= t.o.MaxConns {
		return nil, Connections
	}
	if e.hs != nil && !e.hs.Allow() {
		return nil, Handshakes
	}
	e.conns++
	return e, ""
}

// Disconnect ends a connection Connect admitted.
func (t *Table) Disconnect(c *Client) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.conns > 0 {
		c.conns--
	}
}

// Blocked reports whether c has failed authentication too often, and how
// long until it may try again; no verification work is done for it.
func (t *Table) Blocked(c *Client) (time.Duration, bool) {
	if c.fails == nil {
		return 0, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tokens := c.fails.Tokens()
	if tokens >= 1 {
		return 0, false
	}
	wait := time.Duration((1 - tokens) / float64(c.fails.Limit()) * float64(time.Second))
	return time.Duration(math.Ceil(wait.Seconds())) * time.Second, true
}

// Failed records a failed authentication by c.
func (t *Table) Failed(c *Client) {
	if c.fails == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	c.fails.Allow()
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

// get returns k's entry, making one. When the table is full, a least
// recently used entry that holds nothing makes room; when none does, k gets
// the overflow entry.
func (t *Table) get(k netip.Addr) *Client {
	if e := t.m[k]; e != nil {
		t.lru.MoveToFront(e.elem)
		return e
	}
	if len(t.m) >= t.o.TableSize && !t.evict() {
		return t.overflow
	}
	e := t.newClient(k)
	e.elem = t.lru.PushFront(e)
	t.m[k] = e
	return e
}

// evictScan bounds the entries one eviction looks at, so that a table full
// of entries that must stay does not make every new client's Connect walk
// all of it under the lock.
const evictScan = 32

// evict makes room for one entry: the least recently used one that holds
// nothing goes (a client that connected often long ago loses that history:
// the table's bound comes first). Entries that must stay are moved to the
// front as they are passed, so the next eviction looks at others. The caller
// holds t.mu.
func (t *Table) evict() bool {
	for range evictScan {
		el := t.lru.Back()
		if el == nil {
			return false
		}
		e := el.Value.(*Client)
		if !e.holding() {
			t.drop(e)
			return true
		}
		t.lru.MoveToFront(el)
	}
	return false
}

// holding: the entry has a connection, or a limit in force (its failure
// or handshake budget spent): dropping it would lift that limit.
func (e *Client) holding() bool {
	return e.conns > 0 || (e.fails != nil && e.fails.Tokens() < 1) || (e.hs != nil && e.hs.Tokens() < 1)
}

// idle: no connection and every budget full.
func (e *Client) idle() bool {
	return e.conns == 0 &&
		(e.hs == nil || e.hs.Tokens() >= float64(e.hs.Burst())) &&
		(e.fails == nil || e.fails.Tokens() >= float64(e.fails.Burst()))
}
