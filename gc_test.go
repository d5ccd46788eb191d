package main

import "testing"

// The GC target is 400 % while the live heap is small and gives at most
// 16 MiB of growth as it grows, never under 50 %.
func TestGCPercentFollowsTheLiveHeap(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{{0, 400}, {1 << 20, 400}, {4 << 20, 400}, {8 << 20, 200}, {16 << 20, 100}, {25 << 20, 64}, {32 << 20, 50}, {1 << 30, 50}} {
		if got := gcPercentFor(c.live); got != c.want {
			t.Errorf("live %d MiB: %d %%, want %d", c.live>>20, got, c.want)
		}
	}
}

// Memory goes back once per burst, 2 s after allocation goes quiet, and
// never while the proxy keeps allocating.
func TestMemoryGoesBackAfterABurst(t *testing.T) {
	f := gcFollower{set: gcPercent}
	allocs := uint64(1 << 20)
	step := func(by uint64) bool {
		allocs += by
		_, release := f.tick(2<<20, allocs)
		return release
	}
	for i := range 20 { // a burst: 4 MiB a reading
		if step(4 << 20) {
			t.Fatalf("released during the burst, reading %d", i)
		}
	}
	var at []int
	for i := range 20 { // quiet: 64 KiB a reading
		if step(64 << 10) {
			at = append(at, i)
		}
	}
	if len(at) != 1 || at[0] != quietTicks-1 {
		t.Fatalf("released at quiet readings %v, want once, at %d", at, quietTicks-1)
	}
	for i := range 40 { // steady trickle: 512 KiB a reading is never quiet
		if step(512 << 10) {
			t.Fatalf("released under steady load, reading %d", i)
		}
	}
	n := 0
	for range 2 * quietTicks { // 20 MiB of trickle since, then quiet: once more
		if step(0) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d releases after a trickle of 20 MiB and then quiet, want 1", n)
	}
}

// The target is set again only when it moves by a tenth.
func TestGCPercentSetOnlyWhenItMoves(t *testing.T) {
	f := gcFollower{set: gcPercent}
	if p, _ := f.tick(16<<20, 1); p != 100 {
		t.Fatalf("live 16 MiB: set %d, want 100", p)
	}
	if p, _ := f.tick(17<<20, 2); p != 0 {
		t.Fatalf("live 17 MiB: set %d, want no change", p)
	}
	if p, _ := f.tick(1<<20, 3); p != 400 {
		t.Fatalf("live 1 MiB: set %d, want 400", p)
	}
}
