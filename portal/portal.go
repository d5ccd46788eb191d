// Package portal answers the requests the proxy serves itself, so that a
// headset's first visit explains itself: the acceptance page at /, the
// certificate downloads, a JSON status for web clients, and, optionally, a
// built web client from the proxy's own origin. Everything else goes to the
// CloudXR runtime.
package portal

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/auth"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/certs"
)

// Stable paths. They are documented; clients and scripts may rely on them.
const (
	PathHome    = "/"
	PathStatus  = "/status.json"
	PathCAPEM   = "/ca.crt"
	PathCADER   = "/ca.cer"
	PathProfile = "/ca.mobileconfig"
	pathFavicon = "/favicon.ico"
)

// Backend describes the runtime's health for the page and the status.
type Backend struct {
	Address string
	Up      bool
	State   string
	Since   time.Time
	// Problem, when down, is what the checks found instead of the
	// runtime (another program on its port).
	Problem string
}

// Options configure a Portal.
type Options struct {
	// Private: authentication is on, and a request without an accepted
	// credential (auth.Authenticated) sees no backend address, user or
	// problem's cause (withhold). The page and the status then say that a
	// token is needed and where a client sends it: TokenParam (the query
	// parameter) or TokenCookie.
	Private                 bool
	TokenParam, TokenCookie string
	Version                 string
	// Backend reports the single runtime's health now; nil when routing
	// by path, where there is no single runtime.
	Backend func() Backend
	// Routes, when routing by path, reports the routed runtimes that are
	// health-checked (ROUTE_CHECK); it may return none.
	Routes func() []Backend
	// Pool, with BACKEND_POOL, reports the pool's runtimes.
	Pool func() (PoolStatus, error)
	// Certificate returns the certificate in service.
	Certificate func() *certs.Served
	// WebRoot, if set, is served under WebPath (which ends in "/").
	WebRoot, WebPath string
}

// Portal is an http.Handler for the paths it Owns.
type Portal struct {
	opts   Options
	mux    *http.ServeMux
	static http.Handler
}

// New returns a Portal; it fails only when WebRoot cannot be opened.
func New(o Options) (*Portal, error) {
	p := &Portal{opts: o, mux: http.NewServeMux()}
	p.mux.HandleFunc("GET "+PathHome+"{$}", p.home)
	p.mux.HandleFunc("GET "+PathStatus, p.status)
	p.mux.HandleFunc("GET "+PathCAPEM, p.caPEM)
	p.mux.HandleFunc("GET "+PathCADER, p.caDER)
	p.mux.HandleFunc("GET "+PathProfile, p.profile)
	p.mux.HandleFunc("GET "+pathFavicon, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	if o.WebRoot != "" {
		h, err := staticHandler(o.WebRoot, o.WebPath)
		if err != nil {
			return nil, err
		}
		p.static = h
		p.mux.Handle("GET "+o.WebPath, h)
		p.mux.Handle("GET "+strings.TrimSuffix(o.WebPath, "/"), http.RedirectHandler(o.WebPath, http.StatusMovedPermanently))
	}
	return p, nil
}

// Owns reports whether the proxy answers this request itself: GET or HEAD
// of one of its paths. target is the request target, with any query.
func (p *Portal) Owns(method, target string) bool {
	if method != http.MethodGet && method != http.MethodHead {
		return false
	}
	path, _, _ := strings.Cut(target, "?")
	switch path {
	case PathHome, PathStatus, PathCAPEM, PathCADER, PathProfile, pathFavicon:
		return true
	}
	return p.static != nil && (strings.HasPrefix(path, p.opts.WebPath) || path == strings.TrimSuffix(p.opts.WebPath, "/"))
}

// ServeHTTP answers an owned request (HEAD is served as GET without a
// body by the caller's response writer).
func (p *Portal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	p.mux.ServeHTTP(w, r)
}

// Status is the JSON document at /status.json.
type Status struct {
	Version string `json:"version"`
	// Backend is the single runtime; absent when routing by path.
	Backend     *BackendStatus  `json:"backend,omitempty"`
	Certificate CertificateInfo `json:"certificate"`
	TrustAnchor AnchorInfo      `json:"trust_anchor"`
	// Routing says, when routing by path, how runtimes are chosen and
	// which are checked; RoutedBackends are the checked ones.
	Routing        *RoutingStatus  `json:"routing,omitempty"`
	RoutedBackends []BackendStatus `json:"routed_backends,omitempty"`
	// Pool is the runtime pool (BACKEND_POOL).
	Pool *PoolStatus `json:"pool,omitempty"`
	// Authentication is present when sessions need a token.
	Authentication *AuthStatus `json:"authentication,omitempty"`
}

// PoolStatus is the runtime pool: where claims are kept, and each runtime.
type PoolStatus struct {
	Claims string        `json:"claims"`
	Grace  time.Duration `json:"-"`
	// GraceText is Grace for people ("1m0s").
	GraceText string            `json:"reconnect_grace"`
	Counts    map[string]int    `json:"counts"`
	Runtimes  []PoolRuntime     `json:"runtimes"`
	Problem   string            `json:"problem,omitempty"` // the claims could not be read
	Users     map[string]string `json:"-"`
}

// PoolRuntime is one runtime of the pool. User, the token subject of the
// session holding it, is shown only to an authenticated caller.
type PoolRuntime struct {
	Address     string    `json:"address"`
	Up          bool      `json:"up"`
	State       string    `json:"state"` // free, busy, grace, down
	Since       time.Time `json:"since,omitzero"`
	Health      string    `json:"health"`
	HealthSince time.Time `json:"health_since,omitzero"`
	Problem     string    `json:"problem,omitempty"`
	User        string    `json:"user,omitempty"`
}

// AuthStatus says that sessions need a token, and where a client sends
// it; Accepted says whether this request carried one that was accepted.
type AuthStatus struct {
	Required    bool   `json:"required"`
	QueryParam  string `json:"query_parameter"`
	Cookie      string `json:"cookie"`
	Header      string `json:"header"`
	Accepted    bool   `json:"accepted"`
	Explanation string `json:"explanation"`
}

// RoutingStatus describes routing by path, in words for the page.
type RoutingStatus struct {
	By      string `json:"by"`
	Checked string `json:"checked"`
}

// BackendStatus is the runtime's reachability.
type BackendStatus struct {
	Address string    `json:"address"`
	Up      bool      `json:"up"`
	State   string    `json:"state"`
	Since   time.Time `json:"since"`
	Problem string    `json:"problem,omitempty"`
}

// CertificateInfo describes the certificate in service.
type CertificateInfo struct {
	SHA256      string    `json:"sha256"`
	Subject     string    `json:"subject"`
	DNSNames    []string  `json:"dns_names"`
	IPAddresses []string  `json:"ip_addresses"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	Source      string    `json:"source"`
	Mode        string    `json:"mode,omitempty"`
}

// AnchorInfo is what a client should trust, and where to download it.
type AnchorInfo struct {
	Subject  string `json:"subject"`
	SHA256   string `json:"sha256"`
	IsCA     bool   `json:"is_ca"`
	Download string `json:"download"`
}

func (p *Portal) snapshot() Status {
	st := Status{Version: p.opts.Version, Certificate: certificateInfo(p.opts.Certificate())}
	if s := p.opts.Certificate(); s != nil {
		st.TrustAnchor = AnchorInfo{Subject: s.Anchor.Subject.CommonName, SHA256: certs.Fingerprint(s.Anchor), IsCA: s.Anchor.IsCA, Download: PathCAPEM}
	}
	if p.opts.Backend != nil {
		b := p.opts.Backend()
		st.Backend = &BackendStatus{Address: b.Address, Up: b.Up, State: b.State, Since: b.Since.UTC(), Problem: b.Problem}
	}
	if p.opts.Pool != nil {
		ps, err := p.opts.Pool()
		if err != nil {
			ps.Problem = poolUnreadable + ": " + err.Error()
		}
		ps.GraceText = ps.Grace.String()
		ps.Counts = map[string]int{"free": 0, "busy": 0, "grace": 0, "down": 0}
		for i, r := range ps.Runtimes {
			ps.Counts[r.State]++
			ps.Runtimes[i].Since, ps.Runtimes[i].HealthSince = r.Since.UTC(), r.HealthSince.UTC()
		}
		if ps.Runtimes == nil {
			ps.Runtimes = []PoolRuntime{}
		}
		st.Pool = &ps
	}
	if p.opts.Routes != nil {
		for _, r := range p.opts.Routes() {
			st.RoutedBackends = append(st.RoutedBackends, BackendStatus{Address: r.Address, Up: r.Up, State: r.State, Since: r.Since.UTC(), Problem: r.Problem})
		}
		st.Routing = &RoutingStatus{By: "each session names its runtime in the first path segment (wss://host/<runtime>/...)"}
		if len(st.RoutedBackends) == 0 {
			st.Routing.Checked = "no runtime is health-checked (ROUTE_CHECK is empty): each is tried when a session asks for it"
		} else {
			st.Routing.Checked = fmt.Sprintf("the %d runtimes on ROUTE_CHECK are health-checked; any other is tried when a session asks for it", len(st.RoutedBackends))
		}
	}
	return st
}

// certificateInfo describes the certificate in service; s is nil while an
// ACME CA's first certificate is on its way.
func certificateInfo(s *certs.Served) CertificateInfo {
	if s == nil {
		return CertificateInfo{Source: "none yet", DNSNames: []string{}, IPAddresses: []string{}}
	}
	leaf := s.Leaf()
	c := CertificateInfo{
		SHA256: s.Fingerprint(), Subject: leaf.Subject.CommonName, DNSNames: leaf.DNSNames,
		NotBefore: leaf.NotBefore.UTC(), NotAfter: leaf.NotAfter.UTC(), Source: s.Source, IPAddresses: []string{},
	}
	if s.Managed {
		c.Mode = string(s.Mode)
	}
	for _, ip := range leaf.IPAddresses {
		c.IPAddresses = append(c.IPAddresses, ip.String())
	}
	return c
}

func (p *Portal) status(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(p.snapshotFor(r))
}

// withheld stands for a backend address, or a problem's cause, that an
// unauthenticated caller may not see.
const withheld = "(withheld: send your token to see it)"

// poolUnreadable begins the pool's problem when its claims cannot be read;
// the cause after it (which can name the Kubernetes API server's URL) is
// withheld too.
const poolUnreadable = "the pool's claims could not be read"

// snapshotFor is the status as r may see it: with authentication on, a
// caller without an accepted credential learns whether the runtime is up,
// not where it is nor what the checks found there.
func (p *Portal) snapshotFor(r *http.Request) Status {
	st := p.snapshot()
	if !p.opts.Private {
		return st
	}
	accepted := auth.Authenticated(r.Context())
	st.Authentication = &AuthStatus{Required: true, QueryParam: p.opts.TokenParam, Cookie: p.opts.TokenCookie,
		Header: "Authorization: Bearer <token>", Accepted: accepted,
		Explanation: "This proxy requires a token for every session. A CloudXR.js client sends it in the signaling URL " +
			"(signalingQueryParameters: { " + p.opts.TokenParam + ": <token> }); a native client as the header " +
			"Authorization: Bearer <token>; a web page served by this proxy as the " + p.opts.TokenCookie + " cookie."}
	if !accepted {
		withhold(&st)
	}
	return st
}

// withhold takes out of st what only an authenticated caller may see: the
// runtimes' addresses and users, and every problem's cause. A runtime's
// problem (what else answers on its port, in that program's words) goes
// altogether: its state already says it is down, which is all a visitor
// can act on. The pool's problem keeps its first words, so a visitor still
// learns why no runtime is offered.
func withhold(st *Status) {
	if st.Pool != nil {
		for i := range st.Pool.Runtimes {
			st.Pool.Runtimes[i].Address, st.Pool.Runtimes[i].User, st.Pool.Runtimes[i].Problem = withheld, "", ""
		}
		if st.Pool.Problem != "" {
			st.Pool.Problem = poolUnreadable + ": " + withheld
		}
	}
	if st.Backend != nil {
		st.Backend.Address, st.Backend.Problem = withheld, ""
	}
	for i := range st.RoutedBackends {
		st.RoutedBackends[i].Address, st.RoutedBackends[i].Problem = withheld, ""
	}
}

// anchor is what a client should trust; nil before there is a certificate.
func (p *Portal) anchor() *x509.Certificate {
	if s := p.opts.Certificate(); s != nil {
		return s.Anchor
	}
	return nil
}

func (p *Portal) caPEM(w http.ResponseWriter, _ *http.Request) {
	if a := p.anchorOr503(w); a != nil {
		download(w, "application/x-x509-ca-cert", "cloudxr-wss-proxy-ca.crt")
		pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: a.Raw})
	}
}

func (p *Portal) caDER(w http.ResponseWriter, _ *http.Request) {
	if a := p.anchorOr503(w); a != nil {
		download(w, "application/pkix-cert", "cloudxr-wss-proxy-ca.cer")
		w.Write(a.Raw)
	}
}

func (p *Portal) profile(w http.ResponseWriter, _ *http.Request) {
	if a := p.anchorOr503(w); a != nil {
		download(w, "application/x-apple-aspen-config", "cloudxr-wss-proxy-ca.mobileconfig")
		w.Write(Profile(a))
	}
}

// anchorOr503 returns the trust anchor, or answers 503 when there is no
// certificate yet.
func (p *Portal) anchorOr503(w http.ResponseWriter) *x509.Certificate {
	a := p.anchor()
	if a == nil {
		http.Error(w, "no certificate yet", http.StatusServiceUnavailable)
	}
	return a
}

func download(w http.ResponseWriter, contentType, name string) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Cache-Control", "no-cache")
}
