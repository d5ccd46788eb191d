//go:build e2e

package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"debug/elf"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Podman and the image under test: building it for both platforms,
// running a container and reading its log.

// podman runs podman with the runtime that works on this kind of machine
// (crun fails on its cgroups) and returns combined output.
func podman(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return podmanRun(args...)
}

func podmanRun(args ...string) (string, error) {
	cmd := exec.Command("podman", append([]string{"--runtime", "runc"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustPodman(t *testing.T, args ...string) string {
	t.Helper()
	out, err := podman(t, args...)
	if err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// image is the image build that the tests of one run share: the build
// takes minutes on a small machine, so the first test that needs the image
// builds it, and TestMain removes it after the last (dropImage).
var image struct {
	mu      sync.Mutex
	tried   bool
	built   bool
	builder string
}

// buildImage makes sure the image under test is built, once per run.
func buildImage(t *testing.T) {
	t.Helper()
	image.mu.Lock()
	defer image.mu.Unlock()
	if image.tried {
		if !image.built {
			t.Fatal("the image build failed in an earlier test of this run")
		}
		return
	}
	image.tried = true
	afterAll = append(afterAll, func() {
		dropImage()
		if image.builder != "" {
			podmanRun("rmi", "-f", image.builder)
		}
	})
	buildImageNow(t)
	image.built = true
}

// dropImage removes the image and its manifest list. Every image goes when
// the run ends, the builder too (~250 MB, assembled again each run);
// --layers=false keeps no intermediate images of the build stages either.
func dropImage() {
	ids, _ := manifestImageIDs()
	for _, id := range ids {
		podmanRun("rmi", "-f", id)
	}
	podmanRun("manifest", "rm", imageTag)
	podmanRun("rmi", "-f", imageTag)
}

// buildImageNow builds the Dockerfile as CI can: the builder image from
// the local toolchain, modules through a file:// proxy over the module
// cache.
func buildImageNow(t *testing.T) {
	t.Helper()
	need(t, "podman", "runc", "busybox", "qemu-aarch64-static")
	out, err := exec.Command("scripts/podman-builder.sh").Output()
	if err != nil {
		t.Fatalf("assembling the builder image: %v", err)
	}
	image.builder = strings.TrimSpace(string(out))
	// A list left by an earlier run would gain two more entries from
	// --manifest: it goes first.
	dropImage()
	// The image's `go build` reads modules through a file:// proxy over this
	// machine's module cache: building the same binary here first puts
	// every file it will ask for there, whatever the cache held before.
	build := exec.Command("go", "build", "-o", os.DevNull, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build (filling the module cache for the image build): %v\n%s", err, out)
	}
	modcache, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	download := filepath.Join(strings.TrimSpace(string(modcache)), "cache", "download")
	// The README's multi-platform build: one manifest list, an image per
	// platform, the build stage cross-compiling on this machine's own
	// platform. Podman 4.3 (Debian 12) does not expand BUILDPLATFORM in a
	// FROM line by itself, so the README's command passes it, as here.
	mustPodman(t, "build", "--format", "docker", "--isolation", "chroot", "--layers=false",
		"--platform", strings.Join(imagePlatforms, ","),
		"--build-arg", "BUILDPLATFORM=linux/"+runtime.GOARCH,
		"--build-arg", "BUILDER_IMAGE="+image.builder,
		"--build-arg", "GOPROXY=file:///modproxy",
		"--build-arg", "VERSION=v0.0.0-test",
		"-v", download+":/modproxy:ro",
		"--manifest", imageTag, ".")
}

// imagePlatforms are the platforms the image is built for.
var imagePlatforms = []string{"linux/amd64", "linux/arm64"}

// manifestImages returns the IDs of the images in the manifest list
// imageTag, by platform ("linux/arm64"); none when there is no list.
func manifestImages(t *testing.T) map[string]string {
	t.Helper()
	ids, err := manifestImageIDs()
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func manifestImageIDs() (map[string]string, error) {
	out, err := podmanRun("manifest", "inspect", imageTag)
	if err != nil {
		return nil, nil
	}
	var list struct {
		Manifests []struct {
			Digest   string
			Platform struct{ OS, Architecture string }
		}
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("manifest inspect %s: %w\n%s", imageTag, err, out)
	}
	ids := map[string]string{}
	for _, m := range list.Manifests {
		id, err := podmanRun("image", "inspect", "--format", "{{.Id}}", imageTag+"@"+m.Digest)
		if err != nil {
			return nil, fmt.Errorf("image inspect %s@%s: %w\n%s", imageTag, m.Digest, err, id)
		}
		ids[m.Platform.OS+"/"+m.Platform.Architecture] = strings.TrimSpace(id)
	}
	return ids, nil
}

// checkPlatforms checks that the manifest list holds one image per
// platform, each declaring its platform and holding a binary built for it,
// and runs the arm64 one under qemu-user (the image a DGX Spark or Jetson
// Thor pulls).
func checkPlatforms(t *testing.T) {
	ids := manifestImages(t)
	if len(ids) != len(imagePlatforms) {
		t.Fatalf("the manifest list holds %v, want one image for each of %v", ids, imagePlatforms)
	}
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for _, platform := range imagePlatforms {
		id, ok := ids[platform]
		if !ok {
			t.Errorf("no image for %s in the manifest list: %v", platform, ids)
			continue
		}
		declared := strings.TrimSpace(mustPodman(t, "image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", id))
		if declared != platform {
			t.Errorf("the %s image declares %s", platform, declared)
		}
		mnt := strings.TrimSpace(mustPodman(t, "image", "mount", id))
		bin := filepath.Join(mnt, "cloudxr-wss-proxy")
		f, err := elf.Open(bin)
		if err != nil {
			t.Errorf("the %s image's binary: %v", platform, err)
		} else {
			if want := machine[strings.TrimPrefix(platform, "linux/")]; f.Machine != want {
				t.Errorf("the %s image's binary is for %v, want %v", platform, f.Machine, want)
			}
			f.Close()
		}
		if platform == "linux/arm64" {
			out, err := exec.Command("qemu-aarch64-static", bin, "--version").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "v0.0.0-test") {
				t.Errorf("the arm64 image's binary under qemu: %v\n%s", err, out)
			}
		}
		mustPodman(t, "image", "umount", id)
	}
}

// container is one `podman run -d` of the image.
type container struct {
	t    *testing.T
	name string
}

func runContainer(t *testing.T, name string, args ...string) *container {
	t.Helper()
	podman(t, "rm", "-f", "-v", name)
	run := append([]string{"run", "-d", "--name", name,
		"--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096", "--network", "host"}, args...)
	mustPodman(t, append(run, imageTag)...)
	c := &container{t: t, name: name}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := podman(t, "logs", name)
			t.Logf("podman logs %s:\n%s", name, out)
		}
		podman(t, "rm", "-f", "-v", name) // -v: and the anonymous volume a run without -v for CERT_DIR creates
	})
	return c
}

// logs returns the container's JSON log lines.
func (c *container) logs() []map[string]any {
	out, _ := exec.Command("podman", "logs", c.name).CombinedOutput()
	var lines []map[string]any
	for _, l := range strings.Split(string(out), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			lines = append(lines, m)
		}
	}
	return lines
}

// waitLog polls `podman logs` for a line with message msg.
func (c *container) waitLog(msg string) map[string]any {
	c.t.Helper()
	var found map[string]any
	waitFor(c.t, 20*time.Second, "log line "+msg, func() bool {
		for _, l := range c.logs() {
			if l["msg"] == msg {
				found = l
				return true
			}
		}
		return false
	})
	return found
}

func (c *container) logged(msg string) bool {
	for _, l := range c.logs() {
		if l["msg"] == msg {
			return true
		}
	}
	return false
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// servedLeaf dials addr trusting pool and returns the served certificate.
func servedLeaf(t *testing.T, addr string, cfg *tls.Config) *x509.Certificate {
	t.Helper()
	var leaf *x509.Certificate
	waitFor(t, 20*time.Second, "a TLS handshake with "+addr, func() bool {
		conn, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			return false
		}
		leaf = conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		return true
	})
	return leaf
}
