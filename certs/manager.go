package certs

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/filestate"
)

// Mode is how the proxy makes a certificate when it has to.
type Mode string

const (
	// ModeLocalCA: a local CA, trusted once on each headset, signs every
	// server certificate; re-issues need no new trust.
	ModeLocalCA Mode = "local-ca"
	// ModeSelfSigned: one self-signed certificate, as the HAProxy container
	// made.
	ModeSelfSigned Mode = "self-signed"
	// ModeACME: certificates from an ACME CA, publicly trusted (package
	// acme); this package then only reports on them.
	ModeACME Mode = "acme"
)

// renewBefore: a generated certificate this close to expiry is re-issued,
// and any served certificate this close to expiry is warned about.
const renewBefore = 30 * 24 * time.Hour

// Options configure a Manager.
type Options struct {
	Dir    string
	Names  []string // names a generated certificate must cover
	Label  string   // the machine's name, for the CA's subject
	Mode   Mode
	Logger *zap.Logger
	Now    func() time.Time // nil: time.Now
}

// Served is a certificate in service and what is known of it.
type Served struct {
	Cert *tls.Certificate
	// Anchor is what a client should trust: the local CA, the self-signed
	// certificate, or the top of a user's chain.
	Anchor *x509.Certificate
	// Source says where it came from: "generated", or the file(s) read.
	Source string
	// Managed: the proxy generated it and may re-issue it.
	Managed bool
	Mode    Mode

	digest [32]byte // of the source files' bytes
	names  seenNames
}

// seenNames are the names clients asked this certificate for, and whether
// it covers each: so a name is checked and an uncovered one logged once.
// Clients choose these names before any authentication, so the set is
// bounded (maxSeenNames, each a valid host name of at most 253 bytes, so
// under 100 KB); once full, further names are checked on each handshake
// and their lines go through the rate-limited logger.
type seenNames struct {
	mu sync.Mutex
	m  map[string]bool // name → covered
}

// maxSeenNames: a lab has a handful of names; a flood of made-up ones
// must not grow the proxy.
const maxSeenNames = 256

// lookup returns what is known of name: seen, and covered.
func (n *seenNames) lookup(name string) (covered, seen bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	covered, seen = n.m[name]
	return covered, seen
}

// add remembers name, unless it is known or the set is full; it reports
// whether name is new (the caller then logs it) and whether the set was
// full (the name is then new, but not remembered).
func (n *seenNames) add(name string, covered bool) (added, full bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.m[name]; ok {
		return false, false
	}
	if len(n.m) >= maxSeenNames {
		return false, true
	}
	if n.m == nil {
		n.m = make(map[string]bool)
	}
	n.m[name] = covered
	return true, false
}

// size is how many names are remembered.
func (n *seenNames) size() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.m)
}

// Leaf is the served certificate itself.
func (s *Served) Leaf() *x509.Certificate { return s.Cert.Leaf }

// Fingerprint is the leaf's SHA-256 fingerprint.
func (s *Served) Fingerprint() string { return Fingerprint(s.Cert.Leaf) }

// Manager finds, generates, re-issues and reloads the proxy's certificate,
// and hands it to TLS handshakes without any per-handshake work.
type Manager struct {
	opts Options
	log  *zap.Logger
	// floodLog is rate-limited as the proxy's handshake failures are: a
	// client chooses the names CheckName logs.
	floodLog *zap.Logger
	cur      atomic.Pointer[Served]

	mu       sync.Mutex // serialises Reload and re-issues
	lastSeen []filestate.State
}

// NewManager loads or generates the certificate. Its errors are the user's
// to fix (a broken file, a directory that cannot be written) and name the
// file or CERT_DIR.
func NewManager(o Options) (*Manager, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Mode == "" {
		o.Mode = ModeLocalCA
	}
	m := &Manager{opts: o, log: o.Logger, floodLog: o.Logger.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, 5, 1000)
	}))}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.start(); err != nil {
		return nil, err
	}
	m.lastSeen = m.watchedState()
	m.checkExpiry()
	return m, nil
}

func (m *Manager) path(name string) string { return filepath.Join(m.opts.Dir, name) }

// start picks the certificate at start: a server.pem the proxy generated
// (re-issued when it lacks a wanted name, is about to expire, or the mode
// changed), a user's server.pem (only read), a Secret's tls.crt and tls.key,
// or, when there is none, a new one.
func (m *Manager) start() error {
	s, err := m.readFiles()
	switch {
	case err != nil:
		return err
	case s == nil:
		return m.issue("no certificate in CERT_DIR", nil)
	case s.Managed:
		if why := m.reissueReasons(s); len(why) > 0 {
			return m.issue(strings.Join(why, "; "), s)
		}
		m.cur.Store(s)
		m.log.Info("reusing the certificate generated earlier", m.describe(s)...)
	default:
		m.cur.Store(s)
		m.log.Info("loaded your certificate; it is only read, never changed", m.describe(s)...)
		if missing := Missing(s.Leaf(), m.opts.Names); len(missing) > 0 && s.Source == PEMFile {
			m.log.Info("your certificate does not cover some of this machine's names; clients that use them will reject it",
				zap.Strings("not_covered", missing))
		}
	}
	return nil
}

// readFiles reads the certificate files in CERT_DIR: server.pem, or else
// tls.crt with tls.key. It returns nil, nil when there are none.
func (m *Manager) readFiles() (*Served, error) {
	var (
		data   []byte
		source string
	)
	pemData, err := os.ReadFile(m.path(PEMFile))
	switch {
	case err == nil:
		data, source = pemData, PEMFile
	case !absent(err):
		return nil, fmt.Errorf("reading %s: %w", m.path(PEMFile), err)
	case exists(m.path(SecretCert)) || exists(m.path(SecretKey)):
		crt, err := os.ReadFile(m.path(SecretCert))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", m.path(SecretCert), err)
		}
		key, err := os.ReadFile(m.path(SecretKey))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", m.path(SecretKey), err)
		}
		data, source = append(append(crt, '\n'), key...), SecretCert+" and "+SecretKey
	default:
		return nil, nil
	}
	kp, err := ParseKeyPair(data)
	if err != nil {
		return nil, fmt.Errorf("loading %s from %s: %w", source, m.opts.Dir, err)
	}
	s := &Served{Cert: &kp, Source: source, digest: digest(data)}
	s.Anchor = kp.Leaf
	if n := len(kp.Certificate); n > 1 {
		if top, err := x509.ParseCertificate(kp.Certificate[n-1]); err == nil {
			s.Anchor = top
		}
	}
	rec, _ := readRecord(m.opts.Dir)
	if source == PEMFile && rec.owns(s.Fingerprint()) {
		s.Managed, s.Mode = true, rec.Mode
		if rec.Mode == ModeLocalCA {
			if ca, err := m.readCA(); err == nil && kp.Leaf.CheckSignatureFrom(ca.Cert) == nil {
				s.Anchor = ca.Cert
			}
		}
	}
	return s, nil
}

// reissueReasons says why a generated certificate should be made again.
func (m *Manager) reissueReasons(s *Served) []string {
	var why []string
	if missing := Missing(s.Leaf(), m.opts.Names); len(missing) > 0 {
		why = append(why, "new names "+strings.Join(missing, ", "))
	}
	if left := s.Leaf().NotAfter.Sub(m.opts.Now()); left < renewBefore {
		why = append(why, "expires on "+s.Leaf().NotAfter.Format(time.DateOnly))
	}
	if s.Mode != m.opts.Mode {
		why = append(why, "CERT_MODE is now "+string(m.opts.Mode))
	}
	if m.opts.Mode == ModeLocalCA && s.Anchor == s.Leaf() {
		why = append(why, "not signed by the local CA")
	}
	return why
}

// issue generates a certificate and makes it the one served.
func (m *Manager) issue(reason string, old *Served) error {
	names := m.opts.Names
	var (
		g      Generated
		anchor *x509.Certificate
		err    error
	)
	if m.opts.Mode == ModeLocalCA {
		var ca *CA
		ca, err = m.ensureCA()
		if err != nil {
			return err
		}
		g, err = ca.Issue(names, m.opts.Now())
		anchor = ca.Cert
	} else {
		g, err = GenerateSelfSigned(names, m.opts.Now())
	}
	if err != nil {
		return err
	}
	kp, err := ParseKeyPair(g.PEM())
	if err != nil {
		return fmt.Errorf("reading back the generated certificate: %w", err)
	}
	if anchor == nil {
		anchor = kp.Leaf
	}
	s := &Served{Cert: &kp, Anchor: anchor, Source: "generated", Managed: true, Mode: m.opts.Mode, digest: digest(g.PEM())}
	rec := record{Mode: m.opts.Mode, Fingerprint: s.Fingerprint(), Names: names, Issued: m.opts.Now().UTC()}
	if old != nil && old.Managed {
		rec.Previous = old.Fingerprint()
	}
	if err := m.write(rec, g); err != nil {
		return err
	}
	m.cur.Store(s)
	fields := append(m.describe(s), zap.String("reason", reason))
	if old != nil {
		fields = append(fields, zap.String("old_sha256", old.Fingerprint()))
		m.log.Info("re-issued the certificate", fields...)
	} else {
		m.log.Info("generated a certificate", fields...)
	}
	return nil
}

// write stores a generated certificate: the record first (it vouches for
// the old and the new certificate), then server.crt, server.key and, last,
// server.pem, the file that is read at start.
func (m *Manager) write(rec record, g Generated) error {
	err := os.MkdirAll(m.opts.Dir, 0o755)
	if err == nil {
		err = writeRecord(m.opts.Dir, rec)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{CertFile, g.CertPEM, 0o644},
		{KeyFile, g.KeyPEM, 0o600},
		{PEMFile, g.PEM(), 0o600},
	} {
		if err == nil {
			err = writeAtomic(m.path(f.name), f.data, f.mode)
		}
	}
	if err != nil {
		return m.notWritable(err)
	}
	return nil
}

func (m *Manager) notWritable(err error) error {
	return fmt.Errorf("CERT_DIR %s holds no usable certificate and one cannot be generated there (%w); mount a writable directory or volume there, or put your certificate and key in %s: %w",
		m.opts.Dir, ErrNotWritable, m.path(PEMFile), err)
}

func (m *Manager) readCA() (*CA, error) {
	crt, err := os.ReadFile(m.path(CAFile))
	if err != nil {
		return nil, err
	}
	key, err := os.ReadFile(m.path(CAKeyFile))
	if err != nil {
		return nil, err
	}
	return ParseCA(Generated{CertPEM: crt, KeyPEM: key})
}

// ensureCA returns the local CA, making a new one when there is none, it
// is about to expire, or its name constraints exclude a wanted name.
func (m *Manager) ensureCA() (*CA, error) {
	ca, err := m.readCA()
	var why string
	switch {
	case err != nil && absent(err):
		why = "no local CA yet"
	case err != nil:
		why = "the local CA files are unreadable: " + err.Error()
	case ca.Cert.NotAfter.Sub(m.opts.Now()) < renewBefore:
		why = "the local CA expires on " + ca.Cert.NotAfter.Format(time.DateOnly)
	default:
		var outside []string
		for _, n := range m.opts.Names {
			if !ca.Permits(n) {
				outside = append(outside, n)
			}
		}
		if len(outside) == 0 {
			return ca, nil
		}
		why = "its name constraints exclude " + strings.Join(outside, ", ")
	}
	fresh, err := NewCA(m.opts.Label, m.opts.Names, m.opts.Now())
	if err != nil {
		return nil, err
	}
	err = os.MkdirAll(m.opts.Dir, 0o755)
	if err == nil {
		err = writeAtomic(m.path(CAKeyFile), fresh.PEM.KeyPEM, 0o600)
	}
	if err == nil {
		err = writeAtomic(m.path(CAFile), fresh.PEM.CertPEM, 0o644)
	}
	if err != nil {
		return nil, m.notWritable(err)
	}
	fields := []zap.Field{zap.String("reason", why), zap.String("ca_sha256", Fingerprint(fresh.Cert)),
		zap.Time("ca_not_after", fresh.Cert.NotAfter), zap.String("path", m.path(CAFile))}
	if ca != nil {
		m.log.Warn("created a new local CA; headsets that trusted the old one must trust this one", fields...)
	} else {
		m.log.Info("created a local CA; trust it once on each headset (see https://<host>:<port>/)", fields...)
	}
	return fresh, nil
}

func (m *Manager) describe(s *Served) []zap.Field {
	leaf := s.Leaf()
	f := []zap.Field{
		zap.String("source", s.Source),
		zap.String("sha256", s.Fingerprint()),
		zap.Strings("dns_names", leaf.DNSNames),
		zap.Stringers("ip_addresses", leaf.IPAddresses),
		zap.Time("not_after", leaf.NotAfter),
	}
	if s.Anchor != leaf {
		f = append(f, zap.String("trust_anchor", s.Anchor.Subject.CommonName), zap.String("trust_anchor_sha256", Fingerprint(s.Anchor)))
	}
	return f
}

// Current returns the certificate in service.
func (m *Manager) Current() *Served { return m.cur.Load() }

// GetCertificate fits tls.Config.GetCertificate: one atomic load, no
// parsing, so a reload never blocks or disturbs a handshake.
func (m *Manager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.cur.Load().Cert, nil
}

// CheckName logs, once per certificate and name, that a client asked for a
// name (its SNI, or the address it dialed when it sent none) that the
// certificate does not cover: the reason headsets say "certificate unknown".
// Names that are not host names are ignored; what is remembered is bounded
// (seenNames); the line is rate-limited.
func (m *Manager) CheckName(name, client string) {
	if name == "" {
		return
	}
	s := m.cur.Load()
	if _, seen := s.names.lookup(name); seen || !HostName(name) {
		return
	}
	covered := Covers(s.Leaf(), name)
	if added, full := s.names.add(name, covered); covered || !(added || full) {
		return // covered, or another handshake logged it just now
	}
	fix := "add it to CERT_HOSTNAMES and restart; the certificate is re-issued"
	if !s.Managed {
		fix = "your certificate (" + s.Source + ") must list it as a subject alternative name"
	}
	m.floodLog.Warn("a client used a name the certificate does not cover", zap.String("name", name),
		zap.String("client", client), zap.String("fix", fix))
}
