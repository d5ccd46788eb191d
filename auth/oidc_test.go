package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"go.uber.org/goleak"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/oidctest"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// provider starts a real OpenID provider for the test.
var provider = oidctest.Started

// running starts v.Run until the test ends and waits until it is ready.
func running(t *testing.T, v *OIDC) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { v.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		v.o.Client.CloseIdleConnections()
		http.DefaultClient.CloseIdleConnections()
	})
	testutil.WaitFor(t, 10*time.Second, "keys loaded", func() bool { ok, _ := v.Ready(); return ok })
}

func why(err error) Why {
	var f *Failure
	if errors.As(err, &f) {
		return f.Why
	}
	return 0
}

func sign(t *testing.T, p *oidctest.Provider, change func(map[string]any)) string {
	t.Helper()
	c := p.Claims()
	if change != nil {
		change(c)
	}
	tok, err := p.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestOIDCWithARealProvider(t *testing.T) {
	p := provider(t)
	v := NewOIDC(OIDCOptions{Issuer: p.Issuer, Audience: oidctest.ClientID, Claims: []Claim{{"client_id", oidctest.ClientID}}})
	running(t, v)

	granted, err := p.Token() // a real client-credentials grant
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(context.Background(), granted); err != nil {
		t.Fatalf("a token the provider issued: %v", err)
	}

	alien, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pubDER, _ := x509.MarshalPKIXPublicKey(p.PublicKey())
	forge := func(key any, kid string, alg jose.SignatureAlgorithm) string {
		tok, err := oidctest.SignWith(key, kid, alg, p.Claims())
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	payload, _ := json.Marshal(p.Claims())
	none := header + "." + base64.RawURLEncoding.EncodeToString(payload) + "."

	for _, c := range []struct {
		name  string
		token string
		want  Why
	}{
		{"expired", sign(t, p, func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), Expired},
		{"not yet valid", sign(t, p, func(c map[string]any) { c["nbf"] = time.Now().Add(time.Hour).Unix() }), NotYetValid},
		{"wrong issuer", sign(t, p, func(c map[string]any) { c["iss"] = "https://elsewhere.example" }), WrongIssuer},
		{"wrong audience", sign(t, p, func(c map[string]any) { c["aud"] = []string{"other"}; c["client_id"] = "other" }), WrongAudience},
		{"claim missing", sign(t, p, func(c map[string]any) { delete(c, "client_id"); c["aud"] = []string{oidctest.ClientID} }), ClaimMissing},
		{"no exp", sign(t, p, func(c map[string]any) { delete(c, "exp") }), ClaimMissing},
		{"bad signature: a key the provider does not publish, its key id", forge(alien, "key-1", jose.ES256), BadSignature},
		{"unknown key id", forge(alien, "made-up", jose.ES256), UnknownKey},
		{"alg none", none, BadSignature},
		{"HS256 with the provider's public key", forge(pubDER, "key-1", jose.HS256), BadSignature},
		{"not a JWT", "opaque-token", Malformed},
	} {
		if got := why(v.Verify(context.Background(), c.token)); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, v.Verify(context.Background(), c.token), c.want)
		}
	}

	// Cognito's access tokens carry the app client in client_id, not aud.
	cognito := sign(t, p, func(c map[string]any) { delete(c, "aud") })
	if err := v.Verify(context.Background(), cognito); err != nil {
		t.Errorf("audience as client_id: %v", err)
	}
}

func TestOIDCKeyRotationAndProviderDown(t *testing.T) {
	p := provider(t)
	v := NewOIDC(OIDCOptions{Issuer: p.Issuer, Audience: oidctest.ClientID, RefetchGap: 50 * time.Millisecond})
	running(t, v)
	before, err := p.Token()
	if err != nil {
		t.Fatal(err)
	}

	// A new key at the provider: its tokens are accepted without a restart.
	if err := p.Rotate(); err != nil {
		t.Fatal(err)
	}
	after, err := p.Token()
	if err != nil {
		t.Fatal(err)
	}
	// Picked up at the first token after RefetchGap since the last fetch.
	testutil.WaitFor(t, 5*time.Second, "a token signed with the rotated key accepted", func() bool {
		return v.Verify(context.Background(), after) == nil
	})

	// The provider goes down: cached keys keep working.
	p.Stop()
	for _, tok := range []string{before, after} {
		if err := v.Verify(context.Background(), tok); err != nil {
			t.Errorf("with the provider down: %v", err)
		}
	}
}

// A flood of tokens naming made-up keys costs the provider one key fetch
// per RefetchGap, not one per token.
func TestUnknownKeysRefetchRateLimited(t *testing.T) {
	p := provider(t)
	var fetches atomic.Int64
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		resp, err := http.Get(p.Issuer + "/keys")
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", "application/json")
		var set jose.JSONWebKeySet
		json.NewDecoder(resp.Body).Decode(&set)
		json.NewEncoder(w).Encode(set)
	}))
	defer jwks.Close()
	v := NewOIDC(OIDCOptions{Issuer: p.Issuer, JWKSURL: jwks.URL, Audience: oidctest.ClientID, RefetchGap: time.Hour})
	running(t, v)
	alien, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	start := fetches.Load()
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			tok, _ := oidctest.SignWith(alien, "bogus-"+string(rune('a'+i%26)), jose.ES256, p.Claims())
			if why(v.Verify(context.Background(), tok)) != UnknownKey {
				t.Error("a made-up key id was not refused as unknown")
			}
		})
	}
	wg.Wait()
	if n := fetches.Load() - start; n > 1 {
		t.Errorf("200 tokens with made-up key ids caused %d key fetches, want at most 1", n)
	}
}

// Started while the provider is unreachable: not ready, NotReady for every
// token, and ready once the provider comes up.
func TestOIDCStartsBeforeTheProvider(t *testing.T) {
	p, err := oidctest.New()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	v := NewOIDC(OIDCOptions{Issuer: p.Issuer, Audience: oidctest.ClientID})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { v.Run(ctx) })
	defer func() {
		cancel()
		wg.Wait()
		v.o.Client.CloseIdleConnections()
		http.DefaultClient.CloseIdleConnections()
	}()
	if ok, whyNot := v.Ready(); ok || whyNot == "" {
		t.Fatalf("ready without a provider: %v %q", ok, whyNot)
	}
	if why(v.Verify(context.Background(), "x.y.z")) != NotReady {
		t.Error("a token was judged before the keys loaded")
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "ready once the provider is up", func() bool { ok, _ := v.Ready(); return ok })
	tok, err := p.Token()
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(context.Background(), tok); err != nil {
		t.Errorf("after recovery: %v", err)
	}
}
