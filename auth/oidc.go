package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"go.uber.org/zap"
)

// OIDCOptions configure an OIDC verifier.
type OIDCOptions struct {
	// Issuer is the provider's issuer URL: its discovery document names
	// the JWKS URL, and tokens must carry it as iss. With JWKSURL set too,
	// discovery is skipped and iss still checked.
	Issuer string
	// JWKSURL is the provider's key set, for providers without discovery.
	JWKSURL string
	// Audience must be in the token's aud, or be its client_id (as
	// Amazon Cognito's access tokens carry it).
	Audience string
	// Claims must be present with these values.
	Claims []Claim
	// Client reaches the provider; nil: one with the system's trust store.
	Client *http.Client
	// RefetchGap is the least time between key fetches that tokens naming
	// unknown keys cause; 0 means 10 s.
	RefetchGap time.Duration
	// Refresh is how often the keys are fetched anyway; 0 means 1 h.
	Refresh time.Duration
	Logger  *zap.Logger
}

// allowedAlgs are the asymmetric signature algorithms: "none" and the HMAC
// family are never accepted (an HS256 token "signed" with the provider's
// public key must not pass).
var allowedAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

// leeway allows for clocks that differ a little.
const leeway = time.Minute

// OIDC verifies JWTs signed by an OpenID Connect provider. Discovery is
// go-oidc's; signatures and the standard claims are go-jose's; the key
// cache is keySet. Run loads the keys; until they load, Verify answers
// NotReady.
type OIDC struct {
	o      OIDCOptions
	keys   keySet
	passed passed

	mu      sync.Mutex
	ready   bool
	whyNot  string
	loadErr error
}

// NewOIDC returns a verifier; Run must run for it to become ready.
func NewOIDC(o OIDCOptions) *OIDC {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if o.RefetchGap == 0 {
		o.RefetchGap = 10 * time.Second
	}
	if o.Refresh == 0 {
		o.Refresh = time.Hour
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	v := &OIDC{o: o, keys: keySet{client: o.Client, minGap: o.RefetchGap}, passed: passed{max: 4096},
		whyNot: "the provider's keys have not loaded yet"}
	if o.JWKSURL != "" {
		v.keys.url.Store(&o.JWKSURL)
	}
	return v
}

// Ready reports whether the keys have loaded, and why not.
func (v *OIDC) Ready() (bool, string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.ready, v.whyNot
}

// Run discovers the key set and loads it, retrying with a backoff from 1 s
// to 30 s while the provider cannot be reached, then refreshes the keys
// every Refresh until ctx ends.
func (v *OIDC) Run(ctx context.Context) {
	delay := time.Second
	for !v.load(ctx) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
	t := time.NewTicker(v.o.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := v.keys.refresh(ctx, true); err != nil && ctx.Err() == nil {
				v.o.Logger.Warn("authentication: refreshing the provider's keys failed; the cached keys stay in use", zap.Error(err))
			}
		}
	}
}

// load runs discovery (once) and the first key fetch; true when ready.
func (v *OIDC) load(ctx context.Context) bool {
	err := v.discover(ctx)
	if err == nil {
		_, err = v.keys.refresh(ctx, true)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if err != nil {
		if v.loadErr == nil || v.loadErr.Error() != err.Error() {
			// Once per new cause: not a line every retry.
			v.o.Logger.Warn("authentication not ready: upgrades get 503 until the provider's keys load", zap.Error(err))
		}
		v.loadErr, v.whyNot = err, "authentication not ready: "+err.Error()
		return false
	}
	v.ready, v.whyNot = true, ""
	v.o.Logger.Info("authentication ready: the provider's keys loaded", zap.String("jwks_url", *v.keys.url.Load()),
		zap.Int("keys", len(v.keys.find(""))))
	return true
}

// discover finds the JWKS URL in the issuer's discovery document (go-oidc
// also checks that the document names the same issuer).
func (v *OIDC) discover(ctx context.Context) error {
	if v.keys.url.Load() != nil {
		return nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, v.o.Client), v.o.Issuer)
	if err != nil {
		return fmt.Errorf("discovery at %s: %w", v.o.Issuer, err)
	}
	var meta struct {
		JWKSURL string `json:"jwks_uri"`
	}
	if err := p.Claims(&meta); err != nil || meta.JWKSURL == "" {
		return fmt.Errorf("discovery at %s names no jwks_uri", v.o.Issuer)
	}
	v.keys.url.Store(&meta.JWKSURL)
	return nil
}

// Verify checks a JWT: its algorithm, its signature with the provider's
// key, its claims' names (readClaims), iss, aud (or client_id), nbf, exp
// and the required claims.
func (v *OIDC) Verify(ctx context.Context, token string) error {
	if ok, why := v.Ready(); !ok {
		return fail(NotReady, why)
	}
	digest := sha256.Sum256([]byte(token))
	if v.passed.has(digest, time.Now()) {
		return nil
	}
	sig, err := parseJWT(token)
	if err != nil {
		// The token's own values (here its alg) are never repeated: the
		// words go back to the client in its 401.
		var alg *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &alg) {
			return fail(BadSignature, "the signature algorithm is not allowed (RS, PS, ES and EdDSA are)")
		}
		return fail(Malformed, "not a signed JWT")
	}
	if len(sig.Signatures) != 1 {
		return fail(Malformed, "not one signature")
	}
	payload, err := v.verifySignature(ctx, sig)
	if err != nil {
		return err
	}
	c, err := readClaims(payload)
	if err != nil {
		return fail(Malformed, err.Error()) // the reader's own words only
	}
	if err := v.checkClaims(c); err != nil {
		return err
	}
	v.passed.add(digest, c.std.Expiry.Time().Add(leeway))
	return nil
}

// parseJWT parses a JWT in the JWS compact serialization, with an allowed
// algorithm: Verify and Subject read a token the same way.
func parseJWT(token string) (*jose.JSONWebSignature, error) {
	return jose.ParseSignedCompact(token, allowedAlgs)
}

// verifySignature finds the key the token names, refreshing the cache for
// a key not in it (rate-limited), and returns the payload once the
// signature verifies.
func (v *OIDC) verifySignature(ctx context.Context, sig *jose.JSONWebSignature) ([]byte, error) {
	kid := sig.Signatures[0].Header.KeyID
	keys := v.keys.find(kid)
	if len(keys) == 0 {
		v.keys.refresh(ctx, false)
		if keys = v.keys.find(kid); len(keys) == 0 {
			return nil, fail(UnknownKey, "the token is signed with a key the provider does not publish")
		}
	}
	for _, k := range keys {
		if payload, err := sig.Verify(k); err == nil {
			return payload, nil
		}
	}
	return nil, fail(BadSignature, "the signature does not verify")
}

func (v *OIDC) checkClaims(c claims) error {
	std := c.std
	if std.Expiry == nil {
		return fail(ClaimMissing, "exp")
	}
	switch err := std.ValidateWithLeeway(jwt.Expected{Issuer: v.o.Issuer}, leeway); {
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return fail(WrongIssuer, "the token was issued by another issuer")
	case errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, jwt.ErrIssuedInTheFuture):
		return fail(NotYetValid, "the token is not valid yet")
	case errors.Is(err, jwt.ErrExpired):
		return fail(Expired, "the token has expired")
	case err != nil:
		return fail(Malformed, "its claims do not validate")
	}
	if a := v.o.Audience; a != "" && !std.Audience.Contains(a) && c.claim("client_id") != a {
		return fail(WrongAudience, "the token is for another audience")
	}
	for _, want := range v.o.Claims {
		if !hasClaim(c.claim(want.Name), want.Value) {
			return fail(ClaimMissing, want.Name)
		}
	}
	return nil
}

// hasClaim reports whether a claim's value is want, or a list holding it.
func hasClaim(v any, want string) bool {
	switch v := v.(type) {
	case string:
		return v == want
	case []any:
		return slices.ContainsFunc(v, func(e any) bool { s, ok := e.(string); return ok && s == want })
	case bool, float64:
		return fmt.Sprint(v) == want
	}
	return false
}
