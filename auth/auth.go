// Package auth decides whether a credential may open a session: a JWT from
// an OpenID Connect provider (OIDC), or a token from a file (Static). The
// proxy takes the credential from the request, asks a Verifier, and answers
// 401 with the Failure's words when it is refused. Nothing here logs or
// returns the credential itself.
package auth

import (
	"context"
	"fmt"
	"strings"
)

// Verifier checks one credential.
type Verifier interface {
	// Verify returns nil for a credential that may connect, or a
	// *Failure saying why not (NotReady while keys have never loaded).
	Verify(ctx context.Context, token string) error
	// Ready reports whether Verify can accept anything yet, and why not.
	Ready() (bool, string)
}

// Why a credential was refused: the session log's "unauthorized: <why>" and
// the refusals metric's label.
type Why uint8

const (
	Missing       Why = iota + 1 // no credential in the request
	Malformed                    // not a JWT
	Expired                      // past its exp
	NotYetValid                  // before its nbf (or issued in the future)
	WrongIssuer                  // iss is not the configured issuer
	WrongAudience                // neither aud nor client_id is the configured audience
	BadSignature                 // the signature does not verify, or its algorithm is not allowed
	UnknownKey                   // signed with a key the provider does not publish
	ClaimMissing                 // a required claim is absent or has another value
	UnknownToken                 // not in the tokens file
	NotReady                     // the provider's keys have never loaded
)

var whyNames = [...]string{"", "missing", "malformed", "expired", "not yet valid", "wrong issuer", "wrong audience",
	"bad signature", "unknown key", "claim missing", "unknown token", "not ready"}

func (w Why) String() string { return whyNames[w] }

// Failure is a refused credential. Detail adds words for the client
// (error_description); it never holds the credential, or any value taken
// from it (its header's alg or kid, its claims), only the verifier's own
// words and the configured claim names.
type Failure struct {
	Why    Why
	Detail string
}

func (f *Failure) Error() string {
	if f.Detail == "" {
		return f.Why.String()
	}
	return f.Why.String() + ": " + f.Detail
}

func fail(w Why, detail string) error { return &Failure{Why: w, Detail: detail} }

// Claim is one required claim: the token's claim Name must be Value, or,
// when the claim is a list (groups), contain it.
type Claim struct{ Name, Value string }

// ParseClaims reads AUTH_REQUIRED_CLAIMS: "name=value" entries, such as
// "cognito:groups=cloudxr" or "email_verified=true".
func ParseClaims(list []string) ([]Claim, error) {
	var out []Claim
	for _, e := range list {
		name, value, ok := strings.Cut(strings.TrimSpace(e), "=")
		if !ok || name == "" || value == "" {
			return nil, fmt.Errorf("%q is not name=value", e)
		}
		out = append(out, Claim{name, value})
	}
	return out, nil
}

// authenticatedKey marks a request context whose credential was accepted.
type authenticatedKey struct{}

// WithAuthenticated returns ctx marked as carrying an accepted credential
// (the proxy's own pages then show what only users may see).
func WithAuthenticated(ctx context.Context) context.Context {
	return context.WithValue(ctx, authenticatedKey{}, true)
}

// Authenticated reports whether ctx was marked by WithAuthenticated.
func Authenticated(ctx context.Context) bool {
	ok, _ := ctx.Value(authenticatedKey{}).(bool)
	return ok
}

// Subject is the user a token names: a JWT's "sub" claim, read as the
// verifier reads it (readClaims); "" for a token that is not a JWT, such as
// a tokens file's. It does not verify the token: call it only on one
// Verify has accepted.
func Subject(token string) string {
	sig, err := parseJWT(token)
	if err != nil {
		return ""
	}
	c, err := readClaims(sig.UnsafePayloadWithoutVerification())
	if err != nil {
		return ""
	}
	return c.std.Subject
}
