//go:build e2e

package e2e

// A real Kubernetes control plane on loopback: etcd and kube-apiserver,
// built from the Go module proxy by scripts/k8s-control-plane.sh into a
// cache reused across runs. No scheduler or kubelet: the tests use the API
// objects (Leases, EndpointSlices, RBAC) directly.

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// controlPlane is a running etcd and kube-apiserver.
type controlPlane struct {
	url        string // https://127.0.0.1:PORT
	adminToken string
	apiserver  *exec.Cmd // the running kube-apiserver
	apiArgs    []string
}

var k8sBinaries struct {
	once sync.Once
	dir  string
	err  error
}

// startControlPlane builds (once per machine) and starts a control plane
// for the test.
func startControlPlane(t *testing.T) *controlPlane {
	t.Helper()
	k8sBinaries.once.Do(func() {
		cmd := exec.Command("scripts/k8s-control-plane.sh")
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		k8sBinaries.dir, k8sBinaries.err = strings.TrimSpace(string(out)), err
	})
	if k8sBinaries.err != nil {
		t.Fatalf("building the control plane (scripts/k8s-control-plane.sh): %v", k8sBinaries.err)
	}
	bin := k8sBinaries.dir
	dir := t.TempDir()

	etcdClient, etcdPeer := freePort(t), freePort(t)
	startBackground(t, exec.Command(filepath.Join(bin, "etcd"), "-data-dir", filepath.Join(dir, "etcd"),
		"-listen", fmt.Sprintf("http://127.0.0.1:%d", etcdClient), "-peer", fmt.Sprintf("http://127.0.0.1:%d", etcdPeer)), nil)

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	saKey := write("sa.key", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	saPub := write("sa.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	tok := make([]byte, 16)
	rand.Read(tok)
	cp := &controlPlane{adminToken: hex.EncodeToString(tok)}
	tokens := write("tokens.csv", []byte(cp.adminToken+",admin,admin,system:masters\n"))
	port := freePort(t)
	cp.url = fmt.Sprintf("https://127.0.0.1:%d", port)
	cp.apiArgs = []string{fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", etcdClient),
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", port), "--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none", "--token-auth-file=" + tokens, "--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc", "--service-account-key-file=" + saPub,
		"--service-account-signing-key-file=" + saKey, "--service-cluster-ip-range=10.96.0.0/16",
		"--cert-dir=" + filepath.Join(dir, "certs")}
	cp.startAPIServer(t)
	return cp
}

// startAPIServer starts kube-apiserver and waits until it is ready.
func (cp *controlPlane) startAPIServer(t *testing.T) {
	t.Helper()
	cp.launchAPIServer(t)
	waitFor(t, 60*time.Second, "kube-apiserver ready", cp.ready)
}

// launchAPIServer starts kube-apiserver, not waiting for it.
func (cp *controlPlane) launchAPIServer(t *testing.T) {
	t.Helper()
	cp.apiserver = exec.Command(filepath.Join(k8sBinaries.dir, "kube-apiserver"), cp.apiArgs...)
	startBackground(t, cp.apiserver, nil)
}

// ready reports whether the API server answers its readiness check.
func (cp *controlPlane) ready() bool {
	// The API server's own serving certificate, made at start in --cert-dir:
	// the tests on loopback do not check it.
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", cp.url+"/readyz", nil)
	req.Header.Set("Authorization", "Bearer "+cp.adminToken)
	resp, err := (&http.Client{Transport: tr, Timeout: 2 * time.Second}).Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// stopAPIServer kills kube-apiserver, as a crash or a node's restart does
// (its graceful stop on SIGTERM stops listening at once but lingers some
// 20 s over its watches); etcd keeps the objects, and startAPIServer
// brings it back on the same port.
func (cp *controlPlane) stopAPIServer() {
	cp.apiserver.Process.Kill()
	cp.apiserver.Wait()
}

// clientset is an API client with token's rights.
func (cp *controlPlane) clientset(t *testing.T, token string) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cp.restConfig(token))
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func (cp *controlPlane) restConfig(token string) *rest.Config {
	// client-go's default rate limit (5 requests a second) would make 20
	// sessions at once take seconds: the proxy raises it as well.
	return &rest.Config{Host: cp.url, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: 100, Burst: 200}
}
