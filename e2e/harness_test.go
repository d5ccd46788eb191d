//go:build e2e

package e2e

// The harness: the binary built once, a running proxy whose JSON log lines
// are collected, the test backend.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

var binary string

// afterAll holds what TestMain undoes once every test has run: what tests
// share (an image build) outlives each of them.
var afterAll []func()

func TestMain(m *testing.M) {
	// The tests run from the repository root, as a user would: the
	// binary, the Dockerfile, scripts/ and make are where they expect.
	if err := os.Chdir(".."); err != nil {
		panic(err)
	}
	if _, err := os.Stat("go.mod"); err != nil {
		panic("e2e: the parent directory is not the repository root: " + err.Error())
	}
	dir, err := os.MkdirTemp("", "cxp-bin")
	if err != nil {
		panic(err)
	}
	os.Chmod(dir, 0o755) // runnable by the unprivileged user in TestCertDirNotWritable
	binary = filepath.Join(dir, "cloudxr-wss-proxy")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic(err)
	}
	code := m.Run()
	for _, f := range afterAll {
		f()
	}
	os.RemoveAll(dir)
	// No goroutine of the tests (log readers, clients, backends) outlives them.
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// proc is a running proxy whose JSON log lines are collected.
type proc struct {
	t     *testing.T
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []map[string]any
	raw   bytes.Buffer
	done  chan struct{}
}

func startProc(t *testing.T, env ...string) *proc {
	t.Helper()
	return startProcCmd(t, exec.Command(binary), env...)
}

// startProcCmd runs cmd with the tests' settings and env on top; a bare
// "KEY" in env (no "=") leaves KEY unset, at the proxy's own default.
func startProcCmd(t *testing.T, cmd *exec.Cmd, env ...string) *proc {
	t.Helper()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LOG_FORMAT=json", "LISTEN_ADDRESS=127.0.0.1", "PROXY_PORT=0",
		"HEALTH_CHECK_INTERVAL=100", "ADMIN_ADDRESS=127.0.0.1:0",
		// Every test client comes from 127.0.0.1: the per-client limits
		// are off unless a test sets them.
		"CLIENT_MAX_CONNECTIONS=0", "CLIENT_HANDSHAKE_RATE=0", "CLIENT_AUTH_FAILURES=0"}
	for _, kv := range env {
		if strings.Contains(kv, "=") {
			cmd.Env = append(cmd.Env, kv)
			continue
		}
		cmd.Env = slices.DeleteFunc(cmd.Env, func(e string) bool { return strings.HasPrefix(e, kv+"=") })
	}
	// A group of its own: a SIGHUP starts a new process (an upgrade in
	// place) that the cleanup must end too.
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			json.Unmarshal(sc.Bytes(), &m)
			p.mu.Lock()
			p.raw.Write(append(sc.Bytes(), '\n'))
			if m != nil {
				p.lines = append(p.lines, m)
			}
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		cmd.Wait()
		if t.Failed() {
			t.Logf("proxy log:\n%s", p.failureLog())
		}
	})
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.raw.String()
}

// failureLog is what a failed test prints of the proxy's log: all of it
// when short; else its warnings and errors and its last lines, with the
// whole log saved to a file, so that a long log does not push the test's
// own failure out of sight in CI's output.
func (p *proc) failureLog() string {
	all := p.output()
	lines := strings.SplitAfter(all, "\n")
	const keep = 40
	if len(lines) <= 2*keep {
		return all
	}
	var b strings.Builder
	f, err := os.CreateTemp("", "cloudxr-wss-proxy-"+strings.ReplaceAll(p.t.Name(), "/", "-")+"-*.log")
	if err == nil {
		f.WriteString(all)
		f.Close()
		fmt.Fprintf(&b, "(%d lines, all in %s)\n", len(lines), f.Name())
	}
	n := 0
	for _, l := range lines {
		if !strings.Contains(l, `"level":"info"`) && !strings.Contains(l, `"level":"debug"`) {
			if n++; n <= keep {
				b.WriteString(l)
			}
		}
	}
	fmt.Fprintf(&b, "(%d warnings and errors above, at most %d shown; the last %d lines:)\n", n, keep, keep)
	for _, l := range lines[len(lines)-keep:] {
		b.WriteString(l)
	}
	return b.String()
}

// waitLog returns the first log line with message msg.
func (p *proc) waitLog(msg string) map[string]any {
	p.t.Helper()
	return p.waitLine(10*time.Second, fmt.Sprintf("%q log line", msg), func(l map[string]any) bool { return l["msg"] == msg })
}

// waitLine returns the first log line that match accepts, waiting up to d.
func (p *proc) waitLine(d time.Duration, what string, match func(map[string]any) bool) map[string]any {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		for _, l := range p.lines {
			if match(l) {
				p.mu.Unlock()
				return l
			}
		}
		p.mu.Unlock()
		select {
		case <-p.done:
			p.t.Fatalf("proxy exited before the %s", what)
		case <-time.After(5 * time.Millisecond):
		}
	}
	p.t.Fatalf("no %s within %v", what, d)
	return nil
}

func (p *proc) addr() string { return p.waitLog("listening")["address"].(string) }

// stop sends SIGTERM and returns the exit code.
func (p *proc) stop() int {
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	p.cmd.Wait()
	return p.cmd.ProcessState.ExitCode()
}

func trustPEM(t *testing.T, path string) *tls.Config {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatal("no certificate in " + path)
	}
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

func backend(t *testing.T) *wstest.Backend {
	b, err := wstest.StartBackend("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}
