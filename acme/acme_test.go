package acme

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newManager(t *testing.T, o Options) *Manager {
	t.Helper()
	o.Dir = t.TempDir()
	if o.CA == "" {
		o.CA = "https://ca.invalid/directory"
	}
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

// Every plain-HTTP request that is not a challenge goes to https:// on the
// proxy's port, to one of the names asked for: a Host header or a path a
// client chose never becomes another site in the Location.
func TestRedirect(t *testing.T) {
	m := newManager(t, Options{Names: []string{"xr.example.com", "*.lab.example.com"}, ProxyPort: 48322, HTTPPort: 80})
	for _, tc := range []struct{ host, target, want string }{
		{"xr.example.com", "/app/?a=1", "https://xr.example.com:48322/app/?a=1"},
		{"XR.example.com:80", "/", "https://xr.example.com:48322/"},
		{"gpu3.lab.example.com", "/x", "https://gpu3.lab.example.com:48322/x"},
		{"evil.example", "/x", "https://xr.example.com:48322/x"},
		{"a.b.lab.example.com", "/", "https://xr.example.com:48322/"},
		{"xr.example.com", "//evil.example/x", "https://xr.example.com:48322/"},
		{"<script>", "/%3Cscript%3E", "https://xr.example.com:48322/%3Cscript%3E"},
	} {
		r := httptest.NewRequest(http.MethodGet, "http://placeholder"+tc.target, nil)
		r.Host = tc.host
		w := httptest.NewRecorder()
		m.HTTPHandler().ServeHTTP(w, r)
		if w.Code != http.StatusPermanentRedirect || w.Header().Get("Location") != tc.want {
			t.Errorf("Host %q %s: %d %q, want 308 %q", tc.host, tc.target, w.Code, w.Header().Get("Location"), tc.want)
		}
	}
	m443 := newManager(t, Options{Names: []string{"xr.example.com"}, ProxyPort: 443, HTTPPort: 80})
	w := httptest.NewRecorder()
	m443.HTTPHandler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://xr.example.com/", nil))
	if got := w.Header().Get("Location"); got != "https://xr.example.com/" {
		t.Errorf("port 443: Location %q", got)
	}
}

// Before the CA answers, readiness names the names still waiting and the
// CA's last error for each; what is kept per name is bounded by the names
// asked for.
func TestReadyBeforeACertificate(t *testing.T) {
	var orders []string
	m := newManager(t, Options{Names: []string{"xr.example.com"}, Order: func(r string) { orders = append(orders, r) }})
	if ok, why := m.Ready(); ok || !strings.Contains(why, "no certificate yet from https://ca.invalid/directory for xr.example.com") {
		t.Errorf("ready %v %q", ok, why)
	}
	for i := range 10 {
		m.onEvent(t.Context(), "cert_failed", map[string]any{"identifier": strings.Repeat("x", i) + ".example", "error": "no"})
	}
	m.onEvent(t.Context(), "cert_failed", map[string]any{"identifier": "xr.example.com", "error": "connection refused"})
	if ok, why := m.Ready(); ok || !strings.Contains(why, "xr.example.com: connection refused") {
		t.Errorf("ready %v %q", ok, why)
	}
	if len(m.failure) != 1 {
		t.Errorf("%d failures kept for 1 name", len(m.failure))
	}
	m.onEvent(t.Context(), "cert_obtained", map[string]any{"identifier": "xr.example.com", "renewal": true})
	if strings.Join(orders, ",") != strings.Repeat("failed,", 11)+"renewed" {
		t.Errorf("orders %v", orders)
	}
	if m.Current() != nil {
		t.Error("a certificate before any was obtained")
	}
}

func TestIsChallenge(t *testing.T) {
	if !IsChallenge(tls.ConnectionState{NegotiatedProtocol: "acme-tls/1"}) || IsChallenge(tls.ConnectionState{NegotiatedProtocol: "http/1.1"}) {
		t.Error("IsChallenge")
	}
}
