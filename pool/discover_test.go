package pool

import (
	"context"
	"slices"
	"sync"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
)

// Discover reports the union of its sources, once per change.
func TestDiscoverJoinsSources(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var got [][]string
	Discover(ctx, []Source{Static{"b:1", "a:1"}, Static{"a:1", "c:2"}}, func(rs []string) {
		mu.Lock()
		got = append(got, rs)
		mu.Unlock()
	})
	last := got[len(got)-1]
	if !slices.Equal(last, []string{"a:1", "b:1", "c:2"}) {
		t.Errorf("union %v", last)
	}
}

// An EndpointSlice's ready endpoints at the named port count; not-ready
// ones and slices without the port do not.
func TestEndpointSliceRuntimes(t *testing.T) {
	yes, no := true, false
	name, other := "signaling", "metrics"
	port, port2 := int32(49100), int32(9100)
	slice := func(pname *string, p *int32, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{Ports: []discoveryv1.EndpointPort{{Name: pname, Port: p}}, Endpoints: eps}
	}
	objs := []any{
		slice(&name, &port,
			discoveryv1.Endpoint{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: &yes}},
			discoveryv1.Endpoint{Addresses: []string{"10.0.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: &no}},
			discoveryv1.Endpoint{Addresses: []string{"fd00::3"}}),
		slice(&other, &port2, discoveryv1.Endpoint{Addresses: []string{"10.0.0.4"}}),
	}
	e := &EndpointSlices{Port: "signaling"}
	if got := e.runtimes(objs); !slices.Equal(got, []string{"10.0.0.1:49100", "[fd00::3]:49100"}) {
		t.Errorf("by name: %v", got)
	}
	e.Port = "49200"
	if got := e.runtimes(objs); len(got) != 3 {
		t.Errorf("by number, every slice's ready endpoints at it: %v", got)
	}
}
