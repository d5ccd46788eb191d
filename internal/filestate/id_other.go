//go:build !unix

package filestate

import "os"

// fileID is nothing where os.Stat gives no inode (Windows): size and time
// tell a change there, and Kubernetes' symlink swap does not happen.
func fileID(os.FileInfo) (ino, dev uint64) { return 0, 0 }
