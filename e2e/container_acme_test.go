//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"testing"
)

// The README's recipe for an internet host on port 443, as written: the
// image run as its unprivileged user with --network host and
// PROXY_PORT=443, CERT_MODE=acme answering TLS-ALPN-01 on that port. The
// CA is Pebble on this host, its DNS resolving every name to 127.0.0.1, so
// that its validation reaches the container's port 443; the container
// reaches Pebble on localhost and trusts its HTTPS through ACME_CA_ROOTS.
func TestContainerACMEOn443(t *testing.T) {
	if ln, err := net.Listen("tcp", ":443"); err != nil {
		t.Fatalf("port 443 must be free for this test: %v", err)
	} else {
		ln.Close()
	}
	buildImage(t)
	b := backend(t)
	pb := startPebble(t, pebbleSpec{tlsPort: 443, httpPort: freePort(t)})
	name := fmt.Sprintf("cxp-test-acme443-%d", os.Getpid())
	c := runContainer(t, name,
		"-v", pb.minica+":/etc/cloudxr-wss-proxy/ca-roots.pem:ro",
		"-e", "BACKEND_HOST=localhost", "-e", fmt.Sprintf("BACKEND_PORT=%d", b.Port()),
		"-e", "PROXY_PORT=443", "-e", "CERT_MODE=acme", "-e", "CERT_HOSTNAMES=proxy.test",
		"-e", "ACME_EMAIL=ops@proxy.test",
		"-e", "ACME_CA="+pb.dir, "-e", "ACME_CA_ROOTS=/etc/cloudxr-wss-proxy/ca-roots.pem",
		"-e", fmt.Sprintf("ADMIN_ADDRESS=127.0.0.1:%d", freePort(t)), "-e", "CLIENT_HANDSHAKE_RATE=0")
	if l := c.waitLog("trying to solve challenge"); l["challenge_type"] != "tls-alpn-01" {
		t.Errorf("challenge %v, want tls-alpn-01", l["challenge_type"])
	}
	c.waitLog("certificate obtained successfully")
	waitServed(t, "127.0.0.1:443", "proxy.test", pb.roots)
	echoTrusting(t, "127.0.0.1:443", "proxy.test", pb.roots)
}
