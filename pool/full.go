package pool

import (
	"fmt"
	"time"
)

// Why says why no runtime could be had: the first of these that applies.
type Why uint8

const (
	AllDown  Why = iota // every runtime is down, or the pool has none
	InGrace             // some runtime that is up is kept for a user who may reconnect
	AllBusy             // every runtime that is up is in use
	BusyDown            // each runtime is in use or down
)

// FullError is ErrFull with its reason: Acquire's and Pick's answer when
// no runtime is up and free (errors.Is(err, ErrFull) holds).
type FullError struct {
	Why   Why
	Grace time.Duration // the pool's reconnect grace, for InGrace
}

func (e *FullError) Error() string { return "every runtime in the pool is " + e.State() }

// State says what the runtimes are, for a sentence "every runtime is ...".
func (e *FullError) State() string {
	switch e.Why {
	case InGrace:
		return "in use or kept for a user who may reconnect within " + seconds(e.Grace)
	case AllBusy:
		return "in use"
	case BusyDown:
		return "in use or down"
	}
	return "down"
}

// seconds writes d as people read it: "60 s", or "1.5s" when not whole.
func seconds(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%d s", d/time.Second)
	}
	return d.String()
}

// Is makes a FullError ErrFull.
func (e *FullError) Is(target error) bool { return target == ErrFull }

// full says why none of runtimes could be had, from holds as read at now:
// a runtime that is down counts as down, one held in grace (by anyone else;
// the caller's own was offered) as kept, and any other as busy (one that
// looked free was taken meanwhile).
func (p *Pool) full(runtimes []string, holds map[string]Hold, now time.Time) error {
	var down, grace, busy int
	for _, r := range runtimes {
		switch h, ok := holds[r]; {
		case !p.up(r):
			down++
		case ok && h.Held(now) && !h.Busy:
			grace++
		default:
			busy++
		}
	}
	why := BusyDown
	switch {
	case grace > 0:
		why = InGrace
	case busy == 0:
		why = AllDown
	case down == 0:
		why = AllBusy
	}
	return &FullError{Why: why, Grace: p.o.Grace}
}
