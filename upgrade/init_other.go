//go:build !linux

package upgrade

// RunAsInit: only Linux containers have a PID 1 to stand in for.
func RunAsInit() (int, bool) { return 0, false }

// UnderForeignInit: no containers here.
func UnderForeignInit() bool { return false }
