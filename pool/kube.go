package pool

import (
	"context"
	"sync"

	coordinationv1 "k8s.io/api/coordination/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
)

// Kube is the pool's Kubernetes API client: REST clients for the two API
// groups it uses, coordination.k8s.io/v1 (Leases) and discovery.k8s.io/v1
// (EndpointSlices), over a scheme that knows only their types. client-go's
// typed clients register every API group and their apply configurations,
// which would add some 25 MB to the program.
type Kube struct {
	leases, slices rest.Interface
}

// kubeScheme is made on first use: a proxy without a pool in Kubernetes
// never pays for it.
var kubeScheme = sync.OnceValue(func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := coordinationv1.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := discoveryv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
})

// NewKube makes the clients from a REST config (in-cluster or KUBECONFIG).
func NewKube(rc *rest.Config) (*Kube, error) {
	client := func(gv schema.GroupVersion) (rest.Interface, error) {
		c := rest.CopyConfig(rc)
		c.GroupVersion, c.APIPath = &gv, "/apis"
		c.NegotiatedSerializer = serializer.NewCodecFactory(kubeScheme()).WithoutConversion()
		if c.UserAgent == "" {
			c.UserAgent = "cloudxr-wss-proxy " + rest.DefaultKubernetesUserAgent()
		}
		return rest.RESTClientFor(c)
	}
	l, err := client(coordinationv1.SchemeGroupVersion)
	if err != nil {
		return nil, err
	}
	s, err := client(discoveryv1.SchemeGroupVersion)
	if err != nil {
		return nil, err
	}
	return &Kube{leases: l, slices: s}, nil
}

// Discovery is the discovery.k8s.io/v1 client, for EndpointSlices.
func (k *Kube) Discovery() rest.Interface { return k.slices }

// Leases is a LeaseClient for namespace.
func (k *Kube) Leases(namespace string) LeaseClient { return &leaseREST{c: k.leases, ns: namespace} }

type leaseREST struct {
	c  rest.Interface
	ns string
}

func (r *leaseREST) Get(ctx context.Context, name string, _ metav1.GetOptions) (*coordinationv1.Lease, error) {
	out := &coordinationv1.Lease{}
	return out, r.c.Get().Namespace(r.ns).Resource("leases").Name(name).Do(ctx).Into(out)
}

func (r *leaseREST) Create(ctx context.Context, l *coordinationv1.Lease, _ metav1.CreateOptions) (*coordinationv1.Lease, error) {
	out := &coordinationv1.Lease{}
	return out, r.c.Post().Namespace(r.ns).Resource("leases").Body(l).Do(ctx).Into(out)
}

func (r *leaseREST) Update(ctx context.Context, l *coordinationv1.Lease, _ metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	out := &coordinationv1.Lease{}
	return out, r.c.Put().Namespace(r.ns).Resource("leases").Name(l.Name).Body(l).Do(ctx).Into(out)
}

func (r *leaseREST) List(ctx context.Context, opts metav1.ListOptions) (*coordinationv1.LeaseList, error) {
	out := &coordinationv1.LeaseList{}
	return out, r.c.Get().Namespace(r.ns).Resource("leases").Param("labelSelector", opts.LabelSelector).Do(ctx).Into(out)
}
