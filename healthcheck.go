package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/config"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/portal"
)

func healthcheck(args []string) error {
	cfg, err := config.Load(args, os.Environ(), os.Stdout, fullVersion())
	if err != nil {
		return usageError{err}
	}
	host := cfg.ListenAddress
	if host == "" {
		host = "127.0.0.1"
	}
	addr := net.JoinHostPort(strings.Trim(host, "[]"), cfg.ProxyPort.String())
	client := &http.Client{
		Timeout: 3 * time.Second,
		// The point is that the proxy answers, not who signed its
		// certificate; a user's certificate need not name 127.0.0.1.
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	resp, err := client.Get("https://" + addr + portal.PathStatus)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", addr, resp.Status)
	}
	fmt.Println("ok:", addr)
	return nil
}
