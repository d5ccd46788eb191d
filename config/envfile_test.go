package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The settings file gives what the environment and the flags do not; the
// environment wins over it, and a flag over both.
func TestEnvFilePrecedence(t *testing.T) {
	p := writeFile(t, "# a comment\nBACKEND_HOST=from-file\nBACKEND_PORT=\"49200\"\nPROXY_PORT=1111\n\nLOG_LEVEL=debug\n")
	for _, how := range []struct {
		name       string
		args, envs []string
	}{
		{"flag", []string{"--env-file", p}, nil},
		{"variable", nil, []string{"ENV_FILE=" + p}},
	} {
		t.Run(how.name, func(t *testing.T) {
			c, err := Load(append(how.args, "--proxy-port=3333"), append(how.envs, "PROXY_PORT=2222", "LOG_LEVEL=warn"), nil, "test")
			if err != nil {
				t.Fatal(err)
			}
			if c.BackendHost != "from-file" || c.BackendPort != 49200 || c.ProxyPort != 3333 || c.LogLevel != "warn" {
				t.Errorf("got host %q port %d proxy %d level %q", c.BackendHost, c.BackendPort, c.ProxyPort, c.LogLevel)
			}
		})
	}
}

// A file that cannot be read, a name that is not a setting and a bad value
// each stop the start with a line naming the file or the setting.
func TestEnvFileErrors(t *testing.T) {
	for _, c := range []struct{ name, text, want string }{
		{"a typo", "BACKEND_HSOT=gpu\n", `"BACKEND_HSOT" is not a setting`},
		{"itself", "ENV_FILE=/etc/other\n", `"ENV_FILE" is not a setting`},
		{"a bad value", "BACKEND_PORT=http\n", `BACKEND_PORT="http"`},
	} {
		_, err := Load([]string{"--env-file", writeFile(t, c.text)}, nil, nil, "test")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	_, err := Load(nil, []string{"ENV_FILE=/nonexistent/env"}, nil, "test")
	if err == nil || !strings.Contains(err.Error(), "ENV_FILE") || !strings.Contains(err.Error(), "/nonexistent/env") {
		t.Errorf("missing file: %v", err)
	}
}

// The shipped examples read the same way here as systemd reads them: with
// every commented setting taken in, each value is exactly what follows its
// '=' (systemd has no comments after a value). The Windows service's
// example, written by `service install`, names the same settings, and
// Windows words only.
func TestEnvExampleAsSystemdReadsIt(t *testing.T) {
	linux := envExampleSettings(t, "../deploy/systemd/env.example")
	windows := envExampleSettings(t, "../deploy/windows/env.example")
	if len(linux) != len(windows) {
		t.Errorf("the Windows example names %d settings, the systemd one %d", len(windows), len(linux))
	}
	for k := range linux {
		if _, ok := windows[k]; !ok {
			t.Errorf("the Windows example lacks %s", k)
		}
	}
	b, _ := os.ReadFile("../deploy/windows/env.example")
	for _, word := range []string{"/etc/", "systemctl", "systemd", "chmod", "reload"} {
		if strings.Contains(string(b), word) {
			t.Errorf("the Windows example speaks of %q", word)
		}
	}
}

// envExampleSettings reads the example at path with every commented
// setting taken in, checks each value is what follows its '=', and
// returns them.
func envExampleSettings(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fields, _ := describe()
	known := map[string]bool{}
	for _, f := range fields {
		known[f.key] = true
	}
	var lines []string
	want := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimPrefix(l, "# ")
		if k, v, ok := strings.Cut(l, "="); ok && known[k] {
			lines = append(lines, l)
			want[k] = v
		}
	}
	got, err := readEnvFile(writeFile(t, strings.Join(lines, "\n")), fields)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(want) < 10 {
		t.Fatalf("%s: read %d settings, want %d", path, len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s: read %q, the file says %q", path, k, got[k], v)
		}
	}
	return want
}
