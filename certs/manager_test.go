package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/certtest"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fixture struct {
	dir  string
	logs *observer.ObservedLogs
	log  *zap.Logger
}

func newFixture(t *testing.T) *fixture {
	core, logs := observer.New(zapcore.DebugLevel)
	return &fixture{dir: filepath.Join(t.TempDir(), "certs"), logs: logs, log: zap.New(core)}
}

func (f *fixture) manager(t *testing.T, mode Mode, names []string, now time.Time) *Manager {
	t.Helper()
	m, err := NewManager(Options{Dir: f.dir, Names: names, Label: "gpu-box", Mode: mode, Logger: f.log, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (f *fixture) read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fixture) cert(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	kp, err := ParseKeyPair(append(f.read(t, name), f.read(t, strings.Replace(name, ".crt", ".key", 1))...))
	if err != nil {
		t.Fatal(err)
	}
	return kp.Leaf
}

func mode(t *testing.T, path string) os.FileMode {
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

var names = []string{"localhost", "127.0.0.1", "::1", "gpu-box", "192.168.1.50", "vr.lab.example"}

func TestLocalCASignsServerCertificate(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	m := f.manager(t, ModeLocalCA, names, now)

	ca := f.cert(t, CAFile)
	if !ca.IsCA || !ca.MaxPathLenZero || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA basics: IsCA %v MaxPathLenZero %v usage %v", ca.IsCA, ca.MaxPathLenZero, ca.KeyUsage)
	}
	if years := ca.NotAfter.Sub(now).Hours() / 24 / 365; years < 9.9 || years > 10.1 {
		t.Errorf("CA valid %.1f years, want 10", years)
	}
	if !ca.PermittedDNSDomainsCritical || !slices.Contains(ca.PermittedDNSDomains, "vr.lab.example") || !slices.Contains(ca.PermittedDNSDomains, "gpu-box") {
		t.Errorf("CA name constraints %v", ca.PermittedDNSDomains)
	}
	for path, want := range map[string]os.FileMode{CAKeyFile: 0o600, KeyFile: 0o600, PEMFile: 0o600, CAFile: 0o644, CertFile: 0o644} {
		if got := mode(t, filepath.Join(f.dir, path)); got != want {
			t.Errorf("%s mode %v, want %v", path, got, want)
		}
	}

	leaf := m.Current().Leaf()
	if !bytes.Equal(leaf.Raw, f.cert(t, "server.crt").Raw) {
		t.Error("served certificate differs from server.crt")
	}
	if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("key %T", leaf.PublicKey)
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d > 826*24*time.Hour {
		t.Errorf("server certificate valid %v; Apple allows 825 days", d)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, n := range names {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: n, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("%s: does not chain to the CA: %v", n, err)
		}
	}
	if m.Current().Anchor.Equal(ca) == false {
		t.Error("trust anchor is not the CA")
	}
	// A public name the CA was not made for is outside its constraints.
	if x, _ := NewCA("x", []string{"localhost"}, now); x.Permits("www.example.com") || !x.Permits("10.9.8.7") || !x.Permits("box.local") || x.Permits("8.8.8.8") {
		t.Error("constraints: want local names and private ranges only")
	}
}

func TestReuseAndReissue(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	first := f.manager(t, ModeLocalCA, names, now).Current()
	caBefore := f.read(t, CAFile)

	// Same names: reused, nothing written.
	pemBefore := f.read(t, PEMFile)
	if again := f.manager(t, ModeLocalCA, names, now).Current(); again.Fingerprint() != first.Fingerprint() {
		t.Fatal("not reused")
	}
	if !bytes.Equal(pemBefore, f.read(t, PEMFile)) {
		t.Error("server.pem rewritten although nothing changed")
	}

	// A new CERT_HOSTNAMES entry: re-issued by the same CA.
	more := append(slices.Clone(names), "headset-lab.local", "192.168.1.77")
	second := f.manager(t, ModeLocalCA, more, now).Current()
	if second.Fingerprint() == first.Fingerprint() {
		t.Fatal("not re-issued for a new name")
	}
	if err := second.Leaf().VerifyHostname("headset-lab.local"); err != nil {
		t.Error(err)
	}
	if !bytes.Equal(caBefore, f.read(t, CAFile)) {
		t.Error("the CA changed: headsets would have to trust it again")
	}
	l := f.logs.FilterMessage("re-issued the certificate").All()
	if len(l) != 1 || !strings.Contains(l[0].ContextMap()["reason"].(string), "headset-lab.local") ||
		l[0].ContextMap()["old_sha256"] != first.Fingerprint() || l[0].ContextMap()["sha256"] != second.Fingerprint() {
		t.Errorf("re-issue log %v", l)
	}

	// Close to expiry: re-issued.
	later := second.Leaf().NotAfter.Add(-10 * 24 * time.Hour)
	third := f.manager(t, ModeLocalCA, more, later).Current()
	if third.Fingerprint() == second.Fingerprint() || !third.Leaf().NotAfter.After(second.Leaf().NotAfter) {
		t.Error("not renewed before expiry")
	}

	// Switching to self-signed re-issues without the CA.
	self := f.manager(t, ModeSelfSigned, more, later).Current()
	if !self.Anchor.Equal(self.Leaf()) || self.Mode != ModeSelfSigned {
		t.Error("self-signed mode still CA-signed")
	}
	if l := self.Leaf(); l.CheckSignature(l.SignatureAlgorithm, l.RawTBSCertificate, l.Signature) != nil || !bytes.Equal(l.RawIssuer, l.RawSubject) {
		t.Error("not self-signed")
	}
}

func TestNameOutsideCAConstraintsMakesNewCA(t *testing.T) {
	f := newFixture(t)
	f.manager(t, ModeLocalCA, names, time.Now())
	before := f.read(t, CAFile)
	m := f.manager(t, ModeLocalCA, append(slices.Clone(names), "vr.public-example.com"), time.Now())
	if bytes.Equal(before, f.read(t, CAFile)) {
		t.Fatal("CA kept although a name is outside its constraints")
	}
	if err := m.Current().Leaf().VerifyHostname("vr.public-example.com"); err != nil {
		t.Error(err)
	}
	if f.logs.FilterMessage("created a new local CA; headsets that trusted the old one must trust this one").Len() != 1 {
		t.Error("new CA not warned about")
	}
}

// writeUserPEM writes a certificate the user made: no record beside it.
func writeUserPEM(t *testing.T, dir string, cn string, notAfter time.Time) []byte {
	t.Helper()
	g, err := GenerateSelfSigned([]string{cn}, notAfter.Add(-generatedValidity))
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(dir, 0o755)
	data := append(g.KeyPEM, g.CertPEM...)
	if err := os.WriteFile(filepath.Join(dir, PEMFile), data, 0o444); err != nil {
		t.Fatal(err)
	}
	return data
}

func TestUserCertificateNeverTouched(t *testing.T) {
	f := newFixture(t)
	data := writeUserPEM(t, f.dir, "user.example", time.Now().Add(10*24*time.Hour)) // expires soon, lacks names
	m := f.manager(t, ModeLocalCA, names, time.Now())
	if m.Current().Managed || m.Current().Leaf().Subject.CommonName != "user.example" {
		t.Fatal("user certificate not served as is")
	}
	if !bytes.Equal(data, f.read(t, PEMFile)) {
		t.Error("user's server.pem changed")
	}
	entries, _ := os.ReadDir(f.dir)
	if len(entries) != 1 {
		t.Errorf("files written beside the user's certificate: %v", entries)
	}
	if f.logs.FilterMessage("the certificate expires soon").Len() != 1 {
		t.Error("no expiry warning at start")
	}

	// A generated certificate the user later replaced by their own: the
	// record no longer matches, so the new file is theirs.
	g := newFixture(t)
	g.manager(t, ModeLocalCA, names, time.Now())
	own := writeUserPEM(t, g.dir, "mine.example", time.Now().Add(100*24*time.Hour))
	if m := g.manager(t, ModeLocalCA, append(slices.Clone(names), "new.local"), time.Now()); m.Current().Managed {
		t.Error("a replaced server.pem was treated as generated")
	}
	if !bytes.Equal(own, g.read(t, PEMFile)) {
		t.Error("user's replacement was overwritten")
	}
}

func TestExpiredCertificateIsAnError(t *testing.T) {
	f := newFixture(t)
	writeUserPEM(t, f.dir, "old.example", time.Now().Add(-time.Hour))
	f.manager(t, ModeLocalCA, names, time.Now())
	if f.logs.FilterMessage("the certificate has expired; clients will refuse it").FilterLevelExact(zapcore.ErrorLevel).Len() != 1 {
		t.Error("expired certificate not reported as an error")
	}
}

func kubeSecret(t *testing.T, dir, version string, crt, key []byte) {
	t.Helper()
	if err := certtest.WriteSecret(dir, version, crt, key); err != nil {
		t.Fatal(err)
	}
}

func TestKubernetesSecretAndSymlinkSwap(t *testing.T) {
	f := newFixture(t)
	g1, _ := GenerateSelfSigned([]string{"v1.example"}, time.Now())
	kubeSecret(t, f.dir, "v1", g1.CertPEM, g1.KeyPEM)
	m := f.manager(t, ModeLocalCA, names, time.Now())
	if cn := m.Current().Leaf().Subject.CommonName; cn != "v1.example" || m.Current().Managed {
		t.Fatalf("serving %s", cn)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); m.Watch(ctx, 20*time.Millisecond) }()
	defer func() { cancel(); wg.Wait() }()

	g2, _ := GenerateSelfSigned([]string{"v2.example"}, time.Now())
	kubeSecret(t, f.dir, "v2", g2.CertPEM, g2.KeyPEM)
	testutil.WaitFor(t, 5*time.Second, "the symlink swap to be picked up", func() bool {
		return m.Current().Leaf().Subject.CommonName == "v2.example"
	})
	// The certificate is swapped in before its line is written: wait for
	// the line, then count it.
	testutil.WaitFor(t, 5*time.Second, "the reload's log line", func() bool {
		return f.logs.FilterMessage("certificate reloaded").Len() > 0
	})
	if f.logs.FilterMessage("certificate reloaded").Len() != 1 {
		t.Error("reload not logged once")
	}
	entries, _ := os.ReadDir(f.dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "server") || e.Name() == CAFile {
			t.Errorf("wrote %s into the Secret's directory", e.Name())
		}
	}
}

func TestBrokenReloadKeepsCurrent(t *testing.T) {
	f := newFixture(t)
	writeUserPEM(t, f.dir, "good.example", time.Now().Add(90*24*time.Hour))
	m := f.manager(t, ModeLocalCA, names, time.Now())
	good := m.Current()

	path := filepath.Join(f.dir, PEMFile)
	os.Chmod(path, 0o644)
	os.WriteFile(path, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o644)
	m.Reload("SIGHUP")
	if m.Current() != good {
		t.Fatal("a broken file replaced the served certificate")
	}
	if f.logs.FilterMessage("the certificate files changed but cannot be used; still serving the current certificate").Len() != 1 {
		t.Error("broken file not logged")
	}

	writeUserPEM(t, f.dir, "better.example", time.Now().Add(90*24*time.Hour))
	m.Reload("SIGHUP")
	if m.Current().Leaf().Subject.CommonName != "better.example" {
		t.Error("a good file after a broken one was not loaded")
	}
}

func TestCheckNameLogsOnce(t *testing.T) {
	f := newFixture(t)
	m := f.manager(t, ModeLocalCA, names, time.Now())
	for range 3 {
		m.CheckName("10.20.30.40", "10.20.30.99:5555")
		m.CheckName("192.168.1.50", "x") // covered
	}
	l := f.logs.FilterMessage("a client used a name the certificate does not cover").All()
	if len(l) != 1 || l[0].ContextMap()["name"] != "10.20.30.40" || !strings.Contains(l[0].ContextMap()["fix"].(string), "CERT_HOSTNAMES") {
		t.Errorf("logs %v", l)
	}
}

// Names come from clients before any authentication: what CheckName keeps
// is bounded, names that are not host names are ignored, and the line is
// rate-limited once the set is full (issue 18, finding 2).
func TestCheckNameBounded(t *testing.T) {
	f := newFixture(t)
	m := f.manager(t, ModeLocalCA, names, time.Now())
	start := time.Now()
	for i := range 10_000 {
		m.CheckName(fmt.Sprintf("%s.n%d.example", strings.Repeat("a", 63), i), "x")
		m.CheckName(fmt.Sprintf("%d\r\n%s", i, strings.Repeat("<script>", 7000)), "x") // ~56 KB, not a host name
	}
	if n := m.Current().names.size(); n != maxSeenNames {
		t.Errorf("%d names remembered, want %d", n, maxSeenNames)
	}
	lines := f.logs.FilterMessage("a client used a name the certificate does not cover").All()
	// The sampler lets 5 a second through, then one in 1000.
	if limit := 5*(int(time.Since(start).Seconds())+1) + 10_000/1000; len(lines) > limit {
		t.Errorf("%d lines, want at most %d", len(lines), limit)
	}
	for _, l := range lines {
		if n := l.ContextMap()["name"].(string); !HostName(n) {
			t.Errorf("logged a name that is not a host name: %.80q", n)
		}
	}
}

func TestHostName(t *testing.T) {
	for name, want := range map[string]bool{
		"localhost": true, "quest.lab.example": true, "Runtime_1.lab": true, "a.example.": true, "10.0.0.1": true,
		"fd00::1": true, "[fd00::1]": false, "-a.example": false, "a-.example": false, strings.Repeat("a", 63) + ".x": true,
		"": false, ".": false, "a..b": false, strings.Repeat("a", 64) + ".x": false, strings.Repeat("a.", 127) + "ab": false,
		"a b": false, "a\r\nb": false, "<script>": false, "a/b": false, "a:b": false, "\x00": false,
	} {
		if got := HostName(name); got != want {
			t.Errorf("HostName(%.40q) = %v, want %v", name, got, want)
		}
	}
}

func TestNotWritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	dir := filepath.Join(file, "certs")
	_, err := NewManager(Options{Dir: dir, Names: names, Mode: ModeSelfSigned})
	if err == nil || !strings.Contains(err.Error(), "CERT_DIR "+dir) || !strings.Contains(err.Error(), "not writable") {
		t.Fatalf("err %v", err)
	}
}

func TestWantedNamesIncludeInterfaces(t *testing.T) {
	got := WantedNames("box", InterfaceIPs(), []string{"extra.example"})
	for _, ip := range InterfaceIPs() {
		if !slices.Contains(got, ip.String()) {
			t.Errorf("%s missing from %v", ip, got)
		}
	}
	if got[0] != "localhost" || !slices.Contains(got, "box") || got[len(got)-1] != "extra.example" {
		t.Errorf("%v", got)
	}
}
