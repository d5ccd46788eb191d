package pool

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
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
// A busy hold's Lease lasts Options.Lease and is renewed while its sessions
// live, so the holds of a replica that dies expire by themselves.
//
// How long a Lease still counts is judged as client-go's leader election
// judges it: from when this process saw it change (its resourceVersion),
// plus its duration, never from the renewTime another replica's clock
// wrote. A replica whose clock runs behind thus cannot make its live claims
// look expired to the others; the holder, for its part, stops using a
// claim by a deadline it keeps in its own clock (see Claim).
//
// The Lease's holderIdentity is the owner's key (a hash, never a token's
// subject or the cookie itself); annotations say the runtime, the state
// (busy, grace or free), which replicas' sessions use it and which replica
// wrote it last, for an operator's kubectl.
type Leases struct {
	client  LeaseClient
	replica string // this replica's name (the pod's), for the annotation

	mu   sync.Mutex
	seen map[string]sighting // by Lease name: bounded by the pool's Leases
}

// sighting is when this process first saw a Lease at a resourceVersion.
type sighting struct {
	version string
	at      time.Time
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
	return &Leases{client: client, replica: replica, seen: map[string]sighting{}}
}

// Labels and annotations of the pool's Leases.
const (
	managedBy       = "app.kubernetes.io/managed-by"
	managedByValue  = "cloudxr-wss-proxy"
	annotRuntime    = "cloudxr-wss-proxy/runtime"
	annotState      = "cloudxr-wss-proxy/state"
	annotReplica    = "cloudxr-wss-proxy/replica"
	annotHolders    = "cloudxr-wss-proxy/holders"
	stateBusy       = "busy"
	stateGrace      = "grace"
	stateFree       = "free"
	leaseNamePrefix = "cxr-runtime-"
)

// LeaseName is the Lease of runtime: a hash, since a runtime's address is
// not a valid object name.
func LeaseName(runtime string) string {
	sum := sha256.Sum256([]byte(runtime))
	return leaseNamePrefix + hex.EncodeToString(sum[:10])
}

// Take implements Store.
func (s *Leases) Take(ctx context.Context, runtime, owner, replica string, join bool, now, until time.Time) (bool, error) {
	l, err := s.client.Get(ctx, LeaseName(runtime), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if join {
			return false, nil
		}
		l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: LeaseName(runtime), Labels: map[string]string{managedBy: managedByValue}}}
		s.set(l, runtime, owner, stateBusy, []string{replica}, now, now, until)
		out, err := s.client.Create(ctx, l, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return false, nil // another replica created it first
		}
		if err == nil {
			s.wrote(out, now)
		}
		return err == nil, err
	case err != nil:
		return false, fmt.Errorf("reading the Lease of %s: %w", runtime, err)
	}
	h := s.holdOf(l, now)
	held := h.Held(now)
	switch {
	case join:
		if !held || !h.Busy || h.Owner != owner {
			return false, nil
		}
		s.set(l, runtime, owner, stateBusy, addHolder(h.Holders, replica), h.Since, now, until)
	case held && (h.Busy || h.Owner != owner):
		return false, nil
	default:
		s.set(l, runtime, owner, stateBusy, []string{replica}, now, now, until)
	}
	out, err := s.client.Update(ctx, l, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		return false, nil // changed since it was read: another replica took it
	}
	if err == nil {
		s.wrote(out, now)
	}
	return err == nil, err
}

// Renew implements Store.
func (s *Leases) Renew(ctx context.Context, runtime, owner, replica string, now, until time.Time) error {
	return s.change(ctx, runtime, owner, replica, now, func(l *coordinationv1.Lease, h Hold) {
		s.set(l, runtime, owner, stateBusy, h.Holders, h.Since, now, until)
	})
}

// Release implements Store.
func (s *Leases) Release(ctx context.Context, runtime, owner, replica string, now, graceUntil time.Time) error {
	return s.change(ctx, runtime, owner, replica, now, func(l *coordinationv1.Lease, h Hold) {
		rest := slices.DeleteFunc(slices.Clone(h.Holders), func(r string) bool { return r == replica })
		switch {
		case len(rest) > 0: // another replica's sessions still use it: theirs to renew
			l.Annotations[annotHolders] = strings.Join(rest, ",")
			l.Annotations[annotReplica] = s.replica
		case graceUntil.IsZero():
			s.set(l, runtime, "", stateFree, nil, now, now, now)
		default:
			s.set(l, runtime, owner, stateGrace, nil, now, now, graceUntil)
		}
	})
}

// change rewrites owner's busy Lease of runtime held through replica, read
// again and retried while another writer's update conflicts with it.
func (s *Leases) change(ctx context.Context, runtime, owner, replica string, now time.Time, f func(*coordinationv1.Lease, Hold)) error {
	for range 5 {
		l, err := s.client.Get(ctx, LeaseName(runtime), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return ErrNotHeld
		}
		if err != nil {
			return fmt.Errorf("reading the Lease of %s: %w", runtime, err)
		}
		h := s.holdOf(l, now)
		if !h.busyFor(owner, replica) {
			return ErrNotHeld
		}
		f(l, h)
		out, err := s.client.Update(ctx, l, metav1.UpdateOptions{})
		if err == nil {
			s.wrote(out, now)
			return nil
		}
		if !apierrors.IsConflict(err) {
			return fmt.Errorf("writing the Lease of %s: %w", runtime, err)
		}
	}
	return fmt.Errorf("the Lease of %s: conflicting updates", runtime)
}

// Holds implements Store.
func (s *Leases) Holds(ctx context.Context, now time.Time) (map[string]Hold, error) {
	list, err := s.client.List(ctx, metav1.ListOptions{LabelSelector: managedBy + "=" + managedByValue})
	if err != nil {
		return nil, fmt.Errorf("listing the pool's Leases: %w", err)
	}
	out := make(map[string]Hold, len(list.Items))
	names := make(map[string]bool, len(list.Items))
	for i := range list.Items {
		l := &list.Items[i]
		if r := l.Annotations[annotRuntime]; r != "" && LeaseName(r) == l.Name {
			out[r] = s.holdOf(l, now)
			names[l.Name] = true
		}
	}
	s.mu.Lock()
	maps.DeleteFunc(s.seen, func(name string, _ sighting) bool { return !names[name] })
	s.mu.Unlock()
	return out, nil
}

// set writes a hold into l: renewed at renewed, lasting until until.
func (s *Leases) set(l *coordinationv1.Lease, runtime, owner, state string, holders []string, since, renewed, until time.Time) {
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[annotRuntime] = runtime
	l.Annotations[annotState] = state
	l.Annotations[annotReplica] = s.replica
	l.Annotations[annotHolders] = strings.Join(holders, ",")
	// Whole seconds, rounded up: a reader must never count a shorter
	// lease than the holder keeps.
	seconds := int32(max(1, (until.Sub(renewed)+time.Second-1)/time.Second))
	if state == stateFree {
		seconds = 0
	}
	acquired, renew := metav1.NewMicroTime(since), metav1.NewMicroTime(renewed)
	l.Spec.HolderIdentity = &owner
	l.Spec.LeaseDurationSeconds = &seconds
	l.Spec.AcquireTime = &acquired
	l.Spec.RenewTime = &renew
}

// holdOf reads the hold a Lease records, lasting from when this process
// saw it change.
func (s *Leases) holdOf(l *coordinationv1.Lease, now time.Time) Hold {
	var h Hold
	state := l.Annotations[annotState]
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" || l.Spec.LeaseDurationSeconds == nil || state == stateFree {
		return h
	}
	h.Owner = *l.Spec.HolderIdentity
	h.Busy = state == stateBusy
	if l.Spec.AcquireTime != nil {
		h.Since = l.Spec.AcquireTime.Time
	}
	if h.Busy {
		h.Holders = holdersOf(l)
	}
	h.Until = s.sighted(l, now).Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)
	return h
}

// sighted is when this process first saw l at its resourceVersion.
func (s *Leases) sighted(l *coordinationv1.Lease, now time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.seen[l.Name]
	if !ok || o.version != l.ResourceVersion {
		o = sighting{version: l.ResourceVersion, at: now}
		s.seen[l.Name] = o
	}
	return o.at
}

// wrote records this process's own write of l, started at start: it
// counts from then, no later than any other replica can see it.
func (s *Leases) wrote(l *coordinationv1.Lease, start time.Time) {
	if l == nil || l.ResourceVersion == "" {
		return
	}
	s.mu.Lock()
	s.seen[l.Name] = sighting{version: l.ResourceVersion, at: start}
	s.mu.Unlock()
}

// holdersOf lists the replicas a busy Lease names; a Lease written before
// the holders were kept names its one writer.
func holdersOf(l *coordinationv1.Lease) []string {
	v, ok := l.Annotations[annotHolders]
	if !ok {
		if r := l.Annotations[annotReplica]; r != "" {
			return []string{r}
		}
		return nil
	}
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

func addHolder(holders []string, replica string) []string {
	if slices.Contains(holders, replica) {
		return holders
	}
	return append(slices.Clone(holders), replica)
}
