package limit

import (
	"math"
	"net/netip"
	"time"
)

// Spent is a client that had used part of its authentication-failure
// budget, as a process that hands over tells the new one, so that a
// client guessing tokens does not get a fresh budget by timing its tries
// around a reload.
type Spent struct {
	Client   netip.Addr `json:"client"`
	Failures int        `json:"failures"` // of the budget, rounded up
}

// Spent lists the clients whose failure budget is not full (at most the
// table's size).
func (t *Table) Spent() []Spent {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Spent
	for k, e := range t.m {
		if e.fails == nil {
			continue
		}
		if used := float64(e.fails.Burst()) - e.fails.Tokens(); used > 0 {
			out = append(out, Spent{Client: k, Failures: int(math.Ceil(used))})
		}
	}
	return out
}

// Restore charges each client in spent with its failures, as if they had
// happened here just now (a little stricter than where they happened).
func (t *Table) Restore(spent []Spent) {
	if t.o.AuthFailures == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	for _, s := range spent {
		if !s.Client.IsValid() || s.Failures <= 0 {
			continue
		}
		e := t.get(Key(s.Client))
		e.fails.AllowN(now, min(s.Failures, e.fails.Burst()))
	}
}
