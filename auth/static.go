package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/filestate"
)

// Static accepts the tokens listed in a file (AUTH_TOKENS_FILE), for a lab
// with no identity provider: one token per line, blank lines and lines
// starting with # ignored. The file is read again when it changes (Watch)
// and on SIGHUP (Reload); a file that cannot be read then keeps the tokens
// in force.
type Static struct {
	path   string
	log    *zap.Logger
	tokens atomic.Pointer[[][sha256.Size]byte] // digests: equal lengths for constant-time comparison

	mu       sync.Mutex // one reload at a time
	lastSeen []filestate.State
}

// NewStatic reads the tokens file; it must exist and be readable.
func NewStatic(path string, log *zap.Logger) (*Static, error) {
	if log == nil {
		log = zap.NewNop()
	}
	s := &Static{path: path, log: log}
	n, err := s.load()
	if err != nil {
		return nil, err
	}
	if n == 0 {
		log.Warn("the tokens file lists no token: every session will be refused", zap.String("path", path))
	}
	s.lastSeen = filestate.Of(path)
	return s, nil
}

func (s *Static) load() (int, error) {
	data, err := os.ReadFile(s.path)
	if err != nil {
		return 0, fmt.Errorf("reading the tokens file: %w", err)
	}
	var digests [][sha256.Size]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		digests = append(digests, sha256.Sum256([]byte(line)))
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("reading the tokens file: %w", err)
	}
	s.tokens.Store(&digests)
	return len(digests), nil
}

// Verify compares the token with every listed one in constant time: the
// time taken says neither which token nor how much of one matched.
func (s *Static) Verify(_ context.Context, token string) error {
	d := sha256.Sum256([]byte(token))
	match := 0
	for _, t := range *s.tokens.Load() {
		match |= subtle.ConstantTimeCompare(d[:], t[:])
	}
	if match == 1 {
		return nil
	}
	return fail(UnknownToken, "the token is not in the tokens file")
}

// Count is how many tokens are in force.
func (s *Static) Count() int { return len(*s.tokens.Load()) }

// Ready is always true: the file was read at start.
func (s *Static) Ready() (bool, string) { return true, "" }

// Reload reads the file now (SIGHUP).
func (s *Static) Reload(why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastSeen = filestate.Of(s.path)
	s.reload(why)
}

func (s *Static) reload(why string) {
	n, err := s.load()
	if err != nil {
		s.log.Error("tokens file not reloaded; the tokens in force stay", zap.String("why", why), zap.Error(err))
		return
	}
	s.log.Info("tokens file reloaded", zap.String("why", why), zap.String("path", s.path), zap.Int("tokens", n))
}

// Watch reloads the file when it changes (filestate), every
// interval, until ctx ends.
func (s *Static) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.mu.Lock()
			if now := filestate.Of(s.path); filestate.Changed(now, s.lastSeen) {
				s.lastSeen = now
				s.reload("file changed")
			}
			s.mu.Unlock()
		}
	}
}
