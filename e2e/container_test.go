//go:build e2e

package e2e

// The container image, built from the Dockerfile and run with rootful Podman
// the way the HAProxy image's users run theirs (--network host, the same
// variables, the certificate volume). No registry is reachable here, so the
// builder stage is an image assembled from this machine's Go toolchain
// (scripts/podman-builder.sh) and modules come from the local module cache.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/certs"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

const certMount = "/usr/local/etc/haproxy/certs"

// imageTag names this run's image: runs of the suite from two checkouts on
// one machine share Podman's storage, and one --manifest list under one
// name would collect both runs' images.
var imageTag = fmt.Sprintf("localhost/cloudxr-wss-proxy:test-%d", os.Getpid())

func TestContainerImage(t *testing.T) {
	// Nothing is left behind: no volume the test did not name and remove
	// (issue 20: the image's VOLUME made an anonymous one per container
	// removed without -v).
	volumesBefore := mustPodman(t, "volume", "ls", "-q")
	t.Cleanup(func() {
		if after := mustPodman(t, "volume", "ls", "-q"); after != volumesBefore {
			t.Errorf("podman volumes before the test:\n%s\nafter:\n%s", volumesBefore, after)
		}
	})
	buildImage(t)
	checkPlatforms(t)
	checkImageConfig(t)
	checkTrustStore(t)

	b := backend(t)
	port := freePort(t)
	volume := fmt.Sprintf("cxp-test-certs-%d", os.Getpid())
	podman(t, "volume", "rm", "-f", volume)
	t.Cleanup(func() { podman(t, "volume", "rm", "-f", volume) })
	// The HAProxy image's README command, with free ports for the test.
	r := containerRun{
		env: []string{"-e", "BACKEND_HOST=localhost", "-e", fmt.Sprintf("BACKEND_PORT=%d", b.Port()),
			"-e", fmt.Sprintf("PROXY_PORT=%d", port), "-e", fmt.Sprintf("ADMIN_ADDRESS=127.0.0.1:%d", freePort(t)),
			// The test polls from 127.0.0.1 faster than a headset would connect.
			"-e", "CLIENT_HANDSHAKE_RATE=0"},
		volume: volume,
		addr:   fmt.Sprintf("127.0.0.1:%d", port),
	}
	t.Run("echo with the generated certificate", r.generatedCertificate)
	if t.Failed() {
		return
	}
	t.Run("named volume survives re-creation", r.volumeSurvives)
	t.Run("read-only server.pem", r.readOnlyPEM)
	t.Run("SIGHUP upgrades the settings in place", r.upgradeInPlace)
}

// upgradeInPlace: `podman kill -s HUP` starts a new process that reads the
// mounted settings file afresh and takes the listener over; the open
// session stays in the old one until it ends, and the container keeps
// running after the old process has exited (the program is its own init).
func (r *containerRun) upgradeInPlace(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	settings := filepath.Join(dir, "env")
	os.WriteFile(settings, []byte("HEAD_TIMEOUT=10s\n"), 0o644)
	c := runContainer(t, "cxp-test-upgrade", append(r.env, "-v", r.volume+":"+certMount,
		"-v", dir+":/etc/cloudxr-wss-proxy:ro", "-e", "ENV_FILE=/etc/cloudxr-wss-proxy/env")...)
	c.waitLog("listening")
	mount := strings.TrimSpace(mustPodman(t, "volume", "inspect", r.volume, "--format", "{{.Mountpoint}}"))
	trust := trustPEM(t, filepath.Join(mount, "ca.crt"))
	var held *wstest.Client
	waitFor(t, 20*time.Second, "a session", func() bool {
		var err error
		held, err = wstest.Dial(r.addr, "/held", trust)
		return err == nil
	})
	os.WriteFile(settings, []byte("HEAD_TIMEOUT=7s\n"), 0o644)
	mustPodman(t, "kill", "-s", "HUP", c.name)
	c.waitLog("took over from the previous process: it finishes its open sessions")
	var started map[string]any
	waitFor(t, 20*time.Second, "the new process's start line", func() bool {
		for _, l := range c.logs() {
			if l["msg"] == "starting" && l["HEAD_TIMEOUT"] == "7s" {
				started = l
			}
		}
		return started != nil
	})
	if err := held.Echo("held through the upgrade", 5*time.Second); err != nil {
		t.Fatalf("the open session: %v", err)
	}
	held.Close()
	c.waitLog("the previous process has exited")
	if running := strings.TrimSpace(mustPodman(t, "inspect", c.name, "--format", "{{.State.Running}}")); running != "true" {
		t.Fatalf("the container stopped with the old process (running %s)", running)
	}
	ws, err := wstest.Dial(r.addr, "/after", trust)
	if err != nil {
		t.Fatalf("a session after the upgrade: %v", err)
	}
	ws.Echo("after", 5*time.Second)
	ws.Close()
	checkHealthAndStop(t, c)
}

// containerRun is what the container test's steps share.
type containerRun struct {
	env     []string
	volume  string
	addr    string
	firstFP string // the certificate generated into the volume
}

// checkTrustStore checks that the image carries the system's CA bundle,
// which reaching an identity provider over HTTPS needs.
func checkTrustStore(t *testing.T) {
	name := fmt.Sprintf("cxp-test-ca-%d", os.Getpid())
	mustPodman(t, "create", "--name", name, imageTag)
	defer podman(t, "rm", "-f", "-v", name) // -v: the image's VOLUME made an anonymous volume
	out := filepath.Join(t.TempDir(), "ca-certificates.crt")
	mustPodman(t, "cp", name+":/etc/ssl/certs/ca-certificates.crt", out)
	pem, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) || strings.Count(string(pem), "BEGIN CERTIFICATE") < 50 {
		t.Errorf("the image's trust store holds %d certificates", strings.Count(string(pem), "BEGIN CERTIFICATE"))
	}
}

// checkImageConfig checks the image's user, port, volume, environment,
// labels and HEALTHCHECK.
func checkImageConfig(t *testing.T) {
	var img []struct {
		Config struct {
			User         string
			Env          []string
			ExposedPorts map[string]any
			Volumes      map[string]any
			Labels       map[string]string
			Entrypoint   []string
		}
		Healthcheck struct{ Test []string } // podman lists it beside Config
	}
	if err := json.Unmarshal([]byte(mustPodman(t, "image", "inspect", imageTag)), &img); err != nil || len(img) != 1 {
		t.Fatalf("image inspect: %v", err)
	}
	cfg := img[0].Config
	if cfg.User != "65532:65532" {
		t.Errorf("image runs as %q, want the non-root 65532:65532", cfg.User)
	}
	if _, ok := cfg.ExposedPorts["48322/tcp"]; !ok {
		t.Errorf("48322/tcp not exposed: %v", cfg.ExposedPorts)
	}
	if _, ok := cfg.Volumes[certMount]; !ok {
		t.Errorf("%s not a volume: %v", certMount, cfg.Volumes)
	}
	if !strings.Contains(strings.Join(cfg.Env, " "), "CERT_DIR="+certMount) {
		t.Errorf("CERT_DIR not set in the image: %v", cfg.Env)
	}
	if cfg.Labels["org.opencontainers.image.version"] != "v0.0.0-test" || cfg.Labels["org.opencontainers.image.source"] == "" {
		t.Errorf("OCI labels: %v", cfg.Labels)
	}
	if strings.Join(img[0].Healthcheck.Test, " ") != "CMD /cloudxr-wss-proxy healthcheck" {
		t.Errorf("HEALTHCHECK: %v", img[0].Healthcheck.Test)
	}
}

func (r *containerRun) generatedCertificate(t *testing.T) {
	env, volume, addr := r.env, r.volume, r.addr
	c := runContainer(t, "cxp-test-gen", append(env, "-v", volume+":"+certMount)...)
	gen := c.waitLog("generated a certificate")
	c.waitLog("listening")
	mount := strings.TrimSpace(mustPodman(t, "volume", "inspect", volume, "--format", "{{.Mountpoint}}"))
	trust := trustPEM(t, filepath.Join(mount, "ca.crt"))
	firstFP := certs.Fingerprint(servedLeaf(t, addr, trust))
	if firstFP != gen["sha256"] {
		t.Fatalf("served %s, log says %v", firstFP, gen["sha256"])
	}
	var ws *wstest.Client
	waitFor(t, 20*time.Second, "the backend marked up", func() bool {
		var err error
		ws, err = wstest.Dial(addr, "/sign_in?peer_id=1", trust)
		return err == nil
	})
	if err := ws.Echo("through the container", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	ws.Close()
	// `podman logs` shows the session in the JSON access log.
	end := c.waitLog("session ended")
	if end["path"] != "/sign_in?peer_id=1" || end["status"] != float64(101) {
		t.Errorf("session log line: %v", end)
	}
	r.firstFP = firstFP
	checkHealthAndStop(t, c)
}

// checkHealthAndStop runs the image's HEALTHCHECK, then podman stop.
func checkHealthAndStop(t *testing.T, c *container) {
	// The image's HEALTHCHECK, as the engine runs it.
	if out, err := podman(t, "healthcheck", "run", c.name); err != nil {
		t.Errorf("HEALTHCHECK failed: %v %s", err, out)
	}
	var state []struct {
		State struct{ Health struct{ Status string } }
	}
	json.Unmarshal([]byte(mustPodman(t, "inspect", c.name)), &state)
	if len(state) != 1 || state[0].State.Health.Status != "healthy" {
		t.Errorf("health status after the check: %+v", state)
	}

	// podman stop sends SIGTERM: a graceful exit 0 well within its 10 s.
	start := time.Now()
	mustPodman(t, "stop", "-t", "10", c.name)
	if took := time.Since(start); took > 9*time.Second {
		t.Errorf("podman stop took %v: SIGTERM not handled", took)
	}
	if code := strings.TrimSpace(mustPodman(t, "inspect", c.name, "--format", "{{.State.ExitCode}}")); code != "0" {
		t.Errorf("exit code %s after podman stop", code)
	}
	if !c.logged("stopped") {
		t.Error("no \"stopped\" line after podman stop")
	}
}

func (r *containerRun) volumeSurvives(t *testing.T) {
	env, volume, addr, firstFP := r.env, r.volume, r.addr, r.firstFP
	c := runContainer(t, "cxp-test-gen", append(env, "-v", volume+":"+certMount)...)
	reused := c.waitLog("reusing the certificate generated earlier")
	if reused["sha256"] != firstFP {
		t.Errorf("re-created container serves %v, first one generated %s", reused["sha256"], firstFP)
	}
	mount := strings.TrimSpace(mustPodman(t, "volume", "inspect", volume, "--format", "{{.Mountpoint}}"))
	if got := certs.Fingerprint(servedLeaf(t, addr, trustPEM(t, filepath.Join(mount, "ca.crt")))); got != firstFP {
		t.Errorf("served %s after re-creation, want %s", got, firstFP)
	}
	if c.logged("generated a certificate") || c.logged("created a local CA; trust it once on each headset (see https://<host>:<port>/)") {
		t.Error("a new certificate or CA was generated although the volume kept the old one")
	}
}

func (r *containerRun) readOnlyPEM(t *testing.T) {
	env, addr := r.env, r.addr
	pemPath, der := writeUserPEM(t)
	before, _ := os.ReadFile(pemPath)
	c := runContainer(t, "cxp-test-user", append(env, "-v", pemPath+":"+certMount+"/server.pem:ro")...)
	c.waitLog("loaded your certificate; it is only read, never changed")
	leafCert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leafCert)
	if got := servedLeaf(t, addr, &tls.Config{RootCAs: pool, ServerName: "localhost"}); !bytes.Equal(got.Raw, der) {
		t.Error("the mounted server.pem is not what is served")
	}
	// And the portal says so to a browser (no CA download for a user certificate).
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	resp, err := hc.Get("https://" + addr + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if cert, _ := st["certificate"].(map[string]any); cert == nil || cert["source"] == "generated" {
		t.Errorf("status.json certificate: %v", st["certificate"])
	}
	mustPodman(t, "stop", "-t", "10", c.name)
	if after, _ := os.ReadFile(pemPath); !bytes.Equal(after, before) {
		t.Error("the mounted server.pem changed")
	}
}

// writeUserPEM writes a self-signed ECDSA server.pem for localhost, readable
// by the image's user, and returns its path and the certificate.
func writeUserPEM(t *testing.T) (string, []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "lab certificate"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	data := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	path := filepath.Join(dir, "server.pem")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, der
}
