package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-jose/go-jose/v4/jwt"
)

// A token's claims are read here and only here, by the verifier and by
// Subject alike, so that the user the pool sees is the one the verifier
// checked. Read exactly: encoding/json matches a struct's field names
// case-insensitively, under Unicode folding ("Sub" and "ſub" are "sub"),
// and keeps the last of two equal names, while go-jose's decoder is
// case-sensitive and refuses duplicates. A payload that two readers could
// read differently is refused outright: a name twice in one object, or a
// top-level name that is a registered claim's in another letter case.
// (encoding/json/v2's jsontext refuses duplicates itself, but still needs
// GOEXPERIMENT=jsonv2 in Go 1.26.)

// Why a payload's claims were refused. The messages are the reader's own
// words and the registered claims' names, never a value from the token:
// they go back to the client in its 401.
var (
	errNotClaims      = errors.New("its claims are not a JSON object")
	errDuplicateClaim = errors.New("a name appears twice in one object of its claims")
	errClaimCase      = errors.New("a claim is named like a registered claim in another letter case")
	errClaimType      = errors.New("a registered claim has the wrong type")
)

// registered are the claims read by name: RFC 7519 section 4.1's, and
// client_id (Amazon Cognito's audience).
var registered = [...]string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id"}

// claims is a token's payload, read exactly.
type claims struct {
	std jwt.Claims
	raw map[string]json.RawMessage // every claim, by its exact name
}

// readClaims reads a JWT's payload (checkNames says what it refuses).
func readClaims(payload []byte) (claims, error) {
	var c claims
	if err := checkNames(payload); err != nil {
		return c, err
	}
	// A map's keys are matched exactly, and checkNames has refused
	// duplicates.
	if json.Unmarshal(payload, &c.raw) != nil {
		return c, errNotClaims
	}
	for _, f := range []struct {
		name string
		into any
	}{{"iss", &c.std.Issuer}, {"sub", &c.std.Subject}, {"aud", &c.std.Audience}, {"exp", &c.std.Expiry},
		{"nbf", &c.std.NotBefore}, {"iat", &c.std.IssuedAt}, {"jti", &c.std.ID}} {
		if v, ok := c.raw[f.name]; ok && json.Unmarshal(v, f.into) != nil {
			return c, fmt.Errorf("%w: %s", errClaimType, f.name)
		}
	}
	return c, nil
}

// claim is the value of the claim with exactly this name: a string, a
// float64, a bool, a []any, a map[string]any, or nil when absent.
func (c claims) claim(name string) any {
	var v any
	if raw, ok := c.raw[name]; ok {
		json.Unmarshal(raw, &v) // valid: the whole payload was
	}
	return v
}

// checkNames walks the payload's JSON tokens: it must be one object, no
// object in it may name a member twice (the same name in two different
// objects is fine), and no top-level member may be named like a registered
// claim in another case (strings.EqualFold folds as encoding/json does).
func checkNames(payload []byte) error {
	dec := json.NewDecoder(bytes.NewReader(payload))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errNotClaims
	}
	// One frame per open object or array; names is nil for an array.
	type frame struct {
		names   map[string]bool
		wantKey bool
	}
	stack := []frame{{names: map[string]bool{}, wantKey: true}}
	for len(stack) > 0 {
		t, err := dec.Token()
		if err != nil {
			return errNotClaims
		}
		top := &stack[len(stack)-1]
		if d, ok := t.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		if top.names != nil && top.wantKey {
			name, _ := t.(string) // the decoder allows only a string here
			if top.names[name] {
				return errDuplicateClaim
			}
			if len(stack) == 1 {
				if err := registeredCase(name); err != nil {
					return err
				}
			}
			top.names[name], top.wantKey = true, false
			continue
		}
		top.wantKey = true // a value: the next token in an object is a name
		switch t {
		case json.Delim('{'):
			stack = append(stack, frame{names: map[string]bool{}, wantKey: true})
		case json.Delim('['):
			stack = append(stack, frame{})
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return errNotClaims // something after the object
	}
	return nil
}

// registeredCase refuses a name that is a registered claim's in another
// letter case.
func registeredCase(name string) error {
	for _, r := range registered {
		if name != r && strings.EqualFold(name, r) {
			return fmt.Errorf("%w: %s", errClaimCase, r)
		}
	}
	return nil
}
