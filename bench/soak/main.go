// Command soak runs thousands of sessions through the proxy for a long time
// while the backend is killed and restarted, verifies every echoed byte,
// and prints sessions, bytes verified, outcomes by class, the proxy's own
// warnings and errors by message, and its goroutines, descriptors and memory
// at the start and the end. It exits 1 when a session failed in a way a
// restart must not cause or the proxy did not return to its baseline.
//
//	go run ./bench/soak -duration 10m      (make soak DURATION=10m)
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/soak"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// flags are the soak's settings.
type flags struct {
	duration, restart time.Duration
	workers           int
	messages, maxMsg  int
}

func parseFlags() flags {
	var f flags
	flag.DurationVar(&f.duration, "duration", 10*time.Minute, "how long to run")
	flag.IntVar(&f.workers, "workers", 1000, "sessions open at once, each worker opening one after another")
	flag.DurationVar(&f.restart, "restart-every", 10*time.Second, "stop the backend, and start it again, this often (0: never)")
	flag.IntVar(&f.messages, "messages", 4, "echoed messages per session")
	flag.IntVar(&f.maxMsg, "max-message", 16<<10, "largest message, bytes (sizes are random from 1)")
	flag.Parse()
	return f
}

// run: build and start the proxy and the backend, take the proxy's
// footprint, soak, and judge the outcomes and the footprint after.
func run() error {
	f := parseFlags()
	work, err := os.MkdirTemp("", "cxp-soak")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bin := filepath.Join(work, "cloudxr-wss-proxy")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building the proxy: %w", err)
	}
	be, err := soak.StartBackend("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer be.Close()
	p, err := startProxy(bin, work, be.Addr())
	if err != nil {
		return err
	}
	defer p.stop()
	trust, err := trustCA(filepath.Join(work, "certs", "ca.crt"))
	if err != nil {
		return err
	}
	before, err := warmUp(p, trust)
	if err != nil {
		return err
	}
	fmt.Printf("soak: %d workers for %v, backend restarted every %v, %d messages of up to %d bytes per session\n",
		f.workers, f.duration, f.restart, f.messages, f.maxMsg)
	fmt.Printf("machine: %d CPUs, %s\n", runtime.NumCPU(), runtime.Version())
	fmt.Printf("proxy at start: %v\n", before)
	o := soak.Options{
		Addr: p.addr, TLS: trust, Workers: f.workers, Duration: f.duration,
		Messages: f.messages, MaxMessage: f.maxMsg, Stall: 10 * time.Second,
		// Each worker from its own address, the per-client limits at
		// their defaults: the proxy as shipped.
		Source: soak.Sources,
	}
	if f.restart > 0 {
		o.Restart, o.RestartEvery = be.Toggle, f.restart/2
	}
	o.Watch = func() (soak.Snapshot, error) { return soak.Take(p.pid(), p.admin) }
	res := soak.Run(o)
	if err := be.EnsureRunning(); err != nil {
		return err
	}
	return judge(p, before, res)
}

// warmUp runs one session first, so that what starts on first use is
// running, and returns the proxy's footprint once it has ended.
func warmUp(p *proxyProc, trust *tls.Config) (soak.Snapshot, error) {
	c, err := wstest.Dial(p.addr, "/warm-up", trust)
	if err != nil {
		return soak.Snapshot{}, fmt.Errorf("warm-up session: %w", err)
	}
	c.Echo("warm", 5*time.Second)
	c.Close()
	return soak.Await(p.pid(), p.admin, 30*time.Second, func(s soak.Snapshot) bool { return s.OpenSessions == 0 })
}

// judge prints the outcomes and the footprint, and fails on an outcome a
// restart must not cause or a proxy that does not return to its baseline.
func judge(p *proxyProc, before soak.Snapshot, res *soak.Result) error {
	fmt.Print(res.Report())
	fmt.Printf("proxy at peak:  %v\n", res.Peak)
	after, err := soak.Await(p.pid(), p.admin, 30*time.Second, func(s soak.Snapshot) bool { return soak.Settled(before, res.Peak, s) })
	fmt.Printf("proxy at end:   %v\n", after)
	if err == nil {
		// The proxy hands memory back to the system a few seconds after
		// connections stop arriving and ending: show it after that.
		fmt.Printf("10 s later:     %v\n", lowest(p.pid(), p.admin, 10*time.Second))
	}
	fmt.Print(p.logSummary())
	switch {
	case res.Unexpected() > 0:
		return fmt.Errorf("%d sessions failed in a way a backend restart must not cause", res.Unexpected())
	case err != nil:
		return fmt.Errorf("the proxy did not return to its baseline within 30 s: %w", err)
	}
	fmt.Println("result: every session completed intact or ended cleanly; the proxy returned to its baseline")
	return nil
}

// lowest watches the proxy for d and returns the snapshot with the least
// anonymous memory.
func lowest(pid int, admin string, d time.Duration) soak.Snapshot {
	var low soak.Snapshot
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		if s, err := soak.Take(pid, admin); err == nil && (low.AnonRSS == 0 || s.AnonRSS < low.AnonRSS) {
			low = s
		}
	}
	return low
}

// proxyProc is the proxy binary, its log read as it comes.
type proxyProc struct {
	cmd         *exec.Cmd
	addr, admin string
	mu          sync.Mutex
	warnings    map[string]int // "level: message" → count
	done        chan struct{}
}

func (p *proxyProc) pid() int { return p.cmd.Process.Pid }

func startProxy(bin, work, backendAddr string) (*proxyProc, error) {
	host, port, _ := net.SplitHostPort(backendAddr)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "BACKEND_HOST="+host, "BACKEND_PORT="+port,
		"LISTEN_ADDRESS=127.0.0.1", "PROXY_PORT=0", "ADMIN_ADDRESS=127.0.0.1:0",
		"CERT_DIR="+filepath.Join(work, "certs"), "LOG_FORMAT=json", "HEALTH_CHECK_INTERVAL=500ms")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proxyProc{cmd: cmd, warnings: map[string]int{}, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		signalled := false
		for sc.Scan() {
			var l struct{ Level, Msg, Address string }
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				continue
			}
			p.mu.Lock()
			switch {
			case l.Msg == "listening":
				p.addr = l.Address
			case l.Msg == "admin listener":
				p.admin = l.Address
			case l.Level == "warn" || l.Level == "error":
				p.warnings[l.Level+": "+l.Msg]++
			}
			if !signalled && p.addr != "" && p.admin != "" {
				signalled = true
				close(ready)
			}
			p.mu.Unlock()
		}
	}()
	select {
	case <-ready:
		return p, nil
	case <-p.done:
		cmd.Wait()
		return nil, errors.New("the proxy exited at start")
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		return nil, errors.New("the proxy did not start listening")
	}
}

func (p *proxyProc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	p.cmd.Wait()
}

// logSummary lists the proxy's warnings and errors by message.
func (p *proxyProc) logSummary() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := make([]string, 0, len(p.warnings))
	for k := range p.warnings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	s := "proxy log, warnings and errors by message:\n"
	for _, k := range keys {
		s += fmt.Sprintf("  %-70s %8d\n", k, p.warnings[k])
	}
	return s
}

func trustCA(path string) (*tls.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("no certificate in %s", path)
	}
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}, nil
}
