package auth

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/oidctest"
)

func TestReadClaims(t *testing.T) {
	for _, c := range []struct {
		name, payload string
		err           error // nil: accepted
		sub           string
	}{
		{"plain", `{"sub":"alice","aud":["a","b"],"exp":1e9}`, nil, "alice"},
		{"an unregistered name in any case", `{"sub":"alice","Groups":["x"],"groups":["y"]}`, nil, "alice"},
		{"one name in different nested objects", `{"sub":"alice","a":{"x":1},"b":{"x":2},"c":[{"x":1},{"x":2}]}`, nil, "alice"},
		{"a registered name nested, in another case", `{"sub":"alice","profile":{"Sub":"bob","sub":"carol"}}`, nil, "alice"},
		{"a string value that looks like a name", `{"sub":"alice","x":["sub","Sub"],"y":"sub"}`, nil, "alice"},
		{"no sub", `{"iss":"https://i"}`, nil, ""},

		{"sub twice", `{"sub":"alice","sub":"bob"}`, errDuplicateClaim, ""},
		{"sub twice, once escaped", `{"sub":"alice","s\u0075b":"bob"}`, errDuplicateClaim, ""},
		{"an unregistered name twice", `{"sub":"alice","groups":["x"],"groups":["y"]}`, errDuplicateClaim, ""},
		{"a name twice in a nested object", `{"sub":"alice","a":{"x":1,"x":2}}`, errDuplicateClaim, ""},
		{"a name twice in an object in a list", `{"sub":"alice","a":[{"x":1,"x":2}]}`, errDuplicateClaim, ""},
		{"Sub beside sub", `{"sub":"alice","Sub":"bob"}`, errClaimCase, ""},
		{"Sub alone", `{"Sub":"bob"}`, errClaimCase, ""},
		{"SUB", `{"SUB":"bob"}`, errClaimCase, ""},
		{"ſub: long s folds to s", `{"sub":"alice","ſub":"bob"}`, errClaimCase, ""},
		{"EXP", `{"sub":"alice","exp":1,"EXP":9999999999}`, errClaimCase, ""},
		{"Client_Id", `{"sub":"alice","Client_Id":"x"}`, errClaimCase, ""},
		{"sub a number", `{"sub":1}`, errClaimType, ""},
		{"exp a string", `{"exp":"soon"}`, errClaimType, ""},
		{"aud a number", `{"aud":1}`, errClaimType, ""},
		{"a list", `["sub","alice"]`, errNotClaims, ""},
		{"a string", `"sub"`, errNotClaims, ""},
		{"empty", ``, errNotClaims, ""},
		{"two objects", `{"sub":"alice"}{"sub":"bob"}`, errNotClaims, ""},
		{"trailing garbage", `{"sub":"alice"}x`, errNotClaims, ""},
		{"unterminated", `{"sub":"alice"`, errNotClaims, ""},
		{"a number as a name", `{1:"alice"}`, errNotClaims, ""},
	} {
		got, err := readClaims([]byte(c.payload))
		if !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
			continue
		}
		if err == nil && got.std.Subject != c.sub {
			t.Errorf("%s: sub %q, want %q", c.name, got.std.Subject, c.sub)
		}
	}
}

// What readClaims accepts, encoding/json (case-insensitive, the last of
// equal names wins) reads the same: no registered claim has a second
// reading. Its errors are its own words, never the payload's.
func FuzzReadClaims(f *testing.F) {
	for _, s := range []string{`{"sub":"alice","Sub":"bob"}`, `{"sub":"a","aud":["x"],"exp":1,"nbf":0,"iat":0,"iss":"i","jti":"j"}`,
		`{"a":{"x":1},"b":{"x":[{"y":1},{"y":2}]}}`, `{"s\u0075b":"x","sub":"y"}`, `{"ſub":"x"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, err := readClaims(payload)
		if err != nil {
			if !ownWords(err) {
				t.Fatalf("the error %q is not the reader's own words", err)
			}
			return
		}
		var folded jwt.Claims
		if err := json.Unmarshal(payload, &folded); err != nil {
			t.Fatalf("%q: accepted, encoding/json refuses: %v", payload, err)
		}
		if !reflect.DeepEqual(folded, c.std) {
			t.Fatalf("%q: read as %+v, encoding/json reads %+v", payload, c.std, folded)
		}
	})
}

// ownWords reports whether err is one of readClaims' sentinels, alone or
// with a registered claim's name.
func ownWords(err error) bool {
	for _, e := range []error{errNotClaims, errDuplicateClaim, errClaimCase, errClaimType} {
		if err.Error() == e.Error() {
			return true
		}
		for _, r := range registered {
			if err.Error() == e.Error()+": "+r {
				return true
			}
		}
	}
	return false
}

// The verifier refuses a token whose claims have two readings, with a
// reason; Subject reads the accepted ones as the verifier does.
func TestOIDCRefusesAmbiguousClaims(t *testing.T) {
	p := provider(t)
	v := NewOIDC(OIDCOptions{Issuer: p.Issuer, Audience: oidctest.ClientID})
	running(t, v)
	signed := func(extra string) string {
		c := p.Claims()
		delete(c, "sub")
		rest, _ := json.Marshal(c)
		tok, err := p.SignPayload([]byte("{" + extra + "," + string(rest[1:])))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, c := range []struct{ extra, detail string }{
		{`"sub":"alice","Sub":"bob"`, "a claim is named like a registered claim in another letter case: sub"},
		{`"sub":"alice","sub":"bob"`, "a name appears twice in one object of its claims"},
		{`"sub":"alice","groups":{"x":1,"x":2}`, "a name appears twice in one object of its claims"},
	} {
		var f *Failure
		if err := v.Verify(context.Background(), signed(c.extra)); !errors.As(err, &f) || f.Why != Malformed || f.Detail != c.detail {
			t.Errorf("%s: %v, want malformed: %s", c.extra, err, c.detail)
		}
	}
	ok := signed(`"sub":"alice","a":{"x":1},"b":{"x":2}`)
	if err := v.Verify(context.Background(), ok); err != nil {
		t.Fatalf("a token with one name in two objects: %v", err)
	}
	if s := Subject(ok); s != "alice" {
		t.Errorf("Subject %q", s)
	}
}
