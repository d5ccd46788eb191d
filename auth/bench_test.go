package auth

import (
	"context"
	"testing"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/oidctest"
)

// BenchmarkVerify is a token's verification with the keys cached: the
// first time the proxy sees the token, and again (a reconnecting headset).
func BenchmarkVerify(b *testing.B) {
	p, err := oidctest.New()
	if err != nil {
		b.Fatal(err)
	}
	p.Start()
	defer p.Stop()
	v := NewOIDC(OIDCOptions{Issuer: p.Issuer, Audience: oidctest.ClientID})
	if !v.load(context.Background()) {
		b.Fatal("keys did not load")
	}
	defer v.o.Client.CloseIdleConnections()
	tok, err := p.Token()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("first sight", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v.passed.mu.Lock()
			clear(v.passed.m)
			v.passed.mu.Unlock()
			if err := v.Verify(context.Background(), tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("again", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := v.Verify(context.Background(), tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
