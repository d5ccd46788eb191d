package certs

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/filestate"
)

// Keeping the certificate current: reloads on SIGHUP and on changed files,
// re-issuing a generated certificate before it expires.

// Reload re-reads the certificate files now (SIGHUP): a changed, valid
// certificate is served to new handshakes; open sessions keep theirs; a
// broken file is logged and the current certificate stays in service.
func (m *Manager) Reload(why string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastSeen = m.watchedState()
	m.reload(why)
}

func (m *Manager) reload(why string) {
	cur := m.cur.Load()
	s, err := m.readFiles()
	switch {
	case err != nil:
		m.log.Error("the certificate files changed but cannot be used; still serving the current certificate",
			zap.String("trigger", why), zap.Error(err), zap.String("serving_sha256", cur.Fingerprint()))
		return
	case s == nil:
		m.log.Warn("the certificate files are gone; still serving the current certificate", zap.String("trigger", why))
		return
	case s.digest == cur.digest:
		return
	}
	m.cur.Store(s)
	m.log.Info("certificate reloaded", append(m.describe(s), zap.String("trigger", why), zap.String("old_sha256", cur.Fingerprint()))...)
	m.checkExpiry()
}

func (m *Manager) watchedState() []filestate.State {
	return filestate.Of(m.path(PEMFile), m.path(SecretCert), m.path(SecretKey))
}

// Watch polls the certificate files every interval and reloads on change
// (polling sees a Secret's symlink swap and works on every filesystem), and
// checks expiry once a day, until ctx ends.
func (m *Manager) Watch(ctx context.Context, interval time.Duration) {
	poll := time.NewTicker(interval)
	defer poll.Stop()
	daily := time.NewTicker(24 * time.Hour)
	defer daily.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			m.mu.Lock()
			if st := m.watchedState(); filestate.Changed(st, m.lastSeen) {
				m.lastSeen = st
				m.reload("files changed")
			}
			m.mu.Unlock()
		case <-daily.C:
			m.mu.Lock()
			m.renewIfDue()
			m.checkExpiry()
			m.mu.Unlock()
		}
	}
}

// renewIfDue re-issues a generated certificate that nears expiry while the
// proxy runs for months.
func (m *Manager) renewIfDue() {
	s := m.cur.Load()
	if !s.Managed || s.Leaf().NotAfter.Sub(m.opts.Now()) >= renewBefore {
		return
	}
	if err := m.issue("expires on "+s.Leaf().NotAfter.Format(time.DateOnly), s); err != nil {
		m.log.Error("re-issuing the certificate failed; still serving the current one", zap.Error(err))
		return
	}
	m.lastSeen = m.watchedState()
}

// checkExpiry warns when the served certificate expires within 30 days and
// reports an error once it has expired.
func (m *Manager) checkExpiry() {
	s := m.cur.Load()
	left := s.Leaf().NotAfter.Sub(m.opts.Now())
	switch {
	case left <= 0:
		m.log.Error("the certificate has expired; clients will refuse it", zap.String("source", s.Source), zap.Time("not_after", s.Leaf().NotAfter))
	case left < renewBefore:
		m.log.Warn("the certificate expires soon", zap.String("source", s.Source), zap.Time("not_after", s.Leaf().NotAfter),
			zap.Duration("left", left.Round(time.Hour)))
	}
}
