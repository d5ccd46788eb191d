// Package filestate tells cheaply whether files changed: the certificate
// files and the tokens file are polled with it. A Kubernetes Secret update
// swaps a symlink, which changes the inode even when size and time match.
package filestate

import (
	"os"
	"slices"
)

// State identifies one file's content: a missing file is the zero State.
type State struct {
	ok        bool
	size, mod int64
	ino, dev  uint64
}

// Of returns the state of each path.
func Of(paths ...string) []State {
	out := make([]State, len(paths))
	for i, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		out[i] = State{ok: true, size: st.Size(), mod: st.ModTime().UnixNano()}
		out[i].ino, out[i].dev = fileID(st)
	}
	return out
}

// Changed reports whether two results of Of differ.
func Changed(a, b []State) bool { return !slices.Equal(a, b) }
