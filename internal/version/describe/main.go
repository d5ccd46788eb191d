// Command describe prints the version of the commit checked out here, as
// make build stamps it and make dist names the packages (package version).
package main

import (
	"fmt"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/version"
)

func main() { fmt.Println(version.FromGit(".")) }
