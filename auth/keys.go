package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// keySet is the provider's signing keys from its JWKS URL, cached. A token
// naming a key not in the cache refreshes it, at most once per minGap: a
// flood of made-up key ids must not become a flood of requests to the
// provider. A failed fetch keeps the keys in the cache, so the provider
// going down does not lock out users whose tokens it signed before.
type keySet struct {
	client *http.Client
	minGap time.Duration

	url  atomic.Pointer[string] // known after discovery
	keys atomic.Pointer[jose.JSONWebKeySet]

	mu        sync.Mutex
	lastFetch time.Time
	inFlight  chan struct{} // closed when the fetch in flight ends
	lastErr   error         // that fetch's error
}

// find returns the cached keys with kid (every key when kid is "").
func (k *keySet) find(kid string) []jose.JSONWebKey {
	set := k.keys.Load()
	if set == nil {
		return nil
	}
	if kid == "" {
		return set.Keys
	}
	return set.Key(kid)
}

// refresh fetches the keys now, unless a fetch began less than minGap ago
// (it then waits for one in flight, if any, and returns). It reports
// whether the keys were fetched.
func (k *keySet) refresh(ctx context.Context, force bool) (bool, error) {
	k.mu.Lock()
	if ch := k.inFlight; ch != nil {
		k.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false, ctx.Err()
		}
		k.mu.Lock()
		err := k.lastErr
		k.mu.Unlock()
		return err == nil, err
	}
	if !force && time.Since(k.lastFetch) < k.minGap {
		k.mu.Unlock()
		return false, nil
	}
	k.lastFetch = time.Now()
	ch := make(chan struct{})
	k.inFlight = ch
	k.mu.Unlock()

	set, err := k.fetch(ctx)
	if err == nil {
		k.keys.Store(set)
	}
	k.mu.Lock()
	k.inFlight, k.lastErr = nil, err
	k.mu.Unlock()
	close(ch)
	return err == nil, err
}

func (k *keySet) fetch(ctx context.Context) (*jose.JSONWebKeySet, error) {
	url := k.url.Load()
	if url == nil {
		return nil, fmt.Errorf("no JWKS URL yet")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching the signing keys: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching the signing keys from %s: %s", *url, resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("decoding the signing keys from %s: %w", *url, err)
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("the key set at %s is empty", *url)
	}
	return &set, nil
}
