//go:build !linux

package tunnel

import "time"

// Elsewhere than on Linux there is no parking: NewParker says so, and each
// way of an upgraded tunnel keeps its goroutine while it waits.

// Parker is Linux's (park_linux.go); here it is never made.
type Parker struct{}

// NewParker returns ErrNoParking.
func NewParker(time.Duration) (*Parker, error) { return nil, ErrNoParking }

func (p *Parker) Close()          {}
func (p *Parker) Parked() int     { return 0 }
func (p *Parker) newKey() uint64  { return 0 }
func (p *Parker) track(*Tunnel)   {}
func (p *Parker) untrack(*Tunnel) {}
func (p *Parker) add(*way) error  { return ErrNoParking }
func (p *Parker) remove(*way)     {}
