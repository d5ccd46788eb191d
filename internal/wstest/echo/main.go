// Command echo stands in for the CloudXR Runtime when trying the proxy out: a
// WebSocket echo on 127.0.0.1:49100, the runtime's address and port. With
// -try it is a client instead: one wss:// session through the proxy, one
// message echoed, the certificate checked against -ca.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:49100", "address the echo listens on")
	try := flag.String("try", "", "instead of listening: open wss://HOST:PORT/ through the proxy there and echo one message")
	ca := flag.String("ca", "certs-local/ca.crt", "with -try, the CA the proxy's certificate must chain to (make run writes it)")
	flag.Parse()
	var err error
	if *try != "" {
		err = tryProxy(*try, *ca)
	} else {
		err = serve(*listen)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}

// serve runs the echo until interrupted.
func serve(addr string) error {
	b, err := wstest.StartBackend(addr)
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Printf("a WebSocket echo standing in for the CloudXR Runtime on ws://%s/ (Ctrl-C stops it)\n", b.Addr())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	<-stop
	return nil
}

// tryProxy opens one session through the proxy at addr and echoes a message.
func tryProxy(addr, caFile string) error {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("reading the CA (-ca): %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return errors.New(caFile + " holds no PEM certificate")
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-try %q: want HOST:PORT: %w", addr, err)
	}
	start := time.Now()
	c, err := wstest.Dial(addr, "/", &tls.Config{RootCAs: roots, ServerName: host})
	if err != nil {
		return fmt.Errorf("wss://%s/: %w", addr, err)
	}
	defer c.Close()
	if err := c.Echo("hello", 5*time.Second); err != nil {
		return fmt.Errorf("wss://%s/: %w", addr, err)
	}
	fmt.Printf("wss://%s/: certificate trusted, upgraded, \"hello\" echoed (%s)\n", addr, time.Since(start).Round(time.Millisecond))
	return nil
}
