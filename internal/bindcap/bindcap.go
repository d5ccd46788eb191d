// Package bindcap is the right to bind ports below 1024 without root:
// CAP_NET_BIND_SERVICE carried by the container image's binary as a file
// capability, and raised by the running program only around a bind that
// the system refused.
//
// The image's binary carries the capability as permitted, not effective
// ("cap_net_bind_service=p", not "=ep"): the kernel refuses to execute an
// "=ep" binary when the container's bounding set lacks the capability
// (Kubernetes' `drop: ["ALL"]`, `--cap-drop ALL`), so the program would not
// start at all there. Permitted-only, it starts everywhere and gains the
// capability only where the container allows it (Docker's and Podman's
// default set; not with no-new-privileges). See capabilities(7), "File
// capabilities" and "Safety checking for capability-dumb binaries".
package bindcap

import "encoding/binary"

// netBindService is CAP_NET_BIND_SERVICE's number (linux/capability.h).
const netBindService = 10

// XattrName is the extended attribute holding a file's capabilities.
const XattrName = "security.capability"

// FileCapability is the security.capability value granting
// CAP_NET_BIND_SERVICE as permitted only: struct vfs_cap_data, revision 2
// (magic_etc, then permitted and inheritable for capabilities 0-31 and
// 32-63), little-endian, without VFS_CAP_FLAGS_EFFECTIVE.
func FileCapability() []byte {
	const revision2 = 0x02000000
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], revision2)
	binary.LittleEndian.PutUint32(b[4:], 1<<netBindService) // permitted, low word
	return b
}
