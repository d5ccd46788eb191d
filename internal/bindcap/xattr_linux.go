package bindcap

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// SetFile gives the file at path CAP_NET_BIND_SERVICE as a permitted file
// capability, as `setcap cap_net_bind_service=p path` does (the image's
// build stage has no setcap). Needs CAP_SETFCAP: root in the build.
func SetFile(path string) error {
	if err := unix.Setxattr(path, XattrName, FileCapability(), 0); err != nil {
		return fmt.Errorf("setting %s on %s: %w", XattrName, path, err)
	}
	return nil
}
