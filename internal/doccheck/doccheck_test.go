package doccheck

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/config"
)

const root = "../.."

// notOurs are names the documents may mention that this repository does not
// define, each with the reason.
var notOurs = map[string]string{
	// Names of other programs, systems and libraries.
	"SSL_CERT_FILE":        "Go's crypto/x509 reads it: a private CA for the provider's HTTPS",
	"TCP_NODELAY":          "a socket option",
	"TCP_DEFER_ACCEPT":     "a Linux socket option",
	"TCP_INFO":             "a Linux socket option",
	"MSG_NOSIGNAL":         "a Linux send flag",
	"internal/poll":        "the Go standard library's package",
	"CGO_ENABLED":          "the Go toolchain's",
	"TCP_USER_TIMEOUT":     "a Linux socket option",
	"TCP_INQ":              "a Linux socket option",
	"CAP_NET_BIND_SERVICE": "a Linux capability",
	"SSL_CERT_DIR":         "Go's crypto/x509 reads it, as SSL_CERT_FILE",
	"HTTP_PROXY":           "Go's net/http reads it for outgoing requests",
	"HTTPS_PROXY":          "Go's net/http reads it for outgoing requests",
	"NO_PROXY":             "Go's net/http reads it for outgoing requests",
	"FOO_SERVICE_HOST":     "the form of Kubernetes' service-link variables, as an example",
	"NET_BIND_SERVICE":     "Docker's and Podman's name for CAP_NET_BIND_SERVICE (--cap-add)",
	// Read from the environment the settings come from (config.Load's
	// environ), not through os.Getenv, so the scan does not see them.
	"STATE_DIRECTORY": "systemd's, for the unit's StateDirectory=: the default CERT_DIR under it",
	"XDG_DATA_HOME":   "the XDG base directory: the default CERT_DIR by hand",
	// Misspellings shown as examples of what the start-up warning catches.
	"BACKEND_POLL": "a misspelt BACKEND_POOL, as an example",
	"BACKNED_HOST": "a misspelt BACKEND_HOST, as an example",
}

// TestDocumentsMatchCode: every setting, metric, file, Go file and test the
// documents name exists, and every relative link leads to a file and heading
// that exist. An entry of notOurs that no document needs any more is an error
// too, so the list stays short.
func TestDocumentsMatchCode(t *testing.T) {
	code := scanRepo(t)
	top, err := TopDirs(root)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := Documents(root)
	if err != nil {
		t.Fatal(err)
	}
	needed := map[string]bool{}
	for _, d := range docs {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(d)))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range Mentions(d, string(b), top) {
			why := code.Missing(m)
			if _, ok := notOurs[m.Name]; ok {
				needed[m.Name] = needed[m.Name] || why != ""
				continue
			}
			if why != "" {
				t.Errorf("%s %s", m, why)
			}
		}
	}
	for name := range notOurs {
		if !needed[name] {
			t.Errorf("notOurs lists %s, which no document mentions or which the code now has: remove it", name)
		}
	}
}

func scanRepo(t *testing.T) *Code {
	t.Helper()
	defaults, err := config.Defaults(nil)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, d := range defaults {
		keys = append(keys, d.Key)
	}
	code, err := Scan(root, keys)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// TestMentions: what the scanner takes from a line, and what it leaves.
func TestMentions(t *testing.T) {
	top := map[string]bool{"proxy": true, "deploy": true, "tunnel": true}
	text := "Set `HEALTH_CHECK_TIMEOUT` and `cloudxr_wss_proxy_sessions_open`; see proxy/server.go,\n" +
		"`tunnel/*_linux.go`, `deploy/kubernetes/` and gc.go, not /etc/cloudxr-wss-proxy/env, k8s.io/api or\n" +
		"https://example.com/proxy/x.go. `proxy/TestOrigins`, FuzzChunkedEnd, [a](docs/x.md#y), [b](https://x.example)."
	var got []string
	for _, m := range Mentions("README.md", text, top) {
		got = append(got, m.String())
	}
	want := []string{
		"README.md:1: setting HEALTH_CHECK_TIMEOUT",
		"README.md:1: metric cloudxr_wss_proxy_sessions_open",
		"README.md:1: file proxy/server.go",
		"README.md:2: file tunnel/*_linux.go",
		"README.md:2: file deploy/kubernetes/",
		"README.md:2: Go file gc.go",
		"README.md:3: test proxy/TestOrigins",
		"README.md:3: test FuzzChunkedEnd",
		"README.md:3: link docs/x.md#y",
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("mentions:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

// TestAnchors: headings become GitHub's anchors.
func TestAnchors(t *testing.T) {
	a := Anchors("# Certificates and ACME\n## Trust the certificate on your headset\n```\n# not a heading\n```\n## Logs\n## Logs\n## `make uninstall`, apt, Helm: what stays\n")
	for _, want := range []string{"certificates-and-acme", "trust-the-certificate-on-your-headset", "logs", "logs-1", "make-uninstall-apt-helm-what-stays"} {
		if !a[want] {
			t.Errorf("no anchor %q in %v", want, a)
		}
	}
	if a["not-a-heading"] {
		t.Error("a line in a code block became an anchor")
	}
}

// TestConfigurationReference: the settings table of docs/configuration.md
// has one row for each setting of the config struct, nothing else, and shows
// each default as the program does on this system (config.Defaults, which
// --help uses too).
func TestConfigurationReference(t *testing.T) {
	const doc = "docs/configuration.md"
	b, err := os.ReadFile(filepath.Join(root, doc))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := SettingsTable(string(b))
	if err != nil {
		t.Fatalf("%s: %v", doc, err)
	}
	// A default may come from the environment (a folder under the user's
	// home): the table shows it under ~/.
	const home = "/home/you"
	defaults, err := config.Defaults([]string{"HOME=" + home})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, d := range defaults {
		seen[d.Key] = true
		r, ok := rows[d.Key]
		if !ok {
			t.Errorf("%s: the setting %s (default %q) has no row in the settings table", doc, d.Key, d.Value)
			continue
		}
		if rest, ok := strings.CutPrefix(d.Value, home+"/"); ok {
			d.Value = "~/" + rest
		}
		if msg := r.DefaultDiffers(d.Value); msg != "" {
			t.Errorf("%s:%d: %s: %s", doc, r.Line, d.Key, msg)
		}
	}
	for k, r := range rows {
		if !seen[k] {
			t.Errorf("%s:%d: %s is in the settings table but is no setting of the config struct", doc, r.Line, k)
		}
	}
}

// TestSettingsTable: rows are read from between the markers, a name twice
// is an error, and defaults are compared as the program shows them.
func TestSettingsTable(t *testing.T) {
	doc := "x\n<!-- settings:begin -->\n| variable | default | meaning |\n|---|---|---|\n" +
		"| `A_B` | `5s` | a |\n| `C_D` | (empty) | c |\n<!-- settings:end -->\n| `E_F` | x | y |\n"
	rows, err := SettingsTable(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows["A_B"].Line != 5 || rows["C_D"].Default != "(empty)" {
		t.Fatalf("rows %+v", rows)
	}
	for _, c := range []struct {
		key, def string
		ok       bool
	}{{"A_B", "5s", true}, {"A_B", "10s", false}, {"A_B", "", false}, {"C_D", "", true}, {"C_D", "x", false}} {
		if got := rows[c.key].DefaultDiffers(c.def) == ""; got != c.ok {
			t.Errorf("%s with code default %q: accepted %v, want %v", c.key, c.def, got, c.ok)
		}
	}
	if _, err := SettingsTable(doc + "<!-- settings:begin -->\n| `A_B` | x | y |\n<!-- settings:end -->\n"); err == nil {
		t.Error("a setting in two rows was accepted")
	}
}
