// Command release makes what a release publishes (make dist): for every
// platform an archive of the binary with the README and the licence (.zip
// for Windows, .tar.gz elsewhere), a .deb and an .rpm for Linux on amd64
// and arm64 (nfpm's library, from deploy/packages/nfpm.yaml), the Helm
// chart (deploy/helm) as a .tgz of the same version, and SHA256SUMS over
// them all. The version is stamped in every binary.
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the packagers
	_ "github.com/goreleaser/nfpm/v2/rpm"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/version"
)

// targets are the platforms released, as GOOS/GOARCH.
var targets = []string{"linux/amd64", "linux/arm64", "windows/amd64", "windows/arm64", "darwin/amd64", "darwin/arm64"}

func main() {
	out := flag.String("out", "dist", "where the release goes (emptied first)")
	stamp := flag.String("version", "", "the version to stamp (default: from git, as internal/version says)")
	only := flag.String("only", "", "build only these GOOS/GOARCH targets (comma-separated)")
	flag.Parse()
	v := *stamp
	if v == "" {
		v = version.FromGit(".")
	}
	list := targets
	if *only != "" {
		list = strings.Split(*only, ",")
	}
	if err := release(*out, v, list); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

func release(out, version string, list []string) error {
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	var made []string
	for _, target := range list {
		goos, goarch, ok := strings.Cut(target, "/")
		if !ok {
			return fmt.Errorf("target %q: want GOOS/GOARCH", target)
		}
		build := filepath.Join(out, "build", goos+"_"+goarch)
		bin, err := compile(build, goos, goarch, version)
		if err != nil {
			return err
		}
		name := fmt.Sprintf("cloudxr-wss-proxy_%s_%s_%s", version, goos, goarch)
		archive, err := pack(out, name, goos, bin)
		if err != nil {
			return err
		}
		made = append(made, archive)
		if goos == "linux" {
			pkgs, err := linuxPackages(out, build, version, goarch)
			if err != nil {
				return err
			}
			made = append(made, pkgs...)
		}
	}
	if err := os.RemoveAll(filepath.Join(out, "build")); err != nil {
		return err
	}
	chart, err := helmChart(out, version)
	if err != nil {
		return err
	}
	return writeSums(out, append(made, chart))
}

// compile builds the static binary for one target into dir.
func compile(dir, goos, goarch, version string) (string, error) {
	bin := filepath.Join(dir, "cloudxr-wss-proxy")
	if goos == "windows" {
		bin += ".exe"
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version, "-o", bin, ".")
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building %s/%s: %w", goos, goarch, err)
	}
	return bin, nil
}

// linuxPackages makes the .deb and the .rpm for one architecture: the
// binary, the hardened unit (its template with /usr), the system user, the
// settings file (kept on upgrade), and the maintainer scripts.
func linuxPackages(out, build, version, goarch string) ([]string, error) {
	unit, err := os.ReadFile("deploy/systemd/cloudxr-wss-proxy.service.in")
	if err != nil {
		return nil, err
	}
	unit = bytes.ReplaceAll(unit, []byte("@PREFIX@"), []byte("/usr"))
	unit = bytes.ReplaceAll(unit, []byte("(installed by `make install`)"), []byte("(installed by its package)"))
	if err := os.WriteFile(filepath.Join(build, "cloudxr-wss-proxy.service"), unit, 0o644); err != nil {
		return nil, err
	}
	if err := writeChangelog(filepath.Join(build, "changelog.gz"), version); err != nil {
		return nil, err
	}
	vars := map[string]string{"VERSION": version, "ARCH": goarch, "BUILD": build}
	config, err := nfpm.ParseFileWithEnvMapping("deploy/packages/nfpm.yaml", func(k string) string { return vars[k] })
	if err != nil {
		return nil, err
	}
	var made []string
	for _, format := range []string{"deb", "rpm"} {
		info, err := config.Get(format)
		if err != nil {
			return nil, err
		}
		info = nfpm.WithDefaults(info)
		if err := nfpm.PrepareForPackager(info, format); err != nil {
			return nil, err
		}
		p, err := nfpm.Get(format)
		if err != nil {
			return nil, err
		}
		target := filepath.Join(out, p.ConventionalFileName(info))
		f, err := os.Create(target)
		if err != nil {
			return nil, err
		}
		info.Target = target
		err = p.Package(info, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("%s for %s: %w", format, goarch, err)
		}
		made = append(made, target)
	}
	return made, nil
}

// writeChangelog writes the Debian changelog a binary package carries.
func writeChangelog(path, version string) error {
	var text bytes.Buffer
	fmt.Fprintf(&text, "cloudxr-wss-proxy (%s) unstable; urgency=medium\n\n  * Release %s; see the README for what changed.\n\n -- cloudxr-wss-proxy maintainers <cloudxr-wss-proxy@users.noreply.github.com>  %s\n",
		version, version, time.Now().UTC().Format(time.RFC1123Z))
	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	w.Write(text.Bytes())
	if err := w.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, gz.Bytes(), 0o644)
}

// writeSums writes SHA256SUMS in sha256sum's format.
func writeSums(out string, files []string) error {
	sort.Strings(files)
	var b strings.Builder
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%x  %s\n", h.Sum(nil), filepath.Base(p))
	}
	return os.WriteFile(filepath.Join(out, "SHA256SUMS"), []byte(b.String()), 0o644)
}
