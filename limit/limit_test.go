package limit

import (
	"net/netip"
	"testing"
	"time"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestConnectionsAndHandshakes(t *testing.T) {
	tb := New(Options{MaxConns: 2, HandshakeRate: 1000, TableSize: 1024})
	a := addr("192.0.2.1")
	var first *Client
	for range 2 {
		c, _ := tb.Connect(a)
		if c == nil {
			t.Fatal("refused under the limit")
		}
		first = c
	}
	if c, which := tb.Connect(a); c != nil || which != Connections {
		t.Errorf("third connection: %v %q", c, which)
	}
	if c, _ := tb.Connect(addr("192.0.2.2")); c == nil {
		t.Error("another client refused")
	}
	tb.Disconnect(first)
	if c, _ := tb.Connect(a); c == nil {
		t.Error("refused after a connection ended")
	}

	hs := New(Options{HandshakeRate: 5, TableSize: 1024})
	n := 0
	for range 100 {
		if c, which := hs.Connect(a); c != nil {
			n++
			hs.Disconnect(c)
		} else if which != Handshakes {
			t.Fatalf("refused by %q", which)
		}
	}
	if n != 10 { // a burst of twice the rate
		t.Errorf("%d handshakes admitted at once, want 10", n)
	}
}

// An IPv6 host holds a /64: its addresses count as one client.
func TestIPv6ClientsByPrefix(t *testing.T) {
	tb := New(Options{MaxConns: 1, TableSize: 1024})
	if c, _ := tb.Connect(addr("2001:db8:1:2::1")); c == nil {
		t.Fatal("refused")
	}
	if c, _ := tb.Connect(addr("2001:db8:1:2:ffff::9")); c != nil {
		t.Error("a second address in the same /64 was a new client")
	}
	if c, _ := tb.Connect(addr("2001:db8:1:3::1")); c == nil {
		t.Error("another /64 refused")
	}
	if Key(addr("::ffff:192.0.2.7")) != addr("192.0.2.7") {
		t.Error("an IPv4-mapped address is not its IPv4 client")
	}
}

func TestAuthFailuresBlockWithRetryAfter(t *testing.T) {
	tb := New(Options{AuthFailures: 3, TableSize: 1024})
	c, _ := tb.Connect(addr("198.51.100.4"))
	for range 3 {
		if _, blocked := tb.Blocked(c); blocked {
			t.Fatal("blocked too early")
		}
		tb.Failed(c)
	}
	wait, blocked := tb.Blocked(c)
	if !blocked || wait < time.Second || wait > 20*time.Second {
		t.Errorf("after 3 failures: blocked %v, retry after %v (one token per 20 s)", blocked, wait)
	}
	// A new connection from the same address is the same client.
	again, _ := tb.Connect(addr("198.51.100.4"))
	if _, blocked := tb.Blocked(again); !blocked {
		t.Error("a new connection is not blocked")
	}
	other, _ := tb.Connect(addr("198.51.100.5"))
	if _, blocked := tb.Blocked(other); blocked {
		t.Error("another client blocked")
	}
}

// A flood from 100,000 addresses never grows the table past its size, and
// live clients keep their entries.
func TestTableBounded(t *testing.T) {
	tb := New(Options{MaxConns: 1, HandshakeRate: 10, AuthFailures: 5, TableSize: 1024})
	live := addr("203.0.113.1")
	tb.Connect(live)
	for i := range 100_000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if c, _ := tb.Connect(a); c != nil {
			tb.Failed(c)
			tb.Disconnect(c)
		}
		if n := tb.Len(); n > 1024 {
			t.Fatalf("%d entries after %d addresses", n, i+1)
		}
	}
	if c, which := tb.Connect(live); c != nil || which != Connections {
		t.Errorf("the live client's entry was lost: %v %q", c, which)
	}
	tb.Sweep()
	if n := tb.Len(); n > 1024 {
		t.Errorf("%d after a sweep", n)
	}
}

// A table full of clients that each hold a connection fails safe: new
// clients share one entry with the same limits, and are not unlimited
// (issue 18, finding 4).
func TestFullTableSharesOneBudget(t *testing.T) {
	tb := New(Options{MaxConns: 4, AuthFailures: 3, TableSize: 64})
	for i := range 64 {
		if c, _ := tb.Connect(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})); c == nil {
			t.Fatal("refused while the table had room")
		}
	}
	admitted := 0
	var last *Client
	for i := range 100 {
		if c, _ := tb.Connect(netip.AddrFrom4([4]byte{10, 1, 0, byte(i)})); c != nil {
			admitted++
			last = c
		}
	}
	if admitted != 4 {
		t.Errorf("%d connections admitted from new clients with the table full, want 4 (one client's limit)", admitted)
	}
	for range 3 {
		tb.Failed(last)
	}
	newcomer := tb.overflow
	if _, blocked := tb.Blocked(newcomer); !blocked {
		t.Error("failures by clients the table could not take do not count")
	}
	if tb.Len() != 64 {
		t.Errorf("%d entries", tb.Len())
	}
}

// A blocked client keeps its entry when others need room: eviction would
// lift its block.
func TestBlockedClientNotEvicted(t *testing.T) {
	tb := New(Options{AuthFailures: 2, TableSize: 16})
	bad := addr("192.0.2.66")
	c, _ := tb.Connect(bad)
	tb.Failed(c)
	tb.Failed(c)
	tb.Disconnect(c)
	for i := range 10_000 {
		if n, _ := tb.Connect(netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)})); n != nil {
			tb.Disconnect(n)
		}
	}
	again, _ := tb.Connect(bad)
	if _, blocked := tb.Blocked(again); !blocked {
		t.Error("the blocked client was evicted and its block lifted")
	}
}

// Every source without an IP address is one client, with limits.
func TestNonIPIsOneClient(t *testing.T) {
	tb := New(Options{MaxConns: 2, TableSize: 16})
	tb.Connect(NonIP)
	tb.Connect(NonIP)
	if c, which := tb.Connect(NonIP); c != nil || which != Connections {
		t.Errorf("non-IP sources unlimited: %v %q", c, which)
	}
}

// A client that spent its failure budget in one table is still blocked in
// a table restored from the first one's Spent (what an upgrade hands over),
// and one that spent part of it has only the rest.
func TestSpentBudgetSurvivesRestore(t *testing.T) {
	o := Options{AuthFailures: 10, TableSize: 100}
	old := New(o)
	guesser := netip.MustParseAddr("192.0.2.1")
	g, _ := old.Connect(guesser)
	for range 10 {
		old.Failed(g)
	}
	p, _ := old.Connect(netip.MustParseAddr("192.0.2.2"))
	for range 4 {
		old.Failed(p)
	}
	if _, blocked := old.Blocked(g); !blocked {
		t.Fatal("the guesser is not blocked in the old table")
	}

	fresh := New(o)
	fresh.Restore(old.Spent())
	g2, _ := fresh.Connect(guesser)
	if _, blocked := fresh.Blocked(g2); !blocked {
		t.Fatal("a client that had spent its failure budget got a fresh one")
	}
	p2, _ := fresh.Connect(netip.MustParseAddr("192.0.2.2"))
	for i := range 6 {
		if _, blocked := fresh.Blocked(p2); blocked {
			t.Fatalf("blocked after %d more failures; 6 were left", i)
		}
		fresh.Failed(p2)
	}
	if _, blocked := fresh.Blocked(p2); !blocked {
		t.Fatal("not blocked after spending the rest of its budget")
	}
}
