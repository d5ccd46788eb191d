package proxy

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/certs"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/portal"
)

// With authentication on, the proxy's own pages (the real portal) show a
// caller without a credential whether the runtimes work, never where they
// are nor what the checks found: not the single runtime's problem (another
// program's own words), not a routed runtime's, not the cause of the
// pool's (it names the Kubernetes API server). The pool's problem keeps its
// first words. A caller with an accepted token sees everything.
func TestPagesWithholdProblems(t *testing.T) {
	const (
		api   = "https://10.96.0.1:443/apis/coordination.k8s.io/v1/namespaces/lab/leases"
		other = `something else is listening there: it answered "SSH-2.0-OpenSSH_9.6", not HTTP`
	)
	site, err := portal.New(portal.Options{Private: true, TokenParam: "token", TokenCookie: "cxr_token", Version: "v-test",
		Certificate: func() *certs.Served { return nil },
		Backend:     func() portal.Backend { return portal.Backend{Address: "10.0.0.9:49100", State: "down", Problem: other} },
		Routes: func() []portal.Backend {
			return []portal.Backend{{Address: "10.0.0.8:49100", State: "down", Problem: other + " (routed)"}}
		},
		Pool: func() (portal.PoolStatus, error) {
			return portal.PoolStatus{Claims: "kubernetes"}, errors.New("listing Leases: Get " + api + ": i/o timeout")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, func(o *Options) {
		o.Local = site
		o.Auth, o.AuthQueryParam, o.AuthCookie = tokensVerifier(t, "right\n"), "token", "cxr_token"
	})
	c := e.dial()
	br := bufio.NewReader(c)
	for _, caller := range []struct {
		header string
		shown  bool
	}{{"", false}, {"Authorization: Bearer right\r\n", true}} {
		for _, path := range []string{"/status.json", "/"} {
			io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: localhost\r\n"+caller.header+"\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			body := string(b)
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, "could not be read") {
				t.Fatalf("%s, token %v: %d, the pool's problem not named: %s", path, caller.shown, resp.StatusCode, body)
			}
			for _, secret := range []string{"10.96.0.1", "SSH-2.0", "(routed)", "10.0.0.9", "10.0.0.8"} {
				if path == "/" && secret == "(routed)" {
					continue // the page lists routed runtimes without their problems
				}
				if strings.Contains(body, secret) != caller.shown {
					t.Errorf("%s, token %v: %q shown %v", path, caller.shown, secret, !caller.shown)
				}
			}
		}
	}
}
