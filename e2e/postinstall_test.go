//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The packages' postinstall on a machine where systemd runs, as far as a
// test machine without a running systemd allows: in a mount namespace of
// its own, /run looks like systemd's and systemctl is a stand-in that
// records what it is asked. A running service that can upgrade in place
// (its PID file exists) is reloaded, one started by an older package is
// restarted, a stopped one is left stopped; the settings file gets the
// service's group.
func TestPostinstallReloadsARunningService(t *testing.T) {
	script, err := filepath.Abs("deploy/packages/postinstall.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		active  bool
		pidFile bool
		want    string
	}{
		{"running, can upgrade in place", true, true, "daemon-reload\nis-active --quiet cloudxr-wss-proxy\nreload cloudxr-wss-proxy\n"},
		{"running, from an older package", true, false, "daemon-reload\nis-active --quiet cloudxr-wss-proxy\nrestart cloudxr-wss-proxy\n"},
		{"stopped", false, false, "daemon-reload\nis-active --quiet cloudxr-wss-proxy\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			bin := filepath.Join(dir, "bin")
			calls := filepath.Join(dir, "calls")
			os.Mkdir(bin, 0o755)
			active := "exit 1"
			if tc.active {
				active = "exit 0"
			}
			os.WriteFile(filepath.Join(bin, "systemctl"), []byte("#!/bin/sh\necho \"$*\" >> "+calls+"\n[ \"$1\" = is-active ] && { "+active+"; }\nexit 0\n"), 0o755)
			os.WriteFile(filepath.Join(bin, "systemd-sysusers"), []byte("#!/bin/sh\nexit 0\n"), 0o755)
			// /run as systemd leaves it, and the settings file as the
			// package unpacks it (root's, 0600), in this namespace only.
			// The group systemd-sysusers would have made, in a copy of
			// /etc/group seen in this namespace only.
			groups := filepath.Join(dir, "group")
			etc, _ := os.ReadFile("/etc/group")
			os.WriteFile(groups, append(etc, "cloudxr-wss-proxy:x:64999:\n"...), 0o644)
			setup := "mount --bind " + groups + " /etc/group && mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/system && " +
				"mkdir -p /etc/cloudxr-wss-proxy && mount -t tmpfs tmpfs /etc/cloudxr-wss-proxy && " +
				"install -m 0600 /dev/null /etc/cloudxr-wss-proxy/env && "
			if tc.pidFile {
				setup += "mkdir -p /run/cloudxr-wss-proxy && echo 42 > /run/cloudxr-wss-proxy/pid && "
			}
			check := " && stat -c '%a %g' /etc/cloudxr-wss-proxy/env"
			cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", setup+"sh "+script+check)
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("postinstall: %v\n%s", err, out)
			}
			got, _ := os.ReadFile(calls)
			if string(got) != tc.want {
				t.Errorf("systemctl was asked:\n%s\nwant:\n%s", got, tc.want)
			}
			mode := strings.Fields(strings.TrimSpace(string(out)))
			if len(mode) != 2 {
				t.Fatalf("stat: %q", out)
			}
			if mode[0] != "640" || mode[1] != "64999" {
				t.Errorf("settings file mode %s group %s, want 640 and the service's group 64999", mode[0], mode[1])
			}
		})
	}
}
