//go:build e2e

package e2e

// Monitoring, for real: promtool checks the alerting rules and runs their
// unit tests; a real Prometheus (Debian's) scrapes two running proxies (one
// with a single runtime, authentication and per-client limits, one with a
// runtime pool) that serve real sessions, some refused; every dashboard
// query and every alert expression is evaluated through its HTTP API and
// must name only metrics and labels the proxies export, every dashboard
// query returns data, and the runtime-down alert fires while a runtime is
// stopped and resolves once it is back.

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/deploy/grafana"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

func TestAlertRulesWithPromtool(t *testing.T) {
	need(t, "promtool")
	for _, args := range [][]string{
		{"check", "rules", "deploy/prometheus/alerts.yml"},
		{"test", "rules", "deploy/prometheus/alerts_test.yml"},
	} {
		out, err := exec.Command("promtool", args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// promAPI is a running Prometheus's HTTP API.
type promAPI struct {
	t    *testing.T
	base string
}

func (p promAPI) get(path string, q url.Values, into any) {
	p.t.Helper()
	resp, err := http.Get(p.base + path + "?" + q.Encode())
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		p.t.Fatalf("%s: %v", path, err)
	}
	if env.Status != "success" {
		p.t.Fatalf("%s %v: %s", path, q, env.Error)
	}
	if into != nil {
		json.Unmarshal(env.Data, into)
	}
}

// query evaluates expr now and returns the series' labels.
func (p promAPI) query(expr string) []map[string]string {
	p.t.Helper()
	var data struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
		} `json:"result"`
	}
	p.get("/api/v1/query", url.Values{"query": {expr}}, &data)
	var out []map[string]string
	for _, r := range data.Result {
		out = append(out, r.Metric)
	}
	return out
}

// alert is the state of the named alert for backend ("" if none).
func (p promAPI) alert(name, backend string) string {
	p.t.Helper()
	var data struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	p.get("/api/v1/alerts", nil, &data)
	for _, a := range data.Alerts {
		if a.Labels["alertname"] == name && a.Labels["backend"] == backend {
			return a.State
		}
	}
	return ""
}

// startPrometheus runs Prometheus scraping targets every second under the
// job cloudxr-wss-proxy, with the alerting rules, evaluated every second.
func startPrometheus(t *testing.T, targets ...string) promAPI {
	t.Helper()
	need(t, "prometheus")
	dir := t.TempDir()
	rules, _ := filepath.Abs("deploy/prometheus/alerts.yml")
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = fmt.Sprintf("%q", tg)
	}
	conf := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: cloudxr-wss-proxy
    static_configs:
      - targets: [%s]
`, rules, strings.Join(quoted, ", "))
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startBackground(t, exec.Command("prometheus", "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr), nil)
	p := promAPI{t: t, base: "http://" + addr}
	waitFor(t, 30*time.Second, "Prometheus ready", func() bool {
		resp, err := http.Get(p.base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

var (
	metricName = regexp.MustCompile(`\b(cloudxr_wss_proxy_[a-z_]+|process_[a-z_]+|go_[a-z_]+|up)\b`)
	labelLists = regexp.MustCompile(`\b(?:by|on|without|ignoring)\s*\(([^)]*)\)`)
	matchers   = regexp.MustCompile(`\{([^}]*)\}`)
	matcher    = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	templated  = regexp.MustCompile(`\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)`)
)

// checkNames fails when expr (or its annotations) names a metric, or a
// label of its metrics, that Prometheus has not scraped from the proxies.
func checkNames(t *testing.T, p promAPI, what, expr string, annotations ...string) {
	t.Helper()
	var names []string
	p.get("/api/v1/label/__name__/values", nil, &names)
	labels := map[string]bool{}
	metrics := metricName.FindAllString(expr, -1)
	for _, m := range metrics {
		if !slices.Contains(names, m) {
			t.Errorf("%s: %s names %s, which the proxies do not export", what, expr, m)
			continue
		}
		var series []map[string]string
		p.get("/api/v1/series", url.Values{"match[]": {m}}, &series)
		for _, s := range series {
			for l := range s {
				labels[l] = true
			}
		}
	}
	var used []string
	for _, l := range labelLists.FindAllStringSubmatch(expr, -1) {
		for _, n := range strings.Split(l[1], ",") {
			used = append(used, strings.TrimSpace(n))
		}
	}
	for _, m := range matchers.FindAllStringSubmatch(expr, -1) {
		for _, n := range matcher.FindAllStringSubmatch(m[1], -1) {
			used = append(used, n[1])
		}
	}
	for _, a := range annotations {
		for _, n := range templated.FindAllStringSubmatch(a, -1) {
			used = append(used, n[1])
		}
	}
	for _, l := range used {
		if l != "" && !labels[l] {
			t.Errorf("%s: %s uses the label %q, which none of its metrics %v carries", what, expr, l, metrics)
		}
	}
}

func TestPrometheusScrapesTheProxy(t *testing.T) {
	// Proxy A: one runtime, tokens, at most two connections per client.
	b := backend(t)
	tokens := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(tokens, []byte("good-token\n"), 0o600)
	dirA := t.TempDir()
	a := startProc(t, "CERT_DIR="+dirA, "BACKEND_HOST=127.0.0.1", fmt.Sprintf("BACKEND_PORT=%d", b.Port()),
		"AUTH_TOKENS_FILE="+tokens, "CLIENT_MAX_CONNECTIONS=2")
	addrA, trustA := a.addr(), trustPEM(t, filepath.Join(dirA, "ca.crt"))
	// Proxy B: a pool of one runtime.
	pb := backend(t)
	dirB := t.TempDir()
	pp := startProc(t, "CERT_DIR="+dirB, "BACKEND_POOL="+pb.Addr())
	addrB, trustB := pp.addr(), trustPEM(t, filepath.Join(dirB, "ca.crt"))
	adminA := a.waitLog("admin listener")["address"].(string)
	adminB := pp.waitLog("admin listener")["address"].(string)
	prom := startPrometheus(t, adminA, adminB)

	monitoredTraffic(t, addrA, trustA, addrB, trustB)

	// Once Prometheus holds a minute's rate of the counters, every
	// dashboard query returns data and names only what the proxies export.
	waitFor(t, 60*time.Second, "every dashboard query answered with data", func() bool {
		for _, q := range grafana.Queries() {
			if len(prom.query(grafana.Runnable(q))) == 0 {
				return false
			}
		}
		return true
	})
	for _, q := range grafana.Queries() {
		checkNames(t, prom, "dashboard", grafana.Runnable(q))
	}
	checkAlertRules(t, prom)

	// The runtime-down alert: firing a minute after the runtime stops,
	// resolved once it is back.
	runtime := fmt.Sprintf("127.0.0.1:%d", b.Port())
	b.Close()
	waitFor(t, 100*time.Second, "CloudXRRuntimeDown firing for "+runtime, func() bool {
		return prom.alert("CloudXRRuntimeDown", runtime) == "firing"
	})
	back, err := wstest.StartBackend(runtime)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	waitFor(t, 30*time.Second, "CloudXRRuntimeDown resolved", func() bool {
		return prom.alert("CloudXRRuntimeDown", runtime) == ""
	})
}

// monitoredTraffic makes every kind of session the counters count: on
// proxy A a good one (echoed, ended), one kept open, a refused token, a
// client over its connection limit, a plain-HTTP request to the TLS port;
// on proxy B one session and one the full pool refuses.
func monitoredTraffic(t *testing.T, addrA string, trustA *tls.Config, addrB string, trustB *tls.Config) {
	c, err := wstest.Dial(addrA, "/sign_in?token=good-token", trustA)
	if err != nil {
		t.Fatal(err)
	}
	c.Echo("counted", 5*time.Second)
	c.Close()
	open, err := wstest.Dial(addrA, "/sign_in?token=good-token", trustA)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { open.Close() })
	if _, err := wstest.Dial(addrA, "/sign_in?token=wrong", trustA); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("a wrong token: %v", err)
	}
	held, err := net.Dial("tcp", addrA) // the second connection of this address
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Close() })
	over, err := net.Dial("tcp", addrA) // the third: over the limit
	if err == nil {
		over.SetReadDeadline(time.Now().Add(5 * time.Second))
		over.Read(make([]byte, 1))
		over.Close()
	}
	held.Close()
	if plain, err := net.Dial("tcp", addrA); err == nil {
		fmt.Fprintf(plain, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		plain.SetReadDeadline(time.Now().Add(5 * time.Second))
		plain.Read(make([]byte, 512))
		plain.Close()
	}
	first, err := wstest.Dial(addrB, "/sign_in", trustB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Close() })
	if _, err := wstest.Dial(addrB, "/sign_in", trustB); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("the full pool: %v", err)
	}
}

// checkAlertRules evaluates every alert in deploy/prometheus/alerts.yml
// and checks that it, and its annotations, name only what the proxies
// export.
func checkAlertRules(t *testing.T, prom promAPI) {
	var file struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	}
	data, err := os.ReadFile("deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			prom.query(r.Expr) // evaluates, or fails the test
			var ann []string
			for _, v := range r.Annotations {
				ann = append(ann, v)
			}
			checkNames(t, prom, "alert "+r.Alert, r.Expr, ann...)
		}
	}
}
