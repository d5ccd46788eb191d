// Package oidctest runs a real OpenID Connect provider on loopback for the
// tests: zitadel's op package with its example storage, serving discovery,
// JWKS and a token endpoint. Tokens come from a real client-credentials
// grant; the wrapper only makes that grant issue JWT access tokens and lets
// the tests rotate the signing key and sign tokens with it (for the cases a
// provider would never issue: expired, wrong audience, ...).
package oidctest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// The example storage's service user, allowed the client-credentials grant.
const (
	ClientID = "sid1"
	secret   = "verysecret"
)

// Provider is a running OpenID provider.
type Provider struct {
	Issuer  string // http://127.0.0.1:PORT, or https:// with NewTLS
	addr    string
	handler http.Handler
	store   *store
	cert    *tls.Certificate // with NewTLS
	client  *http.Client     // trusts cert

	mu  sync.Mutex
	srv *http.Server
	ln  net.Listener
}

// New makes a provider on a free loopback port, not yet serving: Start
// serves it (the tests can thus know the issuer before the provider runs).
func New() (*Provider, error) { return newProvider(nil) }

// NewTLS is New over HTTPS with cert (for 127.0.0.1), as a real provider
// is reached; a client must trust cert (SSL_CERT_FILE for the proxy).
func NewTLS(cert *tls.Certificate) (*Provider, error) { return newProvider(cert) }

func newProvider(cert *tls.Certificate) (*Provider, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &Provider{Issuer: "http://" + addr, addr: addr, cert: cert, client: http.DefaultClient}
	if cert != nil {
		pool := x509.NewCertPool()
		pool.AddCert(cert.Leaf)
		p.Issuer = "https://" + addr
		p.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	if p.store, err = newStore(p.Issuer); err != nil {
		return nil, err
	}
	cfg := &op.Config{CryptoKey: sha256.Sum256([]byte("oidctest")), CodeMethodS256: true, AuthMethodPost: true}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	prov, err := op.NewProvider(cfg, p.store, op.StaticIssuer(p.Issuer), op.WithAllowInsecure(), op.WithLogger(quiet))
	if err != nil {
		return nil, err
	}
	p.handler = prov
	return p, nil
}

// Started is a provider serving for the test, stopped when it ends.
func Started(t testing.TB) *Provider {
	t.Helper()
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// Start serves the provider on its address (again after Stop).
func (p *Provider) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil {
		return nil
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	if p.cert != nil {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*p.cert}})
	}
	p.ln, p.srv = ln, &http.Server{Handler: p.handler, ReadHeaderTimeout: 5 * time.Second}
	go p.srv.Serve(ln)
	return nil
}

// Stop stops serving; the provider's keys and state stay for Start.
func (p *Provider) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil {
		p.srv.Close()
		p.srv = nil
	}
	p.client.CloseIdleConnections()
}

// Token runs the client-credentials grant at the token endpoint and
// returns the JWT access token.
func (p *Provider) Token() (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"}}
	req, err := http.NewRequest(http.MethodPost, p.Issuer+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(ClientID, secret)
	resp, err := p.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil || strings.Count(out.AccessToken, ".") != 2 {
		return "", fmt.Errorf("token endpoint: %s %s", resp.Status, body)
	}
	return out.AccessToken, nil
}

// Rotate makes a new signing key current; the old one stays published.
func (p *Provider) Rotate() error { return p.store.addKey() }

// Sign signs claims with the provider's current key, as it would sign a
// token; the tests use it for tokens the provider would not issue.
func (p *Provider) Sign(claims map[string]any) (string, error) {
	k := p.store.current()
	return SignWith(k.key, k.id, jose.RS256, claims)
}

// PublicKey is the current key's public half, for the HS256 forgery.
func (p *Provider) PublicKey() *rsa.PublicKey { return &p.store.current().key.PublicKey }

// SignPayload signs a payload as it is, with the provider's current key:
// for claims a map cannot hold (a name twice, or in two letter cases).
func (p *Provider) SignPayload(payload []byte) (string, error) {
	k := p.store.current()
	s, err := signer(k.key, k.id, jose.RS256)
	if err != nil {
		return "", err
	}
	obj, err := s.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

// SignWith signs claims with any key, for the forged cases.
func SignWith(key any, kid string, alg jose.SignatureAlgorithm, claims map[string]any) (string, error) {
	s, err := signer(key, kid, alg)
	if err != nil {
		return "", err
	}
	return jwt.Signed(s).Claims(claims).Serialize()
}

func signer(key any, kid string, alg jose.SignatureAlgorithm) (jose.Signer, error) {
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), kid)
	}
	return jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
}

// Claims are the claims of a token the provider would issue now, to alter.
func (p *Provider) Claims() map[string]any {
	now := time.Now()
	return map[string]any{"iss": p.Issuer, "sub": ClientID, "aud": []string{ClientID}, "client_id": ClientID,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}
}

// store is the example storage with the signing keys and the client
// credentials grant the tests need.
type store struct {
	*storage.Storage
	mu   sync.Mutex
	keys []*signingKey // the last is current
}

func newStore(issuer string) (*store, error) {
	s := &store{Storage: storage.NewStorage(storage.NewUserStore(issuer))}
	return s, s.addKey()
}

func (s *store) addKey() error {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, &signingKey{id: fmt.Sprintf("key-%d", len(s.keys)+1), key: k})
	return nil
}

func (s *store) current() *signingKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[len(s.keys)-1]
}

func (s *store) SigningKey(context.Context) (op.SigningKey, error) { return s.current(), nil }

func (s *store) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *store) KeySet(context.Context) ([]op.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]op.Key, len(s.keys))
	for i, k := range s.keys {
		out[i] = publicKey{k}
	}
	return out, nil
}

// ClientCredentials is the example's, with JWT access tokens.
func (s *store) ClientCredentials(ctx context.Context, id, secret string) (op.Client, error) {
	c, err := s.Storage.ClientCredentials(ctx, id, secret)
	if err != nil {
		return nil, err
	}
	return jwtClient{c}, nil
}

type jwtClient struct{ op.Client }

func (jwtClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }

type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ *signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }
