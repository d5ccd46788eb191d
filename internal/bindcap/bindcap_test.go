package bindcap

import (
	"encoding/hex"
	"testing"
)

// The value setcap(8) writes for cap_net_bind_service=p (getfattr -n
// security.capability -e hex): revision 2, permitted bit 10, no effective
// flag, so that the kernel runs the binary where the capability is dropped.
func TestFileCapabilityIsSetcapsPermittedOnly(t *testing.T) {
	const want = "0000000200040000000000000000000000000000"
	if got := hex.EncodeToString(FileCapability()); got != want {
		t.Errorf("FileCapability() = %s, want %s", got, want)
	}
}
