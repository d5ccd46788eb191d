//go:build e2e

package e2e

// A real DNS server for DNS-01 over RFC 2136: BIND 9 from Debian's package,
// authoritative for one zone on a free port of 127.0.0.1, taking updates of
// TXT records signed with a TSIG key.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// bindServer is a running named.
type bindServer struct {
	addr            string // host:port, UDP and TCP
	keyName, secret string // the TSIG key allowed to update TXT records
}

// startBind runs named authoritative for zone, every name in it 127.0.0.1
// but for the records in extra (zone file lines).
func startBind(t *testing.T, zone string, extra ...string) *bindServer {
	t.Helper()
	need(t, "named")
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	key := make([]byte, 32)
	rand.Read(key)
	b := &bindServer{keyName: "acme-update", secret: base64.StdEncoding.EncodeToString(key)}
	port := freeUDPPort(t)
	b.addr = fmt.Sprintf("127.0.0.1:%d", port)
	conf := fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	notify no;
};
controls { };
key "%[3]s" { algorithm hmac-sha256; secret "%[4]s"; };
zone "%[5]s" {
	type primary;
	file "%[1]s/zone.db";
	update-policy { grant %[3]s zonesub TXT; };
};
`, dir, port, b.keyName, b.secret, zone)
	db := fmt.Sprintf(`$TTL 5
@	IN SOA	ns.%[1]s. admin.%[1]s. 1 60 60 600 5
@	IN NS	ns.%[1]s.
ns	IN A	127.0.0.1
@	IN A	127.0.0.1
*	IN A	127.0.0.1
`, zone) + strings.Join(extra, "\n") + "\n"
	for name, data := range map[string]string{"named.conf": conf, "zone.db": db} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var log bytes.Buffer
	// -g: in the foreground, logging to stderr; as the user running the
	// tests (root in CI), who owns dir, where the journal is written.
	cmd := exec.Command("named", "-g", "-c", filepath.Join(dir, "named.conf"))
	startBackground(t, cmd, &log)
	waitDNS(t, b.addr, "ns."+zone)
	return b
}

// waitDNS waits until the DNS server at addr says name is 127.0.0.1.
func waitDNS(t *testing.T, addr, name string) {
	t.Helper()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	waitFor(t, 20*time.Second, "the DNS server on "+addr+" answering", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		addrs, err := r.LookupHost(ctx, name)
		return err == nil && len(addrs) > 0 && addrs[0] == "127.0.0.1"
	})
}
