//go:build linux

// Command setcap gives the files it is given CAP_NET_BIND_SERVICE as a
// permitted file capability (see package bindcap): the container image's
// build stage runs it on the binary it copies into the image.
//
//	go run ./internal/bindcap/setcap /out/cloudxr-wss-proxy
package main

import (
	"fmt"
	"os"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/bindcap"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: setcap FILE...")
		os.Exit(2)
	}
	for _, path := range os.Args[1:] {
		if err := bindcap.SetFile(path); err != nil {
			fmt.Fprintln(os.Stderr, "setcap:", err)
			os.Exit(1)
		}
	}
}
