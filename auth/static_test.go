package auth

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/testutil"
)

func TestStaticTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(path, []byte("# the lab's headsets\nquest-3-a\n\n  pico-4  \n#retired-token\n"), 0o600)
	core, logs := observer.New(zapcore.InfoLevel)
	s, err := NewStatic(path, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	for tok, want := range map[string]Why{"quest-3-a": 0, "pico-4": 0, "retired-token": UnknownToken,
		"# the lab's headsets": UnknownToken, "quest-3": UnknownToken, "": UnknownToken} {
		if got := why(s.Verify(context.Background(), tok)); got != want {
			t.Errorf("%q: %v, want %v", tok, got, want)
		}
	}

	// Changed at run time: picked up by Watch, without a restart.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Watch(ctx, 10*time.Millisecond) })
	defer func() { cancel(); wg.Wait() }()
	os.WriteFile(path, []byte("vision-pro\n"), 0o600)
	testutil.WaitFor(t, 5*time.Second, "the new token accepted", func() bool { return s.Verify(ctx, "vision-pro") == nil })
	if s.Verify(ctx, "quest-3-a") == nil {
		t.Error("a token removed from the file is still accepted")
	}
	// A file that disappears keeps the tokens in force, and says so.
	os.Remove(path)
	testutil.WaitFor(t, 5*time.Second, "the failed reload logged", func() bool {
		return logs.FilterMessage("tokens file not reloaded; the tokens in force stay").Len() > 0
	})
	if s.Verify(ctx, "vision-pro") != nil {
		t.Error("tokens lost when the file could not be read")
	}
	// SIGHUP's reload.
	os.WriteFile(path, []byte("after-hup\n"), 0o600)
	s.Reload("SIGHUP")
	if s.Verify(ctx, "after-hup") != nil {
		t.Error("Reload did not read the file")
	}
	if _, err := NewStatic(filepath.Join(t.TempDir(), "missing"), nil); err == nil {
		t.Error("a missing tokens file accepted at start")
	}
}

func TestParseClaims(t *testing.T) {
	c, err := ParseClaims([]string{"cognito:groups=cloudxr", " email_verified=true"})
	if err != nil || len(c) != 2 || c[0] != (Claim{"cognito:groups", "cloudxr"}) || c[1] != (Claim{"email_verified", "true"}) {
		t.Errorf("%v %v", c, err)
	}
	for _, bad := range []string{"groups", "=x", "groups="} {
		if _, err := ParseClaims([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, c := range []struct {
		v    any
		want bool
	}{{"cloudxr", true}, {[]any{"a", "cloudxr"}, true}, {[]any{"a"}, false}, {nil, false}, {true, false}} {
		if hasClaim(c.v, "cloudxr") != c.want {
			t.Errorf("hasClaim(%v)", c.v)
		}
	}
}

// Verified tokens are remembered until their exp and no longer; the set is
// bounded.
func TestPassedTokens(t *testing.T) {
	p := passed{max: 3}
	now := time.Now()
	d := func(i byte) (x [32]byte) { x[0] = i; return x }
	p.add(d(1), now.Add(time.Minute))
	if !p.has(d(1), now) || p.has(d(1), now.Add(time.Minute)) {
		t.Error("a token is remembered past its exp, or not before")
	}
	for i := range byte(10) {
		p.add(d(i), now.Add(time.Hour))
		if len(p.m) > 3 {
			t.Fatalf("%d remembered, bound 3", len(p.m))
		}
	}
}
