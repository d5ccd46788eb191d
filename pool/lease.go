package pool

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Leases is the Store of several replicas: one coordination.k8s.io/v1
// Lease per runtime in the proxy's namespace. A hold is taken by creating
// the Lease, or by updating it with the resourceVersion it was read at: of
// two replicas taking one runtime at once, the API server accepts one and
// answers the other 409 Conflict (or AlreadyExists), which is "not taken".
// A busy hold's Lease lasts Options.Lease and is renewed while the session
// lives, so the holds of a replica that dies expire by themselves.
//
// The Lease's holderIdentity is the owner's key (a hash, never a token's
// subject or the cookie itself); annotations say the runtime, the state
// (busy or grace) and which replica wrote it, for an operator's kubectl.
type Leases struct {
	client  LeaseClient
	replica string // this replica's name (the pod's), for the annotation
}

// LeaseClient is what Leases asks of the API: the calls of client-go's
// typed LeaseInterface it uses, which that interface (and Kube's Leases)
// provides.
type LeaseClient interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*coordinationv1.Lease, error)
	Create(ctx context.Context, l *coordinationv1.Lease, opts metav1.CreateOptions) (*coordinationv1.Lease, error)
	Update(ctx context.Context, l *coordinationv1.Lease, opts metav1.UpdateOptions) (*coordinationv1.Lease, error)
	List(ctx context.Context, opts metav1.ListOptions) (*coordinationv1.LeaseList, error)
}

// NewLeases uses client, in the proxy's namespace, as replica.
func NewLeases(client LeaseClient, replica string) *Leases {
	return &Leases{client: client, replica: replica}
}

// Labels and annotations of the pool's Leases.
const (
	managedBy       = "app.kubernetes.io/managed-by"
	managedByValue  = "cloudxr-wss-proxy"
	annotRuntime    = "cloudxr-wss-proxy/runtime"
	annotState      = "cloudxr-wss-proxy/state"
	annotReplica    = "cloudxr-wss-proxy/replica"
	stateBusy       = "busy"
	stateGrace      = "grace"
	leaseNamePrefix = "cxr-runtime-"
)

// LeaseName is the Lease of runtime: a hash, since a runtime's address is
// not a valid object name.
func LeaseName(runtime string) string {
	sum := sha256.Sum256([]byte(runtime))
	return leaseNamePrefix + hex.EncodeToString(sum[:10])
}

// Take implements Store.
func (s *Leases) Take(ctx context.Context, runtime, owner string, now, until time.Time) (bool, error) {
	l, err := s.client.Get(ctx, LeaseName(runtime), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: LeaseName(runtime), Labels: map[string]string{managedBy: managedByValue}}}
		s.set(l, runtime, owner, stateBusy, now, now, until)
		_, err = s.client.Create(ctx, l, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return false, nil // another replica created it first
		}
		return err == nil, err
	case err != nil:
		return false, fmt.Errorf("reading the Lease of %s: %w", runtime, err)
	}
	if h := holdOf(l); h.Held(now) && (h.Busy || h.Owner != owner) {
		return false, nil
	}
	s.set(l, runtime, owner, stateBusy, now, now, until)
	_, err = s.client.Update(ctx, l, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		return false, nil // changed since it was read: another replica took it
	}
	return err == nil, err
}

// Renew implements Store.
func (s *Leases) Renew(ctx context.Context, runtime, owner string, until time.Time) error {
	return s.change(ctx, runtime, owner, func(l *coordinationv1.Lease, h Hold) {
		s.set(l, runtime, owner, stateBusy, h.Since, until.Add(-leaseSeconds(l)), until)
	})
}

// Release implements Store.
func (s *Leases) Release(ctx context.Context, runtime, owner string, now, until time.Time) error {
	return s.change(ctx, runtime, owner, func(l *coordinationv1.Lease, _ Hold) {
		s.set(l, runtime, owner, stateGrace, now, now, until)
	})
}

// change rewrites owner's busy Lease of runtime, read again and retried
// while another writer's update conflicts with it.
func (s *Leases) change(ctx context.Context, runtime, owner string, f func(*coordinationv1.Lease, Hold)) error {
	for range 5 {
		l, err := s.client.Get(ctx, LeaseName(runtime), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return ErrNotHeld
		}
		if err != nil {
			return fmt.Errorf("reading the Lease of %s: %w", runtime, err)
		}
		h := holdOf(l)
		if !h.Busy || h.Owner != owner {
			return ErrNotHeld
		}
		f(l, h)
		_, err = s.client.Update(ctx, l, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) {
			return err
		}
	}
	return fmt.Errorf("the Lease of %s: conflicting updates", runtime)
}

// Holds implements Store.
func (s *Leases) Holds(ctx context.Context) (map[string]Hold, error) {
	list, err := s.client.List(ctx, metav1.ListOptions{LabelSelector: managedBy + "=" + managedByValue})
	if err != nil {
		return nil, fmt.Errorf("listing the pool's Leases: %w", err)
	}
	out := make(map[string]Hold, len(list.Items))
	for i := range list.Items {
		l := &list.Items[i]
		if r := l.Annotations[annotRuntime]; r != "" && LeaseName(r) == l.Name {
			out[r] = holdOf(l)
		}
	}
	return out, nil
}

// set writes a hold into l: renewed at renewed, lasting until until.
func (s *Leases) set(l *coordinationv1.Lease, runtime, owner, state string, since, renewed, until time.Time) {
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[annotRuntime] = runtime
	l.Annotations[annotState] = state
	l.Annotations[annotReplica] = s.replica
	seconds := int32(max(1, until.Sub(renewed).Round(time.Second)/time.Second))
	acquired, renew := metav1.NewMicroTime(since), metav1.NewMicroTime(renewed)
	l.Spec.HolderIdentity = &owner
	l.Spec.LeaseDurationSeconds = &seconds
	l.Spec.AcquireTime = &acquired
	l.Spec.RenewTime = &renew
}

// holdOf reads the hold a Lease records.
func holdOf(l *coordinationv1.Lease) Hold {
	var h Hold
	if l.Spec.HolderIdentity == nil || l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return h
	}
	h.Owner = *l.Spec.HolderIdentity
	h.Busy = l.Annotations[annotState] == stateBusy
	if l.Spec.AcquireTime != nil {
		h.Since = l.Spec.AcquireTime.Time
	}
	h.Until = l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)
	return h
}

func leaseSeconds(l *coordinationv1.Lease) time.Duration {
	if l.Spec.LeaseDurationSeconds == nil {
		return 0
	}
	return time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
}
