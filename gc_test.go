package main

import "testing"

// The GC target is 400 % while the live heap is the program's own (4 MiB);
// beyond, the headroom shrinks by what the sessions add, to 8 MiB, and the
// target is never under 25 %.
func TestGCPercentFollowsTheLiveHeap(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{{0, 400}, {1 << 20, 400}, {4 << 20, 400}, {5 << 20, 300}, {8 << 20, 150}, {12 << 20, 66}, {16 << 20, 50}, {25 << 20, 32}, {32 << 20, 25}, {1 << 30, 25}} {
		if got := gcPercentFor(c.live); got != c.want {
			t.Errorf("live %d MiB: %d %%, want %d", c.live>>20, got, c.want)
		}
	}
}
