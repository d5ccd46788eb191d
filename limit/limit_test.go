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
	for range 2 {
		if ok, _ := tb.Connect(a); !ok {
			t.Fatal("refused under the limit")
		}
	}
	if ok, which := tb.Connect(a); ok || which != Connections {
		t.Errorf("third connection: %v %q", ok, which)
	}
	if ok, _ := tb.Connect(addr("192.0.2.2")); !ok {
		t.Error("another client refused")
	}
	tb.Disconnect(a)
	if ok, _ := tb.Connect(a); !ok {
		t.Error("refused after a connection ended")
	}

	hs := New(Options{HandshakeRate: 5, TableSize: 1024})
	n := 0
	for range 100 {
		if ok, which := hs.Connect(a); ok {
			n++
			hs.Disconnect(a)
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
	if ok, _ := tb.Connect(addr("2001:db8:1:2::1")); !ok {
		t.Fatal("refused")
	}
	if ok, _ := tb.Connect(addr("2001:db8:1:2:ffff::9")); ok {
		t.Error("a second address in the same /64 was a new client")
	}
	if ok, _ := tb.Connect(addr("2001:db8:1:3::1")); !ok {
		t.Error("another /64 refused")
	}
	if Key(addr("::ffff:192.0.2.7")) != addr("192.0.2.7") {
		t.Error("an IPv4-mapped address is not its IPv4 client")
	}
}

func TestAuthFailuresBlockWithRetryAfter(t *testing.T) {
	tb := New(Options{AuthFailures: 3, TableSize: 1024})
	a := addr("198.51.100.4")
	for range 3 {
		if _, blocked := tb.Blocked(a); blocked {
			t.Fatal("blocked too early")
		}
		tb.Failed(a)
	}
	wait, blocked := tb.Blocked(a)
	if !blocked || wait < time.Second || wait > 20*time.Second {
		t.Errorf("after 3 failures: blocked %v, retry after %v (one token per 20 s)", blocked, wait)
	}
	if _, blocked := tb.Blocked(addr("198.51.100.5")); blocked {
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
		if ok, _ := tb.Connect(a); ok {
			tb.Disconnect(a)
		}
		tb.Failed(a)
		if n := tb.Len(); n > 1024 {
			t.Fatalf("%d entries after %d addresses", n, i+1)
		}
	}
	if ok, which := tb.Connect(live); ok || which != Connections {
		t.Errorf("the live client's entry was lost: %v %q", ok, which)
	}
	tb.Sweep()
	if n := tb.Len(); n > 1024 {
		t.Errorf("%d after a sweep", n)
	}
}
