package pool

import (
	"context"
	"net"
	"strconv"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// EndpointSlices finds a Service's runtimes in its EndpointSlices, watched
// with a client-go informer, so runtimes that come and go are seen within
// a second or two. An endpoint counts when it is ready (or says nothing);
// its port is the slice's port named Port or, when Port is a number and no
// port has that name, that number.
type EndpointSlices struct {
	Client    rest.Interface // the discovery.k8s.io/v1 client (Clientset.DiscoveryV1().RESTClient())
	Namespace string
	Service   string
	Port      string
}

func (e *EndpointSlices) String() string { return "kubernetes:" + e.Service + "." + e.Namespace }

// Run implements Source.
func (e *EndpointSlices) Run(ctx context.Context, set func([]string)) {
	lw := cache.NewFilteredListWatchFromClient(e.Client, "endpointslices", e.Namespace, func(o *metav1.ListOptions) {
		o.LabelSelector = discoveryv1.LabelServiceName + "=" + e.Service
	})
	inf := cache.NewSharedIndexInformer(lw, &discoveryv1.EndpointSlice{}, 10*time.Minute, cache.Indexers{})
	changed := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: poke, DeleteFunc: poke,
		UpdateFunc: func(_, n any) { poke(n) }})
	go inf.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return
	}
	poke(nil)
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
			set(e.runtimes(inf.GetStore().List()))
		}
	}
}

// runtimes is the ready endpoints' addresses at the runtime port.
func (e *EndpointSlices) runtimes(objs []any) []string {
	var out []string
	for _, o := range objs {
		s, ok := o.(*discoveryv1.EndpointSlice)
		if !ok {
			continue
		}
		port, ok := e.portOf(s)
		if !ok {
			continue
		}
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, a := range ep.Addresses {
				out = append(out, net.JoinHostPort(a, port))
			}
		}
	}
	return out
}

func (e *EndpointSlices) portOf(s *discoveryv1.EndpointSlice) (string, bool) {
	for _, p := range s.Ports {
		if p.Name != nil && *p.Name == e.Port && p.Port != nil {
			return strconv.Itoa(int(*p.Port)), true
		}
	}
	if _, err := strconv.Atoi(e.Port); err == nil {
		return e.Port, true
	}
	return "", false
}
