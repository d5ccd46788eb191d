//go:build !linux

package tunnel

// Elsewhere than on Linux every way takes the portable pump (pump.go):
// there is no raw pump, and no parking.

type rawPump struct{}

func (w *way) useRaw() {}

func (w *way) pumpRaw() error { return nil } // never called: w.rc is nil
