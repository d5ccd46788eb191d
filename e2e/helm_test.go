//go:build e2e

package e2e

// The Helm chart as its users install it: the real helm CLI, built from
// the Go module proxy at helmVersion, lints the chart and renders it with
// each example values file and with each `helm install` of the README;
// every object rendered is sent to a real API server.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/config"
)

const (
	helmVersion = "v4.3.2"
	chartDir    = "deploy/helm/cloudxr-wss-proxy"
	examplesDir = "deploy/helm/examples"
)

var helmTool struct {
	once sync.Once
	path string
	err  error
}

// helm runs the helm CLI (built once per test binary, beside the proxy's
// binary) with its own empty configuration, and returns its output.
func helm(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	helmTool.once.Do(func() {
		dir := filepath.Dir(binary)
		cmd := exec.Command("go", "install", "helm.sh/helm/v4/cmd/helm@"+helmVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			helmTool.err = &buildError{what: "helm " + helmVersion, out: out, err: err}
			return
		}
		helmTool.path = filepath.Join(dir, "helm")
	})
	if helmTool.err != nil {
		t.Fatal(helmTool.err)
	}
	home := t.TempDir()
	cmd := exec.Command(helmTool.path, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_DATA_HOME="+filepath.Join(home, "data"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, &buildError{what: "helm " + strings.Join(args, " "), out: append(out, stderr.Bytes()...), err: err}
	}
	return out, nil
}

type buildError struct {
	what string
	out  []byte
	err  error
}

func (e *buildError) Error() string { return e.what + ": " + e.err.Error() + "\n" + string(e.out) }
func (e *buildError) Unwrap() error { return e.err }

// helmCase is one rendering of the chart: helm template's arguments after
// the chart.
type helmCase struct {
	name string
	args []string
}

// helmCases are the chart with its defaults, with each example values
// file, with the examples that go together all at once, and each
// `helm install` the README gives.
func helmCases(t *testing.T) []helmCase {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	if len(files) < 7 {
		t.Fatalf("only %d example values files in %s", len(files), examplesDir)
	}
	cases := []helmCase{{name: "defaults"}}
	for _, f := range files {
		cases = append(cases, helmCase{name: filepath.Base(f), args: []string{"-f", f}})
	}
	// A pool and routing by path exclude each other, and so do the two
	// ways to authenticate; everything else combines.
	var pool, routing []string
	for _, f := range files {
		switch filepath.Base(f) {
		case "pool.yaml", "auth-tokens.yaml":
			pool = append(pool, "-f", f)
		case "routing.yaml", "auth-oidc.yaml":
			routing = append(routing, "-f", f)
		default:
			pool = append(pool, "-f", f)
			routing = append(routing, "-f", f)
		}
	}
	cases = append(cases, helmCase{"pool+all", pool}, helmCase{"routing+all", routing})
	return append(cases, readmeHelmInstalls(t)...)
}

// readmeHelmInstalls are the `helm install NAME CHART ARGS...` lines of the
// README and the pages under docs/ whose chart is this repository's.
func readmeHelmInstalls(t *testing.T) []helmCase {
	t.Helper()
	docs, _ := filepath.Glob("docs/*.md")
	var cases []helmCase
	for _, doc := range append([]string{"README.md"}, docs...) {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			line, _, _ = strings.Cut(line, "#")
			fields := strings.Fields(line)
			if len(fields) < 4 || fields[0] != "helm" || fields[1] != "install" {
				continue
			}
			if fields[3] != chartDir {
				t.Errorf("%s: %q installs %s, not %s", doc, line, fields[3], chartDir)
				continue
			}
			cases = append(cases, helmCase{name: "README " + strings.Join(fields, " "), args: append([]string{"--name-template", fields[2]}, fields[4:]...)})
		}
	}
	if len(cases) == 0 {
		t.Fatal("neither the README nor docs/ gives a helm install")
	}
	return cases
}

// helmTemplate renders the chart as `helm template`, as release
// "cloudxr-wss-proxy" unless the case names one.
func helmTemplate(t *testing.T, c helmCase) []*unstructured.Unstructured {
	t.Helper()
	args := append([]string{"template"}, c.args...)
	if !strings.Contains(strings.Join(c.args, " "), "--name-template") {
		args = append(args, "--name-template", "cloudxr-wss-proxy")
	}
	out, err := helm(t, append(args, chartDir)...)
	if err != nil {
		t.Fatal(err)
	}
	return decodeYAML(t, c.name, out)
}

// The chart lints strictly with each values file and makes a valid
// configuration of the proxy with each.
func TestHelmChart(t *testing.T) {
	for _, c := range helmCases(t) {
		if !strings.HasPrefix(c.name, "README") {
			if out, err := helm(t, append([]string{"lint", "--strict", chartDir}, c.args...)...); err != nil {
				t.Errorf("%s: %v", c.name, err)
			} else if !bytes.Contains(out, []byte("1 chart(s) linted, 0 chart(s) failed")) {
				t.Errorf("%s: helm lint says\n%s", c.name, out)
			}
		}
		checkChartConfig(t, c.name, helmTemplate(t, c))
	}
}

// The chart renders what the kustomize base renders by default (the pod
// and its settings), grants the pool exactly the Role of
// deploy/kubernetes/pool, and carries exactly the alerts of
// deploy/prometheus/alerts.yml.
func TestHelmChartIsTheKustomizeBase(t *testing.T) {
	chart := helmTemplate(t, helmCase{name: "defaults"})
	base := decodeYAML(t, "base", kustomizeBuild(t, "base"))
	for _, path := range [][]string{{"Deployment", "spec", "template", "spec"}, {"ConfigMap", "data"}, {"Service", "spec", "ports"}, {"Service", "spec", "type"}} {
		got, _, _ := unstructured.NestedFieldCopy(objectOfKind(t, chart, path[0]).Object, path[1:]...)
		want, _, _ := unstructured.NestedFieldCopy(objectOfKind(t, base, path[0]).Object, path[1:]...)
		if want == nil || !reflect.DeepEqual(got, want) {
			t.Errorf("the chart's %s differs from the kustomize base's:\n%v\nbase:\n%v", strings.Join(path, "."), got, want)
		}
	}

	pool := helmTemplate(t, helmCase{name: "pool", args: []string{"-f", filepath.Join(examplesDir, "pool.yaml")}})
	role := objectOfKind(t, decodeFile(t, "deploy/kubernetes/pool/rbac.yaml"), "Role")
	if got := objectOfKind(t, pool, "Role").Object["rules"]; !reflect.DeepEqual(got, role.Object["rules"]) {
		t.Errorf("the chart's Role grants %v, deploy/kubernetes/pool/rbac.yaml %v", got, role.Object["rules"])
	}

	mon := helmTemplate(t, helmCase{name: "monitoring", args: []string{"-f", filepath.Join(examplesDir, "monitoring.yaml")}})
	alerts, err := os.ReadFile("deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := yaml.Unmarshal(alerts, &want); err != nil {
		t.Fatal(err)
	}
	if got := objectOfKind(t, mon, "PrometheusRule").Object["spec"]; !reflect.DeepEqual(got, want) {
		t.Error("the chart's PrometheusRule differs from deploy/prometheus/alerts.yml")
	}
}

// Values that contradict each other, or that the chart does not know
// (values.schema.json), stop the rendering with a message saying why.
func TestHelmChartRefuses(t *testing.T) {
	example := func(name string) []string { return []string{"-f", filepath.Join(examplesDir, name)} }
	for _, c := range []struct {
		args []string
		want string
	}{
		{append(example("pool.yaml"), example("routing.yaml")...), "pool.enabled and routing.enabled exclude each other"},
		{append(example("auth-tokens.yaml"), example("auth-oidc.yaml")...), "auth.tokens.enabled and auth.oidc.enabled exclude each other"},
		{[]string{"--set", "acme.enabled=true"}, "acme.enabled needs acme.hostnames"},
		{[]string{"--set", "pool.enbled=true"}, "'enbled' not allowed"},
	} {
		_, err := helm(t, append(append([]string{"template"}, c.args...), chartDir)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("helm template %v: %v, want %q", c.args, err, c.want)
		}
	}
}

// objectOfKind is the first object of kind in objs.
func objectOfKind(t *testing.T, objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind {
			return o
		}
	}
	t.Fatalf("no %s rendered", kind)
	return nil
}

// checkChartConfig: the rendered ConfigMap, with the variables the
// Deployment takes from Secrets, is a valid configuration of the proxy (a
// stand-in for the mounted tokens file).
func checkChartConfig(t *testing.T, name string, objs []*unstructured.Unstructured) {
	t.Helper()
	var environ []string
	for _, o := range objs {
		switch o.GetKind() {
		case "ConfigMap":
			data, _, _ := unstructured.NestedStringMap(o.Object, "data")
			for k, v := range data {
				if k == "AUTH_TOKENS_FILE" {
					v = filepath.Join(t.TempDir(), "tokens")
					os.WriteFile(v, []byte("t\n"), 0o600)
				}
				environ = append(environ, k+"="+v)
			}
		case "Deployment":
			containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			for _, c := range containers {
				env, _, _ := unstructured.NestedSlice(c.(map[string]any), "env")
				for _, e := range env {
					environ = append(environ, e.(map[string]any)["name"].(string)+"=from-the-cluster")
				}
			}
		}
	}
	if _, err := config.Load(nil, environ, nil, "test"); err != nil {
		t.Errorf("%s: the chart's settings are not a valid configuration: %v", name, err)
	}
}

// checkReleasedChart: the chart a release packages lints, renders, and
// carries the release's version as its version and appVersion (the image
// tag it defaults to).
func checkReleasedChart(t *testing.T, tgz, version string) {
	t.Helper()
	if _, err := helm(t, "lint", "--strict", tgz); err != nil {
		t.Error(err)
	}
	meta, err := helm(t, "show", "chart", tgz)
	if err != nil {
		t.Fatal(err)
	}
	var chart struct{ Version, AppVersion string }
	if err := yaml.Unmarshal(meta, &chart); err != nil {
		t.Fatal(err)
	}
	if chart.Version != version || chart.AppVersion != version {
		t.Errorf("the released chart is version %q, appVersion %q; want %s", chart.Version, chart.AppVersion, version)
	}
	out, err := helm(t, "template", "cloudxr-wss-proxy", tgz)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`image: "cloudxr-wss-proxy:`+version+`"`)) {
		t.Errorf("the released chart does not run the release's image:\n%s", out)
	}
}
