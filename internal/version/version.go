// Package version names a build after its git commit, so that every
// package manager the release feeds orders builds as their commits are
// ordered: dpkg and rpm (where ~ sorts before anything, even the end) and
// Helm's SemVer 2 (where ~ becomes -, a pre-release).
//
//	v1.2.3 tagged on the commit, tree clean   1.2.3
//	v1.2.3-rc.1 likewise                      1.2.3~rc.1
//	commits after v1.2.3                      1.2.4~git<date>.<count>.g<hash>
//	commits after v1.2.3-rc.1                 1.2.3~rc.1.git<date>.<count>.g<hash>
//	no v<major>.<minor>.<patch> tag           0.0.0~git<date>.<count>.g<hash>
//
// <date> is the commit's UTC time, YYYYMMDDHHMMSS (fixed width, so it
// orders as text and as a number), <count> the commits since the tag (or
// in all), and a tree with changes ends in .dirty. Like Go's pseudo-
// versions, a build after a release is a pre-release of the next patch.
package version

import (
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// tagPattern is a release tag: v<major>.<minor>.<patch>, maybe -<pre-release>.
var tagPattern = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:-([0-9A-Za-z.-]+))?$`)

// Commit is what a version is made of.
type Commit struct {
	Tag   string    // the nearest release tag, "" when none
	Count int       // commits since Tag (since the root when none)
	Time  time.Time // the commit's time
	Hash  string    // its abbreviated hash
	Dirty bool      // the work tree differs from it
}

// String is the version of c.
func (c Commit) String() string {
	m := tagPattern.FindStringSubmatch(c.Tag)
	pre := ""
	if m != nil {
		// A hyphen would split a Debian version into upstream and revision.
		pre = strings.ReplaceAll(m[4], "-", ".")
	}
	if m != nil && c.Count == 0 && !c.Dirty {
		if pre != "" {
			return fmt.Sprintf("%s.%s.%s~%s", m[1], m[2], m[3], pre)
		}
		return fmt.Sprintf("%s.%s.%s", m[1], m[2], m[3])
	}
	snapshot := fmt.Sprintf("git%s.%d.g%s", c.Time.UTC().Format("20060102150405"), c.Count, c.Hash)
	if c.Dirty {
		snapshot += ".dirty"
	}
	switch {
	case m == nil:
		return "0.0.0~" + snapshot
	case pre != "":
		return fmt.Sprintf("%s.%s.%s~%s.%s", m[1], m[2], m[3], pre, snapshot)
	}
	patch, _ := strconv.Atoi(m[3])
	return fmt.Sprintf("%s.%s.%d~%s", m[1], m[2], patch+1, snapshot)
}

// Describe reads the commit checked out in dir (HEAD) from git.
func Describe(dir string) (Commit, error) {
	var c Commit
	out, err := git(dir, "log", "-1", "--format=%ct %h")
	if err != nil {
		return c, err
	}
	secs, hash, _ := strings.Cut(out, " ")
	unix, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || hash == "" {
		return c, fmt.Errorf("git log: unexpected %q", out)
	}
	c.Time, c.Hash = time.Unix(unix, 0).UTC(), hash
	since := "HEAD"
	if tag, err := git(dir, "describe", "--tags", "--abbrev=0", "--match", "v[0-9]*"); err == nil && tagPattern.MatchString(tag) {
		c.Tag, since = tag, tag+"..HEAD"
	}
	n, err := git(dir, "rev-list", "--count", since)
	if err != nil {
		return c, err
	}
	if c.Count, err = strconv.Atoi(n); err != nil {
		return c, fmt.Errorf("git rev-list --count: unexpected %q", n)
	}
	status, err := git(dir, "status", "--porcelain", "--untracked-files=no")
	if err != nil {
		return c, err
	}
	c.Dirty = status != ""
	return c, nil
}

// FromGit is the version of the commit in dir, or 0.0.0~dev when git
// cannot say (no git, not a repository).
func FromGit(dir string) string {
	c, err := Describe(dir)
	if err != nil {
		return "0.0.0~dev"
	}
	return c.String()
}

func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return strings.TrimSpace(string(out)), nil
}
