package config

import "testing"

// A DNS server's address in each form a user writes it, IPv6 included,
// joined with port 53 when it names none; forms that cannot be one are
// refused (the bare ::1 once became "::1:53", which no dialer takes).
func TestDNSServer(t *testing.T) {
	for in, want := range map[string]string{
		"::1":                "[::1]:53",
		"[::1]":              "[::1]:53",
		"[::1]:5353":         "[::1]:5353",
		"2001:db8::53":       "[2001:db8::53]:53",
		"ns.example":         "ns.example:53",
		"ns.example:5353":    "ns.example:5353",
		"192.0.2.53":         "192.0.2.53:53",
		"192.0.2.53:10053":   "192.0.2.53:10053",
		"[2001:db8::1]:5300": "[2001:db8::1]:5300",
	} {
		if got, err := DNSServer(in); err != nil || got != want {
			t.Errorf("DNSServer(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ns.example:", "ns.example:0", "ns.example:99999", "ns.example:dns", "[::1", "[::1]:",
		"[ns.example]:53", "[192.0.2.1]", "::1::2", "ns example", "ns.example/24", ":53", "[]:53"} {
		if got, err := DNSServer(in); err == nil {
			t.Errorf("DNSServer(%q) = %q, want an error", in, got)
		}
	}
}
