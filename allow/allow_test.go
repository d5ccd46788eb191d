package allow

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestOrigins(t *testing.T) {
	o, err := NewOrigins([]string{"https://app.example.com", "https://*.lab.example", "http://localhost:5173"})
	if err != nil {
		t.Fatal(err)
	}
	for origin, want := range map[string]bool{
		"https://app.example.com":        true,
		"HTTPS://APP.EXAMPLE.COM":        true,
		"https://app.example.com:8443":   false,
		"http://app.example.com":         false,
		"https://evil.com":               false,
		"https://app.example.com.evil":   false,
		"https://quest.lab.example":      true,
		"https://a.b.lab.example":        true,
		"https://lab.example":            false,
		"https://evillab.example":        false,
		"http://quest.lab.example":       false,
		"http://localhost:5173":          true,
		"null":                           false,
		"https://quest.lab.example/path": false,
		"https://<script>.lab.example":   false,
		"https://a b.lab.example":        false,
		"https://a:1.lab.example":        false,
	} {
		if got := o.Allows(origin); got != want {
			t.Errorf("Allows(%q) = %v, want %v", origin, got, want)
		}
	}
	for _, bad := range []string{"app.example.com", "ftp://x", "https://x/path", "https://"} {
		if _, err := NewOrigins([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestRuntimes(t *testing.T) {
	r, err := NewRuntimes([]string{"10.0.3.0/24", "fd00:cafe::/64", "Runtime-1.cloudxr.svc.", "*.gpu.lab"}, 49100)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		spec, addr string
		kind       error // nil: allowed
	}{
		{"10.0.3.17", "10.0.3.17:49100", nil},
		{"10.0.3.17:50000", "10.0.3.17:50000", nil},
		{"[fd00:cafe::17]", "[fd00:cafe::17]:49100", nil},
		{"[FD00:CAFE:0:0::17]:49200", "[fd00:cafe::17]:49200", nil},
		{"runtime-1.cloudxr.svc", "runtime-1.cloudxr.svc:49100", nil},
		{"NODE7.gpu.lab", "node7.gpu.lab:49100", nil},
		{"gpu.lab", "", ErrNotAllowed},
		{"10.0.4.1", "", ErrNotAllowed},
		{"user@10.0.3.17", "", ErrNotAllowed},
		{"10.0.3.17:0", "", ErrBadTarget},
		{"10.0.3.17:http", "", ErrBadTarget},
	} {
		addr, err := r.Target(c.spec)
		if addr != c.addr || !errors.Is(err, c.kind) || (c.kind == nil) != (err == nil) {
			t.Errorf("Target(%q) = %q, %v; want %q, %v", c.spec, addr, err, c.addr, c.kind)
		}
	}
	// An entry with a port allows that port only; without, every port.
	p, err := NewRuntimes([]string{"10.0.5.1:49100", "10.0.6.0/24:49100", "[fd00::5]:49100", "one.lab:49100", "*.pods.lab:49100", "10.0.7.1"}, 49100)
	if err != nil {
		t.Fatal(err)
	}
	for spec, want := range map[string]bool{
		"10.0.5.1": true, "10.0.5.1:49100": true, "10.0.5.1:22": false,
		"10.0.6.9": true, "10.0.6.9:22": false,
		"[fd00::5]": true, "[fd00::5]:22": false,
		"one.lab": true, "one.lab:22": false,
		"a.pods.lab": true, "a.pods.lab:22": false,
		"10.0.7.1:22": true,
	} {
		if _, err := p.Target(spec); (err == nil) != want {
			t.Errorf("Target(%q): %v, want allowed %v", spec, err, want)
		}
	}
	// A refusal quotes the target, escaped and clipped.
	_, err = p.Target("<script>\r\n" + strings.Repeat("a", 4096))
	if msg := err.Error(); strings.ContainsAny(msg, "\r\n") || len(msg) > 200 {
		t.Errorf("refusal %q", msg)
	}
	if _, err := NewRuntimes(nil, 49100); err == nil {
		t.Error("empty allow-list accepted")
	}
	for _, bad := range []string{"10.0.0.0/33", "a b", "*", "host:0", "host:http", "[fd00::1", "[fd00::1]x", "*.a:b:c"} {
		if _, err := NewRuntimes([]string{bad}, 49100); err == nil {
			t.Errorf("allow-list entry %q accepted", bad)
		}
	}
}

// A name on the list never leads to loopback, link-local, unspecified or
// multicast addresses that are not listed themselves.
func TestCheckResolved(t *testing.T) {
	for _, addr := range []string{"169.254.169.254", "fe80::1", "0.0.0.0", "224.0.0.1", "::1", "127.0.0.1"} {
		r, _ := NewRuntimes([]string{"metadata.example"}, 1)
		if err := r.CheckResolved(netip.MustParseAddr(addr)); err == nil {
			t.Errorf("%s dialable through a name", addr)
		}
	}
	r, _ := NewRuntimes([]string{"runtime.example", "127.0.0.0/8"}, 1)
	if err := r.CheckResolved(netip.MustParseAddr("10.0.3.17")); err != nil {
		t.Errorf("a private address refused: %v", err)
	}
	if err := r.CheckResolved(netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Errorf("a listed loopback network refused: %v", err)
	}
}
