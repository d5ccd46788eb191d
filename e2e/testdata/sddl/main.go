//go:build windows

// Command sddl prints each path's access list in SDDL, as Windows reports
// it (GetNamedSecurityInfo): the end-to-end tests read the service's
// folder and keys with it under Wine, whose icacls and cacls are stubs.
package main

import (
	"fmt"
	"os"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/winacl"
)

func main() {
	status := 0
	for _, p := range os.Args[1:] {
		sddl, err := winacl.Describe(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			status = 1
			continue
		}
		fmt.Printf("%s\t%s\n", p, sddl)
	}
	os.Exit(status)
}
