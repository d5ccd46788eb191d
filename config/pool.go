package config

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// Where BACKEND_POOL's runtimes come from: one kind per entry.
const (
	PoolStatic     = "static"     // host:port
	PoolDNS        = "dns"        // every A/AAAA record of a name
	PoolSRV        = "srv"        // the SRV records of a name
	PoolKubernetes = "kubernetes" // a Service's EndpointSlices
)

// Where claims are kept (POOL_CLAIMS).
const (
	ClaimsMemory     = "memory"
	ClaimsKubernetes = "kubernetes"
)

// PoolSource is one entry of BACKEND_POOL.
type PoolSource struct {
	Kind string
	// Addr is a static entry's host:port.
	Addr string
	// Name is the DNS name (dns:, srv:) or the Service (kubernetes:).
	Name string
	// Namespace is a kubernetes: entry's namespace, "" for POOL_NAMESPACE.
	Namespace string
	// Port is the runtimes' port: a number (static, dns:, kubernetes:)
	// or, for kubernetes:, the name of the Service's port.
	Port string
}

// Pool returns BACKEND_POOL's entries as Validate parsed them; nil when the
// pool is off.
func (c *Config) Pool() []PoolSource { return c.pool }

// PoolClaimsIn is where claims are kept: POOL_CLAIMS, with auto decided.
func (c *Config) PoolClaimsIn() string {
	if c.PoolClaims != "auto" {
		return c.PoolClaims
	}
	// Inside a pod only: a KUBECONFIG on a workstation is no reason to
	// write Leases into whatever cluster it names.
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		return ClaimsKubernetes
	}
	return ClaimsMemory
}

// validatePool parses BACKEND_POOL and checks the settings that go with it.
func (c *Config) validatePool(bad badFunc) {
	c.pool = nil
	if len(c.BackendPool) == 0 {
		return
	}
	all := strings.Join(c.BackendPool, ",")
	if c.RouteByPath {
		bad("BACKEND_POOL", all, "a session either names its runtime (ROUTE_BY_PATH) or gets one from the pool; set one of the two")
	}
	for _, e := range c.BackendPool {
		src, err := parsePoolEntry(strings.TrimSpace(e), c.BackendPort.String())
		if err != nil {
			bad("BACKEND_POOL", e, err.Error())
			continue
		}
		c.pool = append(c.pool, src)
	}
	switch c.PoolClaims {
	case "auto", ClaimsMemory, ClaimsKubernetes:
	default:
		bad("POOL_CLAIMS", c.PoolClaims, "want memory, kubernetes or auto")
	}
	if d := c.PoolReconnectGrace.D(); d < 0 {
		bad("POOL_RECONNECT_GRACE", d, "must be 0 or more")
	}
	if c.PoolMaxPerUser < 0 {
		bad("POOL_MAX_PER_USER", c.PoolMaxPerUser, "must be 0 (no limit) or more")
	}
	if c.PoolGracesPerClient < 1 {
		bad("POOL_GRACES_PER_CLIENT", c.PoolGracesPerClient, "must be 1 or more (POOL_RECONNECT_GRACE=0 turns the grace off)")
	}
	if d := c.PoolLease.D(); d < 3e9 {
		bad("POOL_LEASE_DURATION", d, "must be 3s or more (claims are renewed every third of it)")
	}
	if d := c.PoolDNSInterval.D(); d < 1e9 {
		bad("POOL_DNS_INTERVAL", d, "must be 1s or more")
	}
	if s := c.PoolDNSServer; s != "" {
		if _, err := dnsServer(s); err != nil {
			bad("POOL_DNS_SERVER", s, err.Error())
		}
	}
}

// PoolDNSServerAddr is POOL_DNS_SERVER as host:port (port 53 when none is
// given), or "".
func (c *Config) PoolDNSServerAddr() string {
	a, _ := dnsServer(c.PoolDNSServer)
	return a
}

func dnsServer(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s, nil
	}
	if net.ParseIP(strings.Trim(s, "[]")) == nil && !validDNSName(s) {
		return "", fmt.Errorf("want host[:port]")
	}
	return net.JoinHostPort(strings.Trim(s, "[]"), "53"), nil
}

// parsePoolEntry reads one BACKEND_POOL entry; port is BACKEND_PORT, the
// port of entries that name none.
func parsePoolEntry(e, port string) (PoolSource, error) {
	kind, rest, ok := strings.Cut(e, ":")
	switch {
	case ok && kind == PoolDNS:
		name, p, err := nameAndPort(rest, port, false)
		return PoolSource{Kind: PoolDNS, Name: name, Port: p}, err
	case ok && kind == PoolSRV:
		if !validDNSName(rest) {
			return PoolSource{}, fmt.Errorf("want srv:<name>, such as srv:_cloudxr._tcp.runtimes.lab.example")
		}
		return PoolSource{Kind: PoolSRV, Name: rest}, nil
	case ok && (kind == PoolKubernetes || kind == "k8s"):
		name, p, err := nameAndPort(rest, port, true)
		if err != nil {
			return PoolSource{}, err
		}
		svc, ns, _ := strings.Cut(name, ".")
		if !validLabel(svc) || (ns != "" && !validLabel(ns)) {
			return PoolSource{}, fmt.Errorf("want kubernetes:<service>[.<namespace>][:<port number or name>]")
		}
		return PoolSource{Kind: PoolKubernetes, Name: svc, Namespace: ns, Port: p}, nil
	}
	name, p, err := nameAndPort(e, port, false)
	if err != nil {
		return PoolSource{}, fmt.Errorf("want host:port, dns:<name>[:port], srv:<name> or kubernetes:<service>[.<namespace>][:port]")
	}
	return PoolSource{Kind: PoolStatic, Addr: net.JoinHostPort(name, p)}, nil
}

// nameAndPort splits name[:port] ([v6]:port too); named allows a port
// name (a Kubernetes Service's).
func nameAndPort(s, port string, named bool) (string, string, error) {
	name, p := strings.Trim(s, "[]"), port
	if h, pp, err := net.SplitHostPort(s); err == nil {
		name, p = h, pp
	}
	if name == "" || (net.ParseIP(name) == nil && !validDNSName(name)) {
		return "", "", fmt.Errorf("%q is not a host name or IP address", name)
	}
	if n, err := strconv.Atoi(p); err == nil {
		if n < 1 || n > 65535 {
			return "", "", fmt.Errorf("port %d is not from 1 to 65535", n)
		}
	} else if !named || !validLabel(p) {
		return "", "", fmt.Errorf("port %q is not a number", p)
	}
	return name, p, nil
}

// validDNSName: letters, digits, '-', '_' (SRV's labels) and dots.
func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for _, r := range l {
			if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return false
			}
		}
	}
	return true
}

// validLabel is a Kubernetes name (RFC 1123 label).
func validLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z') {
			return false
		}
	}
	return true
}
