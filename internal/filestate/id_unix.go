//go:build unix

package filestate

import (
	"os"
	"syscall"
)

// fileID is the file's inode and device: a swapped symlink changes them.
func fileID(st os.FileInfo) (ino, dev uint64) {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return sys.Ino, uint64(sys.Dev)
	}
	return 0, 0
}
