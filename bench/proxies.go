package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// proxy is one proxy under test, running as its own process so that its
// CPU time and memory can be read from /proc.
type proxy struct {
	name   string
	cmd    *exec.Cmd
	addr   string
	log    *os.File
	header []string // sent on each upgrade (a credential)
}

func (p *proxy) pid() int { return p.cmd.Process.Pid }

func (p *proxy) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
	p.log.Close()
}

// freePort asks the kernel for a port that is free now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startOurs runs the cloudxr-wss-proxy binary with the given CERT_DIR.
func startOurs(bin, certDir string, backendPort int, work string, env ...string) (*proxy, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"BACKEND_HOST=127.0.0.1", fmt.Sprintf("BACKEND_PORT=%d", backendPort),
		"LISTEN_ADDRESS=127.0.0.1", fmt.Sprintf("PROXY_PORT=%d", port),
		"CERT_DIR="+certDir, "LOG_LEVEL=warn", "LOG_FORMAT=json", "MAX_CONNECTIONS=9000")
	// The per-client limits stay at their defaults, as shipped: the load
	// comes from many addresses (see sources). HAProxy's configuration, the
	// reference container's, has none.
	cmd.Env = append(cmd.Env, env...)
	return launch("cloudxr-wss-proxy", cmd, fmt.Sprintf("127.0.0.1:%d", port), filepath.Join(work, fmt.Sprintf("ours-%d.log", port)))
}

// haproxyConfig is the reference container's configuration (see
// ../shared/reference/anchor-haproxy.md) plus the Private-Network header.
const haproxyConfig = `global
    maxconn 9000
    ssl-default-bind-options ssl-min-ver TLSv1.2%s
    ssl-default-bind-ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384
    ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256

defaults
    mode http
    log global
    timeout connect 5s
    timeout client 3600s
    timeout server 3600s
    timeout tunnel 3600s

frontend wss
    bind 127.0.0.1:%d ssl crt %s alpn http/1.1
    http-request return status 200 content-type text/plain string "OK" if METH_OPTIONS
    default_backend runtime

backend runtime
    http-response set-header Access-Control-Allow-Origin "*"
    http-response set-header Access-Control-Allow-Headers "*"
    http-response set-header Access-Control-Allow-Methods "GET, POST, PUT, DELETE, OPTIONS"
    http-response set-header Access-Control-Expose-Headers "*"
    http-response set-header Access-Control-Allow-Private-Network "true"
    server cloudxr 127.0.0.1:%d check inter 2s rise 2 fall 3 on-marked-down shutdown-sessions
`

// startHAProxy runs Debian's haproxy in the foreground with pemPath.
func startHAProxy(pemPath string, backendPort int, work string, tickets bool) (*proxy, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(work, "haproxy.cfg")
	opt := " no-tls-tickets"
	if tickets {
		opt = ""
	}
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(haproxyConfig, opt, port, pemPath, backendPort)), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command("haproxy", "-db", "-f", cfg)
	return launch("haproxy", cmd, fmt.Sprintf("127.0.0.1:%d", port), filepath.Join(work, "haproxy.log"))
}

func launch(name string, cmd *exec.Cmd, addr, logPath string) (*proxy, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proxy{name: name, cmd: cmd, addr: addr, log: f}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			c.Close()
			return p, nil
		}
		if time.Now().After(deadline) {
			p.stop()
			out, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("%s did not come up on %s: %v\n%s", name, addr, err, lastLines(string(out), 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lastLines(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
