package main

import "testing"

// The GC target is 400 % while the live heap is small and gives at most
// 8 MiB of growth as it grows, never under 25 %.
func TestGCPercentFollowsTheLiveHeap(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{{0, 400}, {1 << 20, 400}, {2 << 20, 400}, {4 << 20, 200}, {8 << 20, 100}, {25 << 20, 32}, {32 << 20, 25}, {1 << 30, 25}} {
		if got := gcPercentFor(c.live); got != c.want {
			t.Errorf("live %d MiB: %d %%, want %d", c.live>>20, got, c.want)
		}
	}
}
