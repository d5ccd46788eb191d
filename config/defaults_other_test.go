//go:build !windows

package config

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// CERT_DIR for a binary run by hand is in the user's own data folder, as
// Caddy chooses its data directory; with no home known (a container that
// does not set CERT_DIR) the HAProxy container's path stays.
func TestUserCertDir(t *testing.T) {
	for _, tc := range []struct{ goos, xdg, home, want string }{
		{"linux", "", "/home/ann", "/home/ann/.local/share/cloudxr-wss-proxy/certs"},
		{"linux", "/data/ann", "/home/ann", "/data/ann/cloudxr-wss-proxy/certs"},
		{"linux", "relative/xdg", "/home/ann", "/home/ann/.local/share/cloudxr-wss-proxy/certs"},
		{"linux", "", "/root", "/root/.local/share/cloudxr-wss-proxy/certs"},
		{"freebsd", "", "/home/ann", "/home/ann/.local/share/cloudxr-wss-proxy/certs"},
		{"darwin", "", "/Users/ann", "/Users/ann/Library/Application Support/cloudxr-wss-proxy/certs"},
		{"darwin", "/x", "/Users/ann", "/x/cloudxr-wss-proxy/certs"},
		{"linux", "", "", ""},
		{"linux", "", "relative", ""},
	} {
		if got := userCertDir(tc.goos, tc.xdg, tc.home); got != tc.want {
			t.Errorf("userCertDir(%q, %q, %q) = %q, want %q", tc.goos, tc.xdg, tc.home, got, tc.want)
		}
	}
}

// Load takes the default from the environment it is given; CERT_DIR set
// (the image's ENV, the systemd unit's Environment=) wins; --help shows the
// default that applies.
func TestCertDirDefaultFromEnvironment(t *testing.T) {
	c, err := Load(nil, []string{"HOME=/home/ann", "XDG_DATA_HOME="}, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	if want := userCertDir(runtime.GOOS, "", "/home/ann"); c.CertDir != want {
		t.Errorf("CERT_DIR %q, want %q", c.CertDir, want)
	}
	c, err = Load(nil, []string{"HOME=/home/ann", "CERT_DIR=/var/lib/cloudxr-wss-proxy/certs"}, nil, "test")
	if err != nil || c.CertDir != "/var/lib/cloudxr-wss-proxy/certs" {
		t.Errorf("CERT_DIR set: %v %+v", err, c)
	}
	var out bytes.Buffer
	if _, err := Load([]string{"--help"}, []string{"HOME=/home/ann"}, &out, "test"); !errors.Is(err, ErrHelp) {
		t.Fatal(err)
	}
	if want := "(CERT_DIR, default " + userCertDir(runtime.GOOS, "", "/home/ann") + ")"; !strings.Contains(out.String(), want) {
		t.Errorf("--help does not say %q:\n%s", want, out.String())
	}
}
