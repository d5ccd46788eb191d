// Package config reads the proxy's settings from the environment and the
// command line. Defaults live only in the struct tags below; Validate turns
// every bad value into a line that names the variable and the value.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/user"
	"slices"
	"strings"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/allow"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/auth"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/certs"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/limit"
)

// Config holds every setting. Each field is an environment variable (the
// env tag) and a command-line flag of the same name in lower case with
// dashes (BACKEND_HOST → --backend-host); a flag wins over the variable.
type Config struct {
	EnvFile string `env:"ENV_FILE" help:"a file of KEY=value lines (the systemd unit's env file) read for settings not in the environment or flags"`

	BackendHost string `env:"BACKEND_HOST" envDefault:"localhost" help:"CloudXR Runtime host name or IP address"`
	BackendPort Port   `env:"BACKEND_PORT" envDefault:"49100" help:"CloudXR Runtime signaling port"`

	ProxyPort     Port   `env:"PROXY_PORT" envDefault:"48322" help:"TLS port to listen on"`
	ListenAddress string `env:"LISTEN_ADDRESS" help:"bind to this one address instead of all interfaces"`

	HealthCheckInterval Duration `env:"HEALTH_CHECK_INTERVAL" envDefault:"2s" help:"time between backend checks; a bare number is milliseconds"`
	HealthCheckRise     int      `env:"HEALTH_CHECK_RISE" envDefault:"2" help:"consecutive good checks that mark the backend up"`
	HealthCheckFall     int      `env:"HEALTH_CHECK_FALL" envDefault:"3" help:"consecutive failed checks that mark the backend down"`
	HealthCheckMode     string   `env:"HEALTH_CHECK_MODE" envDefault:"http" help:"http: the runtime must answer a plain HTTP request (another program on its port is not up); tcp: a connect is enough, as HAProxy's check"`

	CertDir       string   `env:"CERT_DIR" envDefault:"/usr/local/etc/haproxy/certs" help:"directory holding server.pem (generated there when absent)"`
	CertHostnames []string `env:"CERT_HOSTNAMES" envSeparator:"," help:"comma-separated extra DNS names and IPs for the generated certificate"`
	CertMode      string   `env:"CERT_MODE" envDefault:"local-ca" help:"how to make a certificate when there is none: local-ca (a CA you trust once signs it), self-signed, or acme (publicly trusted, obtained and renewed from ACME_CA for CERT_HOSTNAMES)"`
	CertWatch     Duration `env:"CERT_WATCH_INTERVAL" envDefault:"5s" help:"how often to look for changed certificate files (SIGHUP reloads at once)"`

	// CERT_MODE=acme: certificates from an ACME CA for CERT_HOSTNAMES (see acme/).
	ACMECA           string   `env:"ACME_CA" envDefault:"https://acme-v02.api.letsencrypt.org/directory" help:"with CERT_MODE=acme, the CA's ACME directory URL (try Let's Encrypt staging first: https://acme-staging-v02.api.letsencrypt.org/directory)"`
	ACMEEmail        string   `env:"ACME_EMAIL" help:"with CERT_MODE=acme, the contact address for the ACME account (expiry warnings from the CA)"`
	ACMECARoots      string   `env:"ACME_CA_ROOTS" help:"with CERT_MODE=acme, a PEM file of roots trusted for the CA's own HTTPS (a private CA); the system's roots otherwise"`
	ACMEEABKeyID     string   `env:"ACME_EAB_KID" help:"with CERT_MODE=acme, the external account binding key ID, for CAs that require one (ZeroSSL, Google Trust Services)"`
	ACMEEABHMAC      string   `env:"ACME_EAB_HMAC" secret:"true" help:"with CERT_MODE=acme, the external account binding HMAC key (base64url)"`
	ACMEHTTPPort     Port     `env:"ACME_HTTP_PORT" help:"with CERT_MODE=acme, answer HTTP-01 challenges on this port (typically 80) and redirect every other request there to https://; off when unset"`
	ACMERenewCheck   Duration `env:"ACME_RENEW_INTERVAL" envDefault:"10m" help:"with CERT_MODE=acme, how often certificates are checked for renewal (the CA's renewal information, or the last third of their lifetime, says when)"`
	ACMEDNSProvider  string   `env:"ACME_DNS_PROVIDER" help:"with CERT_MODE=acme, solve DNS-01 challenges through this DNS provider (rfc2136, cloudflare or route53): for a LAN server with a public name, and for wildcard names"`
	ACMEDNSResolvers []string `env:"ACME_DNS_RESOLVERS" envSeparator:"," help:"with ACME_DNS_PROVIDER, the DNS servers (host[:port], an IPv6 address, [IPv6]:port) asked whether the challenge record is visible; the system's otherwise"`
	RFC2136Server    string   `env:"RFC2136_SERVER" help:"with ACME_DNS_PROVIDER=rfc2136, the DNS server taking dynamic updates (host[:port], an IPv6 address, [IPv6]:port; port 53 unless named)"`
	RFC2136KeyName   string   `env:"RFC2136_KEY_NAME" help:"with ACME_DNS_PROVIDER=rfc2136, the TSIG key's name"`
	RFC2136Key       string   `env:"RFC2136_KEY" secret:"true" help:"with ACME_DNS_PROVIDER=rfc2136, the TSIG key's secret (base64)"`
	RFC2136KeyAlg    string   `env:"RFC2136_KEY_ALG" envDefault:"hmac-sha256" help:"with ACME_DNS_PROVIDER=rfc2136, the TSIG algorithm (hmac-sha256, hmac-sha512, hmac-sha1, ...)"`
	CloudflareToken  string   `env:"CLOUDFLARE_API_TOKEN" secret:"true" help:"with ACME_DNS_PROVIDER=cloudflare, an API token with Zone.DNS edit permission on the zone"`
	Route53ZoneID    string   `env:"ROUTE53_HOSTED_ZONE_ID" help:"with ACME_DNS_PROVIDER=route53, the hosted zone (found from the name otherwise); credentials come from the AWS SDK's usual variables and files (AWS_ACCESS_KEY_ID, AWS_PROFILE, ~/.aws/credentials, a role)"`

	WebRoot string `env:"WEB_ROOT" help:"serve this folder (a built CloudXR.js client) from the proxy's own origin"`
	WebPath string `env:"WEB_PATH" envDefault:"/app/" help:"the path WEB_ROOT is served under"`

	ConnectTimeout   Duration `env:"CONNECT_TIMEOUT" envDefault:"5s" help:"limit on connecting to the backend"`
	TunnelTimeout    Duration `env:"TUNNEL_TIMEOUT" envDefault:"3600s" help:"an upgraded session with no bytes either way for this long is closed"`
	HandshakeTimeout Duration `env:"HANDSHAKE_TIMEOUT" envDefault:"10s" help:"limit on a client's TLS handshake"`
	HeadTimeout      Duration `env:"HEAD_TIMEOUT" envDefault:"10s" help:"limit on reading a request head, and on an idle keep-alive connection"`
	ResponseTimeout  Duration `env:"RESPONSE_TIMEOUT" envDefault:"30s" help:"limit on the backend's answer to a forwarded request head (then 504)"`
	ClientKeepalive  Duration `env:"CLIENT_KEEPALIVE" envDefault:"30s" help:"a client gone without closing (headset off, Wi-Fi lost) is dropped after this idle time plus three unanswered TCP keepalive probes a third of it apart; unacknowledged data waits at most twice this"`
	ShutdownGrace    Duration `env:"SHUTDOWN_GRACE" envDefault:"8s" help:"on SIGTERM/SIGINT, time open sessions get to finish before they are closed"`
	UpgradeDrain     Duration `env:"UPGRADE_DRAIN" envDefault:"4h" help:"after SIGHUP (systemctl reload) has handed the listeners to a new process, time the old one's sessions get to finish before they are closed; 0: until they end (Linux and macOS)"`
	PIDFile          string   `env:"PID_FILE" help:"write the serving process's pid here (the systemd unit's PIDFile=); an upgrade rewrites it with the new process's"`

	AllowedOrigins []string `env:"ALLOWED_ORIGINS" envSeparator:"," help:"only pages from these origins (https://app.example, https://*.lab.example) may open the WebSocket; CORS answers then name the origin"`

	RouteByPath bool     `env:"ROUTE_BY_PATH" envDefault:"false" help:"take the backend from the first path segment (/<host>[:port]/...), as CloudXR.js clients behind a proxy send it; BACKEND_PORT is the default port"`
	RouteAllow  []string `env:"ROUTE_ALLOW" envSeparator:"," help:"with ROUTE_BY_PATH, the only targets that may be dialed: CIDRs, IPs, host names, *.domain"`
	RouteCheck  []string `env:"ROUTE_CHECK" envSeparator:"," help:"with ROUTE_BY_PATH, runtimes (host[:port], each on ROUTE_ALLOW) health-checked like the default backend: 503 at once while down, sessions closed when marked down"`

	// BACKEND_POOL: each new session gets a runtime of its own (see pool/ and config/pool.go).
	BackendPool         []string `env:"BACKEND_POOL" envSeparator:"," help:"runtimes to share among sessions, each new session getting a free one: host:port entries, dns:name[:port] (every A/AAAA record), srv:name (SRV records, a headless Service's), kubernetes:service[.namespace][:port] (the Service's EndpointSlices); off when unset"`
	PoolReconnectGrace  Duration `env:"POOL_RECONNECT_GRACE" envDefault:"60s" help:"with BACKEND_POOL, how long an ended session's runtime stays its user's, who gets it back on reconnecting"`
	PoolMaxPerUser      int      `env:"POOL_MAX_PER_USER" envDefault:"1" help:"with BACKEND_POOL, how many runtimes one user (a token's subject, the pool cookie, a native client's address) holds at once; a native client's further connections join its session's runtime and do not count; 0: no limit"`
	PoolGracesPerClient int      `env:"POOL_GRACES_PER_CLIENT" envDefault:"4" help:"with BACKEND_POOL, how many runtimes the ended sessions of one client address (an IPv6 /64) keep in reconnect grace at once; a session beyond it frees its runtime at once"`
	PoolClaims          string   `env:"POOL_CLAIMS" envDefault:"auto" help:"with BACKEND_POOL, where claims on runtimes are kept: memory (this process: one replica), kubernetes (a Lease per runtime, shared by every replica), or auto (kubernetes inside a pod, memory otherwise); outside a pod, kubernetes uses KUBECONFIG"`
	PoolNamespace       string   `env:"POOL_NAMESPACE" help:"with POOL_CLAIMS=kubernetes, the namespace of the Leases (and of EndpointSlices a kubernetes: entry names without one); the pod's own otherwise"`
	PoolLease           Duration `env:"POOL_LEASE_DURATION" envDefault:"15s" help:"with POOL_CLAIMS=kubernetes, how long a claim outlives a replica that dies holding it (renewed every third of it)"`
	PoolDNSInterval     Duration `env:"POOL_DNS_INTERVAL" envDefault:"10s" help:"with dns: or srv: entries in BACKEND_POOL, how often the names are looked up again"`
	PoolDNSServer       string   `env:"POOL_DNS_SERVER" help:"with dns: or srv: entries in BACKEND_POOL, the DNS server (host[:port]) asked; the system's otherwise"`

	AuthOIDCIssuer     string   `env:"AUTH_OIDC_ISSUER" help:"OpenID Connect issuer URL: every upgrade and forwarded request needs a JWT it signed (discovery finds its keys)"`
	AuthJWKSURL        string   `env:"AUTH_JWKS_URL" help:"the provider's JWKS URL, for providers without discovery (with AUTH_OIDC_ISSUER too: no discovery, iss still checked)"`
	AuthAudience       string   `env:"AUTH_AUDIENCE" help:"with OIDC, the audience tokens must name in aud (or client_id, as Cognito's access tokens do); required"`
	AuthRequiredClaims []string `env:"AUTH_REQUIRED_CLAIMS" envSeparator:"," help:"with OIDC, claims tokens must carry: name=value entries, a list claim must contain the value (cognito:groups=cloudxr)"`
	AuthTokensFile     string   `env:"AUTH_TOKENS_FILE" help:"a file of accepted tokens, one per line (# comments), re-read on change and SIGHUP: authentication without an identity provider"`
	AuthQueryParam     string   `env:"AUTH_QUERY_PARAM" envDefault:"token" help:"query parameter a client may carry its token in (CloudXR.js signalingQueryParameters); cut before forwarding"`
	AuthCookie         string   `env:"AUTH_COOKIE" envDefault:"cxr_token" help:"cookie a same-origin web client may carry its token in; removed before forwarding"`

	ClientMaxConnections int `env:"CLIENT_MAX_CONNECTIONS" envDefault:"64" help:"most connections at once from one client address (an IPv6 /64 counts as one); 0: no limit"`
	ClientHandshakeRate  int `env:"CLIENT_HANDSHAKE_RATE" envDefault:"20" help:"new TLS handshakes per second from one client address (bursts of twice that); 0: no limit"`
	ClientAuthFailures   int `env:"CLIENT_AUTH_FAILURES" envDefault:"10" help:"failed authentications per minute from one client address; past it, 429 with Retry-After and no verification; 0: no limit"`
	ClientTableSize      int `env:"CLIENT_TABLE_SIZE" envDefault:"65536" help:"client addresses tracked for the limits above at most (idle ones are swept and evicted first)"`

	NativeBackendPort Port `env:"NATIVE_BACKEND_PORT" envDefault:"0" help:"upgrades with x-cloudxr-device-type: native go to this port of the runtime (CloudXR native signaling, 48010); 0: no special routing"`

	AdminAddress string `env:"ADMIN_ADDRESS" envDefault:"127.0.0.1:48323" help:"host:port of the admin listener (/healthz, /readyz, /metrics); off turns it off"`
	AdminPprof   bool   `env:"ADMIN_PPROF" envDefault:"false" help:"also serve Go's profiler at /debug/pprof/ on the admin listener (CPU and heap profiles for a bug report); keep that listener private"`

	MaxConnections int `env:"MAX_CONNECTIONS" envDefault:"0" help:"most client connections at once; 0 derives it from the open-file limit"`

	ProxyProtocol     bool `env:"PROXY_PROTOCOL" envDefault:"false" help:"require a PROXY protocol v1/v2 header on every connection (behind a load balancer)"`
	TLSSessionTickets bool `env:"TLS_SESSION_TICKETS" envDefault:"false" help:"allow TLS session resumption with tickets (off, as in the HAProxy container)"`
	TLSPostQuantum    bool `env:"TLS_POST_QUANTUM" envDefault:"true" help:"offer the hybrid post-quantum key exchange X25519MLKEM768 first; false saves CPU per handshake"`

	LogLevel  string `env:"LOG_LEVEL" envDefault:"info" help:"debug, info, warn or error"`
	LogFormat string `env:"LOG_FORMAT" envDefault:"auto" help:"json, console, or auto (console on a terminal, json otherwise)"`

	// adminAddressSet records that ADMIN_ADDRESS was given (variable or
	// flag) rather than defaulted: a taken default port is only a warning.
	adminAddressSet bool
	// unknownEnv are the environment's variables that look meant for
	// this program but are no setting (UnknownVariables).
	unknownEnv []UnknownVar
	// What Validate parsed from the lists above.
	origins     *allow.Origins
	runtimes    *allow.Runtimes
	routeChecks []string
	claims      []auth.Claim
	pool        []PoolSource
}

// AuthEnabled reports whether upgrades and forwarded requests need a
// credential.
func (c *Config) AuthEnabled() bool {
	return c.AuthOIDCIssuer != "" || c.AuthJWKSURL != "" || c.AuthTokensFile != ""
}

// ClientLimits is the CLIENT_* settings as the per-client limits' options;
// false when every limit is off (0).
func (c *Config) ClientLimits() (limit.Options, bool) {
	on := c.ClientMaxConnections > 0 || c.ClientHandshakeRate > 0 || c.ClientAuthFailures > 0
	return limit.Options{MaxConns: c.ClientMaxConnections, HandshakeRate: c.ClientHandshakeRate,
		AuthFailures: c.ClientAuthFailures, TableSize: c.ClientTableSize}, on
}

// RequiredClaims is AUTH_REQUIRED_CLAIMS parsed.
func (c *Config) RequiredClaims() []auth.Claim { return c.claims }

// Origins is ALLOWED_ORIGINS parsed; nil when unset (any origin).
func (c *Config) Origins() *allow.Origins { return c.origins }

// Runtimes is ROUTE_ALLOW parsed; nil unless ROUTE_BY_PATH.
func (c *Config) Runtimes() *allow.Runtimes { return c.runtimes }

// RouteChecks is ROUTE_CHECK as addresses in the one form routing uses,
// each once ("10.0.3.17" and "10.0.3.17:49100" are one runtime).
func (c *Config) RouteChecks() []string { return c.routeChecks }

// AdminAddressSet reports whether ADMIN_ADDRESS was given rather than left
// at its default. A second instance on one host finds the default port
// taken and moves aside; a port the user chose must be honoured or refused.
func (c *Config) AdminAddressSet() bool { return c.adminAddressSet }

// Validate checks the values that parsing alone cannot, and parses the
// lists (see Origins, Runtimes, RouteChecks). It returns one line per bad
// value, each naming the variable.
func (c *Config) Validate() error {
	var errs []error
	bad := func(name string, value any, why string) {
		errs = append(errs, fmt.Errorf("invalid %s=%q: %s", name, fmt.Sprint(value), why))
	}
	c.validateAddresses(bad)
	c.validateTimes(bad)
	c.validateFiles(bad)
	c.validateLists(bad)
	c.validatePool(bad)
	c.validateAuth(bad)
	c.validateOutputs(bad)
	return errors.Join(errs...)
}

type badFunc = func(name string, value any, why string)

// minHealthInterval: a shorter HEALTH_CHECK_INTERVAL is legal but almost
// surely a bare number meant as seconds (HAProxy's rule, which we keep,
// reads it as milliseconds).
const minHealthInterval = 100 * time.Millisecond

// Warnings are settings that are valid but almost surely not what was
// meant, one line each naming the variable; the program logs them at start
// and runs on.
func (c *Config) Warnings() []string {
	var w []string
	if d := c.HealthCheckInterval.D(); d > 0 && d < minHealthInterval {
		w = append(w, fmt.Sprintf("HEALTH_CHECK_INTERVAL=%s checks the runtime %.0f times a second: a bare number is milliseconds, as in HAProxy (2 is 2 ms); write 2s for two seconds",
			d, float64(time.Second)/float64(d)))
	}
	return w
}

// validateAddresses checks where the proxy listens and what it dials.
func (c *Config) validateAddresses(bad badFunc) {
	if strings.TrimSpace(c.BackendHost) == "" || strings.ContainsAny(c.BackendHost, " /") {
		bad("BACKEND_HOST", c.BackendHost, "want a host name or IP address")
	}
	if c.BackendPort == 0 {
		bad("BACKEND_PORT", c.BackendPort, "want a port number from 1 to 65535")
	}
	if c.ListenAddress != "" && net.ParseIP(strings.Trim(c.ListenAddress, "[]")) == nil {
		bad("LISTEN_ADDRESS", c.ListenAddress, "want an IP address such as 127.0.0.1 or ::1")
	}
	if c.AdminAddress != "off" {
		if _, port, err := net.SplitHostPort(c.AdminAddress); err != nil || port == "" {
			bad("ADMIN_ADDRESS", c.AdminAddress, "want host:port, such as 127.0.0.1:48323, or off")
		}
	} else if c.AdminPprof {
		bad("ADMIN_PPROF", c.AdminPprof, "the profiler is served on the admin listener; set ADMIN_ADDRESS to a host:port")
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"MAX_CONNECTIONS", c.MaxConnections}, {"CLIENT_MAX_CONNECTIONS", c.ClientMaxConnections},
		{"CLIENT_HANDSHAKE_RATE", c.ClientHandshakeRate}, {"CLIENT_AUTH_FAILURES", c.ClientAuthFailures}} {
		if n.v < 0 {
			bad(n.name, n.v, "must be 0 (none, or automatic) or more")
		}
	}
	if c.ClientTableSize < 1024 {
		bad("CLIENT_TABLE_SIZE", c.ClientTableSize, "must be 1024 or more")
	}
}

// validateTimes checks the health checks' counts and every duration.
func (c *Config) validateTimes(bad badFunc) {
	if c.HealthCheckRise < 1 {
		bad("HEALTH_CHECK_RISE", c.HealthCheckRise, "must be 1 or more")
	}
	if c.HealthCheckFall < 1 {
		bad("HEALTH_CHECK_FALL", c.HealthCheckFall, "must be 1 or more")
	}
	if c.HealthCheckMode != "http" && c.HealthCheckMode != "tcp" {
		bad("HEALTH_CHECK_MODE", c.HealthCheckMode, "want http (the runtime answers HTTP) or tcp (a connect is enough)")
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{
		{"HEALTH_CHECK_INTERVAL", c.HealthCheckInterval},
		{"CERT_WATCH_INTERVAL", c.CertWatch},
		{"CONNECT_TIMEOUT", c.ConnectTimeout},
		{"TUNNEL_TIMEOUT", c.TunnelTimeout},
		{"HANDSHAKE_TIMEOUT", c.HandshakeTimeout},
		{"HEAD_TIMEOUT", c.HeadTimeout},
		{"RESPONSE_TIMEOUT", c.ResponseTimeout},
	} {
		if d.v <= 0 {
			bad(d.name, d.v, "must be more than zero")
		}
	}
	if c.ClientKeepalive.D() < time.Second || c.ClientKeepalive.D() > 2*time.Hour {
		bad("CLIENT_KEEPALIVE", c.ClientKeepalive, "want 1s to 2h")
	}
	if c.ShutdownGrace < 0 {
		bad("SHUTDOWN_GRACE", c.ShutdownGrace, "must not be negative")
	}
	if c.UpgradeDrain < 0 {
		bad("UPGRADE_DRAIN", c.UpgradeDrain, "must not be negative (0: until the sessions end)")
	}
}

// validateFiles checks the certificate settings and the web root.
func (c *Config) validateFiles(bad badFunc) {
	if strings.TrimSpace(c.CertDir) == "" {
		bad("CERT_DIR", c.CertDir, "must name a directory")
	}
	for _, h := range c.CertHostnames {
		if !validHostname(h) {
			bad("CERT_HOSTNAMES", strings.Join(c.CertHostnames, ","), fmt.Sprintf("%q is not a DNS name or IP address", h))
			break
		}
	}
	switch c.CertMode {
	case "local-ca", "self-signed":
	case "acme":
		c.validateACME(bad)
	default:
		bad("CERT_MODE", c.CertMode, "want local-ca, self-signed or acme")
	}
	if c.WebRoot != "" {
		if st, err := os.Stat(c.WebRoot); err != nil || !st.IsDir() {
			bad("WEB_ROOT", c.WebRoot, "not a readable directory")
		}
	}
	if !strings.HasPrefix(c.WebPath, "/") || !strings.HasSuffix(c.WebPath, "/") || c.WebPath == "/" || strings.ContainsAny(c.WebPath, "?# ") {
		bad("WEB_PATH", c.WebPath, "want a path that starts and ends with /, such as /app/")
	}
}

// validateAuth checks the authentication settings: one mode at a time,
// provider URLs over HTTPS (plain http only on loopback, for tests).
func (c *Config) validateAuth(bad badFunc) {
	c.claims = nil
	oidc := c.AuthOIDCIssuer != "" || c.AuthJWKSURL != ""
	for _, u := range []struct{ name, value string }{{"AUTH_OIDC_ISSUER", c.AuthOIDCIssuer}, {"AUTH_JWKS_URL", c.AuthJWKSURL}} {
		if u.value != "" {
			if why := providerURLProblem(u.value); why != "" {
				bad(u.name, u.value, why)
			}
		}
	}
	switch {
	case oidc && c.AuthTokensFile != "":
		bad("AUTH_TOKENS_FILE", c.AuthTokensFile, "choose one way to authenticate: a tokens file, or an OpenID provider (AUTH_OIDC_ISSUER/AUTH_JWKS_URL)")
	case oidc && c.AuthAudience == "":
		bad("AUTH_AUDIENCE", "", "with an OpenID provider, name the audience tokens must be for (your app's client ID)")
	case !oidc && (c.AuthAudience != "" || len(c.AuthRequiredClaims) > 0):
		bad("AUTH_AUDIENCE", c.AuthAudience, "AUTH_AUDIENCE and AUTH_REQUIRED_CLAIMS apply to tokens from an OpenID provider: set AUTH_OIDC_ISSUER or AUTH_JWKS_URL")
	}
	if cl, err := auth.ParseClaims(c.AuthRequiredClaims); err != nil {
		bad("AUTH_REQUIRED_CLAIMS", strings.Join(c.AuthRequiredClaims, ","), err.Error())
	} else {
		c.claims = cl
	}
	if c.AuthTokensFile != "" {
		if why := unreadable(c.AuthTokensFile); why != "" {
			bad("AUTH_TOKENS_FILE", c.AuthTokensFile, why)
		}
	}
	for _, n := range []struct{ name, value string }{{"AUTH_QUERY_PARAM", c.AuthQueryParam}, {"AUTH_COOKIE", c.AuthCookie}} {
		if n.value == "" || strings.ContainsAny(n.value, " ;=&?#,\"\t") {
			bad(n.name, n.value, "want a plain name, such as token")
		}
	}
}

// unreadable says why this process cannot read the file at path, or "".
// The usual case is a file made by root with mode 600 for a service that
// runs as its own user: the line says which user must be able to read it.
func unreadable(path string) string {
	st, err := os.Stat(path)
	if err != nil || st.IsDir() {
		return "not a readable file"
	}
	f, err := os.Open(path)
	if err == nil {
		f.Close()
		return ""
	}
	if !errors.Is(err, os.ErrPermission) {
		return "not a readable file: " + err.Error()
	}
	who := fmt.Sprintf("uid %d", os.Getuid())
	if u, err := user.Current(); err == nil {
		who = fmt.Sprintf("user %s, uid %d", u.Username, os.Getuid())
	}
	return fmt.Sprintf("this process (%s) may not read it: make that user its owner (chown), mode 600", who)
}

// providerURLProblem says what is wrong with an identity provider's URL:
// HTTPS, or plain http to a loopback address only (a test's provider).
func providerURLProblem(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "":
		return "want a URL such as https://login.example.com/realms/lab"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" {
			return ""
		}
		return "an identity provider is reached over https (plain http only on loopback, for tests)"
	}
	return "want an https:// URL"
}

// validateOutputs checks the log settings.
func (c *Config) validateOutputs(bad badFunc) {
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("LOG_LEVEL", c.LogLevel, "want debug, info, warn or error")
	}
	switch c.LogFormat {
	case "auto", "json", "console":
	default:
		bad("LOG_FORMAT", c.LogFormat, "want json, console or auto")
	}
}

// validateLists parses the allow-lists and the routed runtimes to check.
func (c *Config) validateLists(bad badFunc) {
	c.origins, c.runtimes, c.routeChecks = nil, nil, nil
	if len(c.AllowedOrigins) > 0 {
		o, err := allow.NewOrigins(c.AllowedOrigins)
		if err != nil {
			bad("ALLOWED_ORIGINS", strings.Join(c.AllowedOrigins, ","), err.Error())
		}
		c.origins = o
	}
	switch {
	case c.RouteByPath && len(c.RouteAllow) == 0:
		bad("ROUTE_ALLOW", "", "ROUTE_BY_PATH needs an allow-list of the runtimes it may dial (CIDRs, IPs, host names)")
		return
	case !c.RouteByPath && len(c.RouteCheck) > 0:
		bad("ROUTE_CHECK", strings.Join(c.RouteCheck, ","), "lists routed runtimes to check; set ROUTE_BY_PATH=true, or use BACKEND_HOST for a single runtime")
		return
	case !c.RouteByPath:
		return
	}
	r, err := allow.NewRuntimes(c.RouteAllow, int(c.BackendPort))
	if err != nil {
		bad("ROUTE_ALLOW", strings.Join(c.RouteAllow, ","), err.Error())
		return
	}
	c.runtimes = r
	for _, spec := range c.RouteCheck {
		addr, err := r.Target(spec)
		if err != nil {
			bad("ROUTE_CHECK", strings.Join(c.RouteCheck, ","), err.Error())
			return
		}
		if !slices.Contains(c.routeChecks, addr) {
			c.routeChecks = append(c.routeChecks, addr)
		}
	}
}

// BackendAddr is the backend's host:port, ready to dial.
func (c *Config) BackendAddr() string {
	return net.JoinHostPort(c.BackendHost, c.BackendPort.String())
}

// ListenAddr is the address the TLS listener binds.
func (c *Config) ListenAddr() string {
	return net.JoinHostPort(strings.Trim(c.ListenAddress, "[]"), c.ProxyPort.String())
}

// validHostname accepts what certs.HostName does, and a leading "*." (a
// wildcard name for the generated certificate).
func validHostname(h string) bool { return certs.HostName(strings.TrimPrefix(h, "*.")) }
