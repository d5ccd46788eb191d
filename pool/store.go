package pool

import (
	"context"
	"errors"
	"slices"
	"time"
)

// ErrFull is Acquire's answer when no runtime is up and free; the error
// it returns is a *FullError, which says why.
var ErrFull = errors.New("no runtime in the pool is up and free")

// ErrUserLimit is Acquire's answer when the user already holds as many
// runtimes as Options.MaxPerUser allows.
var ErrUserLimit = errors.New("the user already holds as many runtimes as one user may")

// ErrNotHeld is a Store's answer to Renew or Release when the owner no
// longer holds the runtime through this replica (its lease expired and
// someone took it).
var ErrNotHeld = errors.New("the runtime is no longer this session's")

// Hold is who holds a runtime and until when.
type Hold struct {
	Owner string    // the user's OwnerKey (of a token's subject, or of the pool cookie)
	Busy  bool      // sessions use it; false: the owner's reconnect grace
	Since time.Time // when this hold began
	// Until is when the hold stops counting unless renewed, in the local
	// clock of the process that reads it: a busy hold's lease end, or the
	// grace's end.
	Until time.Time
	// Holders are the replicas whose sessions use a busy runtime: it stays
	// busy until the last of them releases it (or stops renewing it).
	Holders []string
}

// Held reports whether the hold still counts at now.
func (h Hold) Held(now time.Time) bool { return now.Before(h.Until) }

// heldBy reports whether replica is among a busy hold's holders.
func (h Hold) heldBy(replica string) bool { return slices.Contains(h.Holders, replica) }

// busyFor reports whether the hold is owner's busy one, held through
// replica: what Renew and Release need.
func (h Hold) busyFor(owner, replica string) bool {
	return h.Busy && h.Owner == owner && h.heldBy(replica)
}

// Store keeps the holds. Its methods are safe for concurrent use; each
// change is atomic (a mutex, or a Lease's resourceVersion), so two owners
// never both take one runtime.
type Store interface {
	// Take makes runtime busy for owner through replica until until, and
	// reports whether it did. It does when the runtime is free, or held in
	// grace by owner; and, with join, only when owner's sessions already
	// hold it busy (replica then holds it beside the others).
	Take(ctx context.Context, runtime, owner, replica string, join bool, now, until time.Time) (bool, error)
	// Renew extends the busy hold that owner has through replica to until
	// (ErrNotHeld when there is none).
	Renew(ctx context.Context, runtime, owner, replica string, now, until time.Time) error
	// Release takes replica from owner's busy hold. Once no replica holds
	// it, the runtime is in owner's grace until graceUntil, or free when
	// graceUntil is zero.
	Release(ctx context.Context, runtime, owner, replica string, now, graceUntil time.Time) error
	// Holds returns every runtime's hold, current or not, as seen at now.
	Holds(ctx context.Context, now time.Time) (map[string]Hold, error)
}
