//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Successive commits of a real repository get versions that dpkg and rpm
// order as the commits: a hash that starts with a digit, then one that
// starts with a letter (git describe's bare hash 9d28f89 once sorted above
// the next commit's 0.0.0~gitabc...), then a tag and a commit after it.
// The command is the one make build and make dist ask.
func TestVersionsFollowCommits(t *testing.T) {
	need(t, "git", "dpkg", "rpm")
	describe := filepath.Join(t.TempDir(), "describe")
	if out, err := exec.Command("go", "build", "-o", describe, "github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/version/describe").CombinedOutput(); err != nil {
		t.Fatalf("building describe: %v\n%s", err, out)
	}
	repo := t.TempDir()
	git := func(date string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	// commit makes a commit whose hash starts with a digit or a letter,
	// changing its message until it does.
	commit := func(date string, digit bool) {
		for i := range 100 {
			msg := fmt.Sprintf("commit at %s, try %d", date, i)
			if i == 0 {
				git(date, "commit", "-q", "--allow-empty", "-m", msg)
			} else {
				git(date, "commit", "-q", "--amend", "--allow-empty", "-m", msg)
			}
			h := git(date, "rev-parse", "--short", "HEAD")
			if (h[0] <= '9') == digit {
				return
			}
		}
		t.Fatal("no hash of the wanted kind in 100 tries")
	}
	version := func() string {
		t.Helper()
		cmd := exec.Command(describe)
		cmd.Dir = repo
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	git("", "init", "-q")
	var versions []string
	for i, step := range []func(){
		func() { commit("2026-12-07T21:00:00Z", true) },
		func() { commit("2026-12-07T21:00:00Z", false) }, // the same second
		func() { commit("2026-12-07T21:05:00Z", true) },
		func() { git("2026-12-07T21:05:00Z", "tag", "v0.1.0") },
		func() { commit("2026-12-07T21:10:00Z", false) },
		func() { commit("2026-12-07T21:11:00Z", true) },
		func() { git("2026-12-07T21:11:00Z", "tag", "v0.1.1") },
	} {
		step()
		versions = append(versions, version())
		t.Logf("step %d: %s", i, versions[i])
	}
	for i := 1; i < len(versions); i++ {
		a, b := versions[i-1], versions[i]
		if err := exec.Command("dpkg", "--compare-versions", a, "lt", b).Run(); err != nil {
			t.Errorf("dpkg: %s is not before %s", a, b)
		}
		out, err := exec.Command("rpm", "--eval", fmt.Sprintf(`%%{lua:print(rpm.vercmp(%q, %q))}`, a, b)).Output()
		if err != nil || strings.TrimSpace(string(out)) != "-1" {
			t.Errorf("rpm: %s is not before %s (%q, %v)", a, b, out, err)
		}
	}
}
