package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDefaults(t *testing.T) {
	c, err := Load(nil, nil, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		BackendHost: "localhost", BackendPort: 49100, ProxyPort: 48322,
		HealthCheckInterval: Duration(2 * time.Second), HealthCheckRise: 2, HealthCheckFall: 3, HealthCheckMode: "http",
		CertDir: "/usr/local/etc/haproxy/certs", CertMode: "local-ca", CertWatch: Duration(5 * time.Second), WebPath: "/app/",
		ACMECA: "https://acme-v02.api.letsencrypt.org/directory", RFC2136KeyAlg: "hmac-sha256", ACMERenewCheck: Duration(10 * time.Minute),
		ConnectTimeout: Duration(5 * time.Second), TunnelTimeout: Duration(3600 * time.Second),
		HandshakeTimeout: Duration(10 * time.Second), HeadTimeout: Duration(10 * time.Second),
		ResponseTimeout: Duration(30 * time.Second), ShutdownGrace: Duration(8 * time.Second), UpgradeDrain: Duration(4 * time.Hour), ClientKeepalive: Duration(30 * time.Second),
		LogLevel: "info", LogFormat: "auto", TLSPostQuantum: true, AdminAddress: "127.0.0.1:48323",
		AuthQueryParam: "token", AuthCookie: "cxr_token",
		ClientMaxConnections: 64, ClientHandshakeRate: 20, ClientAuthFailures: 10, ClientTableSize: 65536,
		PoolReconnectGrace: Duration(time.Minute), PoolMaxPerUser: 1, PoolGracesPerClient: 4, PoolClaims: "auto", PoolLease: Duration(15 * time.Second), PoolDNSInterval: Duration(10 * time.Second),
	}
	if c.BackendAddr() != "localhost:49100" || c.ListenAddr() != ":48322" {
		t.Errorf("addresses %s %s", c.BackendAddr(), c.ListenAddr())
	}
	c.CertHostnames = nil
	if !equal(*c, want) {
		t.Errorf("got %+v\nwant %+v", *c, want)
	}
}

func equal(a, b Config) bool {
	return reflect.DeepEqual(a, b)
}

func TestEnvAndFlags(t *testing.T) {
	environ := []string{"BACKEND_HOST=10.0.0.5", "BACKEND_PORT=1234", "HEALTH_CHECK_INTERVAL=1500",
		"CERT_HOSTNAMES= vr.example , 192.168.1.9,,", "PROXY_PROTOCOL=true"}
	c, err := Load([]string{"--backend-port=4321", "--listen-address", "::1", "--proxy-protocol=false", "--tunnel-timeout=2h"}, environ, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	if c.BackendHost != "10.0.0.5" || c.BackendPort != 4321 {
		t.Errorf("flag must win: %s:%d", c.BackendHost, c.BackendPort)
	}
	if c.HealthCheckInterval.D() != 1500*time.Millisecond {
		t.Errorf("bare number is milliseconds: %v", c.HealthCheckInterval)
	}
	if strings.Join(c.CertHostnames, "|") != "vr.example|192.168.1.9" {
		t.Errorf("CertHostnames %q", c.CertHostnames)
	}
	if c.ProxyProtocol || c.TunnelTimeout.D() != 2*time.Hour || c.ListenAddr() != "[::1]:48322" {
		t.Errorf("got %+v", c)
	}
}

func TestInvalidValuesNamed(t *testing.T) {
	const acme = "CERT_MODE=acme;CERT_HOSTNAMES=xr.example.com"
	cases := []struct {
		env, want string
	}{
		{"BACKEND_PORT=abc", `invalid BACKEND_PORT="abc"`},
		{"PROXY_PORT=70000", `invalid PROXY_PORT="70000"`},
		{"HEALTH_CHECK_RISE=0", `invalid HEALTH_CHECK_RISE="0"`},
		{"HEALTH_CHECK_FALL=x", `invalid HEALTH_CHECK_FALL="x"`},
		{"HEALTH_CHECK_INTERVAL=5 parsecs", `invalid HEALTH_CHECK_INTERVAL="5 parsecs": unknown duration`},
		{"HEALTH_CHECK_INTERVAL=-1", `invalid HEALTH_CHECK_INTERVAL="-1": must be positive`},
		{"HEALTH_CHECK_MODE=icmp", `invalid HEALTH_CHECK_MODE="icmp"`},
		{"CONNECT_TIMEOUT=0", `invalid CONNECT_TIMEOUT="0s"`},
		{"LOG_LEVEL=loud", `invalid LOG_LEVEL="loud"`},
		{"LOG_FORMAT=xml", `invalid LOG_FORMAT="xml"`},
		{"PROXY_PROTOCOL=maybe", `invalid PROXY_PROTOCOL="maybe"`},
		{"CERT_HOSTNAMES=ok.example,bad name", `invalid CERT_HOSTNAMES="ok.example,bad name"`},
		{"LISTEN_ADDRESS=example.com", `invalid LISTEN_ADDRESS="example.com"`},
		{"CERT_MODE=acme-ish", `invalid CERT_MODE="acme-ish": want local-ca, self-signed or acme`},
		{"CERT_MODE=acme", `invalid CERT_HOSTNAMES="": CERT_MODE=acme asks the CA for exactly these names`},
		{acme + ";ACME_CA=http://ca.example/dir", `invalid ACME_CA="http://ca.example/dir": want the https:// URL`},
		{acme + ";ACME_EMAIL=nobody", `invalid ACME_EMAIL="nobody"`},
		{acme + ";ACME_CA_ROOTS=/nonexistent/roots.pem", `invalid ACME_CA_ROOTS="/nonexistent/roots.pem"`},
		{acme + ";ACME_EAB_KID=kid", `invalid ACME_EAB_HMAC="": external account binding needs both ACME_EAB_KID and ACME_EAB_HMAC`},
		{acme + ";ACME_EAB_KID=kid;ACME_EAB_HMAC=not*base64", `invalid ACME_EAB_HMAC="(hidden)"`},
		{acme + ";ACME_HTTP_PORT=48322", `invalid ACME_HTTP_PORT="48322": is already PROXY_PORT`},
		{acme + ";ACME_RENEW_INTERVAL=10ms", `invalid ACME_RENEW_INTERVAL="10ms"`},
		{acme + ";ACME_DNS_PROVIDER=gandi", `invalid ACME_DNS_PROVIDER="gandi": want rfc2136, cloudflare or route53`},
		{acme + ";ACME_DNS_PROVIDER=cloudflare", `invalid CLOUDFLARE_API_TOKEN="": ACME_DNS_PROVIDER=cloudflare needs an API token`},
		{acme + ";ACME_DNS_PROVIDER=rfc2136;RFC2136_SERVER=ns.example;RFC2136_KEY_NAME=k", `invalid RFC2136_KEY="": ACME_DNS_PROVIDER=rfc2136 needs the TSIG key's secret`},
		{acme + ";ACME_DNS_PROVIDER=rfc2136;RFC2136_SERVER=ns.example;RFC2136_KEY_NAME=k;RFC2136_KEY=c2VjcmV0;RFC2136_KEY_ALG=md5", `invalid RFC2136_KEY_ALG="md5"`},
		{acme + ";ACME_DNS_PROVIDER=rfc2136;RFC2136_SERVER=::1:53:x;RFC2136_KEY_NAME=k;RFC2136_KEY=c2VjcmV0", `invalid RFC2136_SERVER="::1:53:x": want host, host:port, an IPv6 address, or [IPv6]:port`},
		{acme + ";ACME_DNS_PROVIDER=rfc2136;RFC2136_SERVER=[::1]:;RFC2136_KEY_NAME=k;RFC2136_KEY=c2VjcmV0", `invalid RFC2136_SERVER="[::1]:"`},
		{acme + ";ACME_DNS_RESOLVERS=192.0.2.53", `invalid ACME_DNS_RESOLVERS="192.0.2.53": is only used with ACME_DNS_PROVIDER`},
		{"CERT_MODE=acme;CERT_HOSTNAMES=*.lab.example", `invalid CERT_HOSTNAMES="*.lab.example": the wildcard *.lab.example can only be validated over DNS`},
		{"CERT_MODE=acme;CERT_HOSTNAMES=203.0.113.7;ACME_DNS_PROVIDER=cloudflare;CLOUDFLARE_API_TOKEN=t", `invalid CERT_HOSTNAMES="203.0.113.7": 203.0.113.7 is an IP address, which DNS-01 cannot validate`},
		{"CERT_MODE=acme;CERT_HOSTNAMES=203.0.113.7;ACME_CA=https://dv.acme-v02.api.pki.goog/directory", `Google Trust Services issues certificates for DNS names only`},
		{"CERT_MODE=acme;CERT_HOSTNAMES=gpu-box", `invalid CERT_HOSTNAMES="gpu-box": gpu-box is not a public DNS name`},
		{"WEB_ROOT=/nonexistent/dir", `invalid WEB_ROOT="/nonexistent/dir"`},
		{"WEB_PATH=app", `invalid WEB_PATH="app"`},
		{"WEB_PATH=/", `invalid WEB_PATH="/"`},
		{"ADMIN_ADDRESS=48323", `invalid ADMIN_ADDRESS="48323"`},
		{"ADMIN_ADDRESS=none", `invalid ADMIN_ADDRESS="none"`},
		{"ROUTE_BY_PATH=true", `invalid ROUTE_ALLOW=""`},
		{"BACKEND_POOL=gpu1:49100,gpu 2", `invalid BACKEND_POOL="gpu 2": want host:port, dns:`},
		{"BACKEND_POOL=gpu1:99999", `invalid BACKEND_POOL="gpu1:99999"`},
		{"BACKEND_POOL=kubernetes:Runtimes", `invalid BACKEND_POOL="kubernetes:Runtimes": want kubernetes:<service>`},
		{"BACKEND_POOL=srv:", `invalid BACKEND_POOL="srv:": want srv:<name>`},
		{"BACKEND_POOL=gpu1;ROUTE_BY_PATH=true;ROUTE_ALLOW=10.0.0.0/8", `invalid BACKEND_POOL="gpu1": a session either names its runtime`},
		{"BACKEND_POOL=gpu1;POOL_CLAIMS=etcd", `invalid POOL_CLAIMS="etcd"`},
		{"BACKEND_POOL=gpu1;POOL_LEASE_DURATION=1s", `invalid POOL_LEASE_DURATION="1s"`},
		{"BACKEND_POOL=gpu1;POOL_MAX_PER_USER=-1", `invalid POOL_MAX_PER_USER="-1"`},
		{"BACKEND_POOL=gpu1;POOL_GRACES_PER_CLIENT=0", `invalid POOL_GRACES_PER_CLIENT="0"`},
		{"BACKEND_POOL=gpu1;POOL_DNS_SERVER=not a server", `invalid POOL_DNS_SERVER="not a server"`},
		{"ALLOWED_ORIGINS=https://ok.example,app.example.com", `invalid ALLOWED_ORIGINS="https://ok.example,app.example.com": "app.example.com" is not an origin`},
		{"ROUTE_BY_PATH=true;ROUTE_ALLOW=10.0.0.0/33", `invalid ROUTE_ALLOW="10.0.0.0/33": "10.0.0.0/33" is not a CIDR`},
		{"ROUTE_CHECK=10.0.3.17", `invalid ROUTE_CHECK="10.0.3.17": lists routed runtimes to check; set ROUTE_BY_PATH=true`},
		{"ROUTE_BY_PATH=true;ROUTE_ALLOW=10.0.3.0/24;ROUTE_CHECK=10.0.3.17,10.0.4.1", `invalid ROUTE_CHECK="10.0.3.17,10.0.4.1": "10.0.4.1:49100" is not on the routing allow-list`},
		{"ROUTE_BY_PATH=true;ROUTE_ALLOW=10.0.3.0/24;ROUTE_CHECK=10.0.3.17:http", `invalid ROUTE_CHECK="10.0.3.17:http": bad port in "10.0.3.17:http"`},
		{"AUTH_OIDC_ISSUER=http://login.example.com;AUTH_AUDIENCE=x", `invalid AUTH_OIDC_ISSUER="http://login.example.com": an identity provider is reached over https`},
		{"AUTH_JWKS_URL=ftp://x/keys;AUTH_AUDIENCE=x", `invalid AUTH_JWKS_URL="ftp://x/keys": want an https:// URL`},
		{"AUTH_OIDC_ISSUER=https://login.example.com", `invalid AUTH_AUDIENCE="": with an OpenID provider, name the audience`},
		{"AUTH_AUDIENCE=app", `invalid AUTH_AUDIENCE="app": AUTH_AUDIENCE and AUTH_REQUIRED_CLAIMS apply to tokens from an OpenID provider`},
		{"AUTH_OIDC_ISSUER=https://l.example;AUTH_AUDIENCE=a;AUTH_REQUIRED_CLAIMS=groups", `invalid AUTH_REQUIRED_CLAIMS="groups": "groups" is not name=value`},
		{"AUTH_OIDC_ISSUER=https://l.example;AUTH_AUDIENCE=a;AUTH_TOKENS_FILE=/etc/hostname", `invalid AUTH_TOKENS_FILE="/etc/hostname": choose one way to authenticate`},
		{"AUTH_TOKENS_FILE=/nonexistent/tokens", `invalid AUTH_TOKENS_FILE="/nonexistent/tokens": not a readable file`},
		{"AUTH_QUERY_PARAM=a&b", `invalid AUTH_QUERY_PARAM="a&b"`},
		{"AUTH_COOKIE=a b", `invalid AUTH_COOKIE="a b"`},
		{"NATIVE_BACKEND_PORT=70000", `invalid NATIVE_BACKEND_PORT="70000"`},
		{"CLIENT_MAX_CONNECTIONS=-1", `invalid CLIENT_MAX_CONNECTIONS="-1"`},
		{"CLIENT_TABLE_SIZE=10", `invalid CLIENT_TABLE_SIZE="10"`},
	}
	if _, err := Load(nil, []string{"ADMIN_ADDRESS=off", "ADMIN_PPROF=true"}, nil, "test"); err == nil || !strings.Contains(err.Error(), "invalid ADMIN_PPROF") {
		t.Errorf("ADMIN_PPROF without an admin listener: got %v", err)
	}
	for _, tc := range cases {
		_, err := Load(nil, strings.Split(tc.env, ";"), nil, "test") // several variables are separated by ";"
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %s", tc.env, err, tc.want)
			continue
		}
		if strings.Count(err.Error(), "\n") != 0 {
			t.Errorf("%s: want one line, got %q", tc.env, err)
		}
	}
	_, err := Load([]string{"--backend-port=abc"}, nil, nil, "test")
	if err == nil || !strings.Contains(err.Error(), `BACKEND_PORT="abc"`) {
		t.Errorf("bad flag: %v", err)
	}
	if _, err := Load([]string{"--no-such-flag"}, nil, nil, "test"); err == nil {
		t.Error("unknown flag accepted")
	}
	if _, err := Load([]string{"stray"}, nil, nil, "test"); err == nil {
		t.Error("stray argument accepted")
	}
}

func TestHelpAndVersion(t *testing.T) {
	var out bytes.Buffer
	if _, err := Load([]string{"--help"}, nil, &out, "1.2.3"); !errors.Is(err, ErrHelp) {
		t.Fatal(err)
	}
	for _, want := range []string{"--backend-host", "BACKEND_HOST", "default localhost", "--health-check-interval", "--version", "cloudxr-wss-proxy healthcheck"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
	out.Reset()
	if _, err := Load([]string{"--version"}, nil, &out, "1.2.3"); !errors.Is(err, ErrVersion) || !strings.Contains(out.String(), "1.2.3") {
		t.Errorf("version: %v %q", err, out.String())
	}
}

func TestParseDuration(t *testing.T) {
	cases := map[string]time.Duration{
		"2000": 2 * time.Second, "2s": 2 * time.Second, "500ms": 500 * time.Millisecond, "3m": 3 * time.Minute,
		"1h": time.Hour, "1d": 24 * time.Hour, "250us": 250 * time.Microsecond, "1m30s": 90 * time.Second, " 5s ": 5 * time.Second,
	}
	for in, want := range cases {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "s", "-5s", "5x", "1.5.2s", "99999999999999999999d"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Settings that are valid but almost surely not meant are warned about,
// each naming its variable (issue 20).
func TestWarnings(t *testing.T) {
	c, err := Load(nil, []string{"HEALTH_CHECK_INTERVAL=2"}, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Warnings(); len(w) != 1 || !strings.HasPrefix(w[0], "HEALTH_CHECK_INTERVAL=2ms checks the runtime 500 times a second") {
		t.Errorf("warnings %q", w)
	}
	for _, env := range []string{"HEALTH_CHECK_INTERVAL=2s", "HEALTH_CHECK_INTERVAL=100"} {
		if c, _ := Load(nil, []string{env}, nil, "test"); len(c.Warnings()) != 0 {
			t.Errorf("%s: warnings %q", env, c.Warnings())
		}
	}
}

func TestEffectiveListsEverySetting(t *testing.T) {
	c, _ := Load(nil, []string{"CERT_HOSTNAMES=a.example,b.example"}, nil, "test")
	got := map[string]string{}
	for _, s := range c.Effective() {
		got[s.Key] = s.Value
	}
	if got["BACKEND_PORT"] != "49100" || got["CERT_HOSTNAMES"] != "a.example,b.example" || got["TUNNEL_TIMEOUT"] != "1h0m0s" || len(got) < 20 {
		t.Errorf("%v", got)
	}
}

func TestAdminAddressSet(t *testing.T) {
	for _, tc := range []struct {
		args, environ []string
		want          bool
	}{
		{nil, nil, false},
		{nil, []string{"ADMIN_ADDRESS=127.0.0.1:48323"}, true}, // the default's value, but chosen
		{[]string{"--admin-address=127.0.0.1:9100"}, nil, true},
		{nil, []string{"ADMIN_ADDRESS=off"}, true},
	} {
		c, err := Load(tc.args, tc.environ, nil, "test")
		if err != nil {
			t.Fatal(err)
		}
		if c.AdminAddressSet() != tc.want {
			t.Errorf("%v %v: AdminAddressSet() = %v, want %v", tc.args, tc.environ, c.AdminAddressSet(), tc.want)
		}
	}
}

func TestListsParsed(t *testing.T) {
	c, err := Load(nil, []string{"ROUTE_BY_PATH=true", "ROUTE_ALLOW=10.0.3.0/24,*.gpu.lab", "BACKEND_PORT=49100",
		"ROUTE_CHECK=10.0.3.17,10.0.3.17:49100,Node1.GPU.lab:50000", "ALLOWED_ORIGINS=https://app.example"}, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.RouteChecks(), " "); got != "10.0.3.17:49100 node1.gpu.lab:50000" {
		t.Errorf("RouteChecks %q: one entry per runtime, in routing's spelling", got)
	}
	if c.Runtimes() == nil || !c.Origins().Allows("https://app.example") || c.Origins().Allows("https://evil.example") {
		t.Errorf("lists not parsed: %+v", c)
	}
	if d, _ := Load(nil, nil, nil, "test"); d.Origins() != nil || d.Runtimes() != nil || d.RouteChecks() != nil {
		t.Error("lists set without their settings")
	}
}

func TestPoolParsed(t *testing.T) {
	c, err := Load(nil, []string{"BACKEND_PORT=49100", "BACKEND_POOL=gpu1, 10.0.3.7:50000,[fd00::7],dns:runtimes.lab:49101,srv:_cloudxr._tcp.lab,kubernetes:runtimes.xr:signaling,k8s:gpus",
		"POOL_DNS_SERVER=127.0.0.1"}, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	want := []PoolSource{
		{Kind: PoolStatic, Addr: "gpu1:49100"}, {Kind: PoolStatic, Addr: "10.0.3.7:50000"}, {Kind: PoolStatic, Addr: "[fd00::7]:49100"},
		{Kind: PoolDNS, Name: "runtimes.lab", Port: "49101"}, {Kind: PoolSRV, Name: "_cloudxr._tcp.lab"},
		{Kind: PoolKubernetes, Name: "runtimes", Namespace: "xr", Port: "signaling"}, {Kind: PoolKubernetes, Name: "gpus", Port: "49100"},
	}
	if got := c.Pool(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Pool:\n got %v\nwant %v", got, want)
	}
	if c.PoolDNSServerAddr() != "127.0.0.1:53" {
		t.Errorf("PoolDNSServerAddr %q", c.PoolDNSServerAddr())
	}
	if d, _ := Load(nil, nil, nil, "test"); d.Pool() != nil {
		t.Error("a pool without BACKEND_POOL")
	}
}

func TestAuthSettings(t *testing.T) {
	c, err := Load(nil, []string{"AUTH_OIDC_ISSUER=http://127.0.0.1:9/", "AUTH_AUDIENCE=app",
		"AUTH_REQUIRED_CLAIMS=cognito:groups=cloudxr, email_verified=true"}, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	if !c.AuthEnabled() || len(c.RequiredClaims()) != 2 || c.RequiredClaims()[0].Name != "cognito:groups" {
		t.Errorf("%v %v", c.AuthEnabled(), c.RequiredClaims())
	}
	if d, _ := Load(nil, nil, nil, "test"); d.AuthEnabled() {
		t.Error("authentication on by default")
	}
}

// Secrets are never in the start-up log: Effective says only that they are
// set.
func TestEffectiveHidesSecrets(t *testing.T) {
	c, err := Load(nil, []string{"CERT_MODE=acme", "CERT_HOSTNAMES=xr.example.com", "ACME_DNS_PROVIDER=cloudflare",
		"CLOUDFLARE_API_TOKEN=cf-token-value", "ACME_EAB_KID=kid", "ACME_EAB_HMAC=aG1hYy1rZXk"}, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range c.Effective() {
		got[s.Key] = s.Value
	}
	if got["CLOUDFLARE_API_TOKEN"] != "(set)" || got["ACME_EAB_HMAC"] != "(set)" || got["RFC2136_KEY"] != "" || got["ACME_EAB_KID"] != "kid" {
		t.Errorf("effective settings: %v", got)
	}
}

// Under the systemd unit (StateDirectory=), the certificate is kept in the
// state directory unless CERT_DIR says otherwise, in the environment or
// the settings file.
func TestCertDirUnderSystemd(t *testing.T) {
	settings := filepath.Join(t.TempDir(), "env")
	for _, tc := range []struct {
		environ []string
		file    string
		want    string
	}{
		{[]string{"STATE_DIRECTORY=/var/lib/cloudxr-wss-proxy"}, "", "/var/lib/cloudxr-wss-proxy/certs"},
		{[]string{"STATE_DIRECTORY=/var/lib/a:/var/lib/b"}, "", "/var/lib/a/certs"},
		{[]string{"STATE_DIRECTORY=/var/lib/cloudxr-wss-proxy"}, "CERT_DIR=/etc/mine\n", "/etc/mine"},
		{[]string{"STATE_DIRECTORY=/var/lib/cloudxr-wss-proxy", "CERT_DIR=/srv/certs"}, "", "/srv/certs"},
	} {
		if err := os.WriteFile(settings, []byte(tc.file), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(nil, append(tc.environ, "ENV_FILE="+settings), io.Discard, "test")
		if err != nil {
			t.Fatal(err)
		}
		if cfg.CertDir != tc.want {
			t.Errorf("%v with %q: CERT_DIR %q, want %q", tc.environ, tc.file, cfg.CertDir, tc.want)
		}
	}
}
