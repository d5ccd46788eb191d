package pool

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A full pool says why: runtimes kept for a user who may reconnect win
// over busy ones, busy over down; a Pick says the same as an Acquire.
func TestFullSaysWhy(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		down  map[string]bool
		setup func(t *testing.T, p *Pool)
		want  string
	}{
		{"all down", map[string]bool{"a:1": true, "b:1": true}, func(*testing.T, *Pool) {}, "every runtime in the pool is down"},
		{"all busy", nil, func(t *testing.T, p *Pool) { acquire(t, p, "ann"); acquire(t, p, "bob") }, "every runtime in the pool is in use"},
		{"busy and down", map[string]bool{"b:1": true}, func(t *testing.T, p *Pool) { acquire(t, p, "ann") }, "every runtime in the pool is in use or down"},
		{"one in grace", nil, func(t *testing.T, p *Pool) {
			acquire(t, p, "ann")
			if err := acquire(t, p, "bob").Release(ctx, true); err != nil {
				t.Fatal(err)
			}
		}, "every runtime in the pool is in use or kept for a user who may reconnect within 60 s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := newPool(t, tc.down, "a:1", "b:1")
			tc.setup(t, p)
			_, err := p.Acquire(ctx, "cy", "192.0.2.1")
			_, perr := p.Pick(ctx, "cy")
			for _, err := range []error{err, perr} {
				if f, ok := errors.AsType[*FullError](err); !ok || !errors.Is(err, ErrFull) || err.Error() != tc.want {
					t.Errorf("%v (%T), want %q", err, err, tc.want)
				} else if f.Why == InGrace && f.Grace != time.Minute {
					t.Errorf("grace %v", f.Grace)
				}
			}
		})
	}
}
