package pool

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// fakeAPI is the Leases of an API server in memory, with its optimistic
// concurrency: a create of an existing Lease is AlreadyExists, an update at
// an old resourceVersion is a Conflict.
type fakeAPI struct {
	mu     sync.Mutex
	rv     int
	leases map[string]*coordinationv1.Lease
}

func newFakeAPI() *fakeAPI { return &fakeAPI{leases: map[string]*coordinationv1.Lease{}} }

var leasesGR = schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}

func (f *fakeAPI) Get(_ context.Context, name string, _ metav1.GetOptions) (*coordinationv1.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.leases[name]
	if !ok {
		return nil, apierrors.NewNotFound(leasesGR, name)
	}
	return l.DeepCopy(), nil
}

func (f *fakeAPI) Create(_ context.Context, l *coordinationv1.Lease, _ metav1.CreateOptions) (*coordinationv1.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.leases[l.Name]; ok {
		return nil, apierrors.NewAlreadyExists(leasesGR, l.Name)
	}
	return f.store(l), nil
}

func (f *fakeAPI) Update(_ context.Context, l *coordinationv1.Lease, _ metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old, ok := f.leases[l.Name]
	if !ok {
		return nil, apierrors.NewNotFound(leasesGR, l.Name)
	}
	if old.ResourceVersion != l.ResourceVersion {
		return nil, apierrors.NewConflict(leasesGR, l.Name, fmt.Errorf("resourceVersion %s, not %s", old.ResourceVersion, l.ResourceVersion))
	}
	return f.store(l), nil
}

func (f *fakeAPI) store(l *coordinationv1.Lease) *coordinationv1.Lease {
	f.rv++
	c := l.DeepCopy()
	c.ResourceVersion = fmt.Sprint(f.rv)
	f.leases[c.Name] = c
	return c.DeepCopy()
}

func (f *fakeAPI) List(context.Context, metav1.ListOptions) (*coordinationv1.LeaseList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &coordinationv1.LeaseList{}
	for _, l := range f.leases {
		out.Items = append(out.Items, *l.DeepCopy())
	}
	sort.Slice(out.Items, func(i, j int) bool { return out.Items[i].Name < out.Items[j].Name })
	return out, nil
}

// cutAPI is a replica's way to the API server that can be cut: then every
// call hangs until its context ends (a partition: no answer, no reset), or,
// with fast, fails at once (a refused connection).
type cutAPI struct {
	LeaseClient
	cut, fast atomic.Bool
}

var errRefused = fmt.Errorf("connect: connection refused")

func (c *cutAPI) wait(ctx context.Context) error {
	if !c.cut.Load() {
		return nil
	}
	if c.fast.Load() {
		return errRefused
	}
	<-ctx.Done()
	return ctx.Err()
}

func (c *cutAPI) Get(ctx context.Context, name string, o metav1.GetOptions) (*coordinationv1.Lease, error) {
	if err := c.wait(ctx); err != nil {
		return nil, err
	}
	return c.LeaseClient.Get(ctx, name, o)
}

func (c *cutAPI) Create(ctx context.Context, l *coordinationv1.Lease, o metav1.CreateOptions) (*coordinationv1.Lease, error) {
	if err := c.wait(ctx); err != nil {
		return nil, err
	}
	return c.LeaseClient.Create(ctx, l, o)
}

func (c *cutAPI) Update(ctx context.Context, l *coordinationv1.Lease, o metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	if err := c.wait(ctx); err != nil {
		return nil, err
	}
	return c.LeaseClient.Update(ctx, l, o)
}

func (c *cutAPI) List(ctx context.Context, o metav1.ListOptions) (*coordinationv1.LeaseList, error) {
	if err := c.wait(ctx); err != nil {
		return nil, err
	}
	return c.LeaseClient.List(ctx, o)
}
