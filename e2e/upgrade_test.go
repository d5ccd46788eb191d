//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Upgrading in place: the binary on disk is replaced by a build with
// another version and the proxy gets SIGHUP, while 50 sessions echo and a
// client opens a new session every 10 ms. No connection is refused or
// reset, every byte of the 50 comes back, new sessions are served by the
// new version, the admin port answers throughout, a changed line in the
// settings file applies, and the old process exits within a second of its
// last session's end.
func TestUpgradeInPlace(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "cloudxr-wss-proxy")
	copyFile(t, binary, exe, 0o755)
	newer := filepath.Join(dir, "cloudxr-wss-proxy.new")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=9.9.9-upgraded", "-o", newer, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the new version: %v\n%s", err, out)
	}
	b := backend(t)
	settings := filepath.Join(dir, "env")
	writeFile(t, settings, "HEAD_TIMEOUT=10s\n")
	pidFile := filepath.Join(dir, "pid")
	certs := filepath.Join(dir, "certs")
	p := startProcCmd(t, exec.Command(exe), "CERT_DIR="+certs, "BACKEND_HOST=127.0.0.1",
		"BACKEND_PORT="+strconv.Itoa(b.Port()), "ENV_FILE="+settings, "PID_FILE="+pidFile, "UPGRADE_DRAIN=0",
		"HEALTH_CHECK_INTERVAL=2s") // a check on a loaded machine must not close the 50 sessions
	addr := p.addr()
	admin := p.waitLog("admin listener")["address"].(string)
	oldPID := p.cmd.Process.Pid
	t.Cleanup(func() { killPIDFile(pidFile, oldPID) }) // the new process, before the harness's cleanup waits for the log's end
	if pid := waitPIDFile(t, pidFile, 0); pid != oldPID {
		t.Fatalf("the PID file names %d, not the process started (%d)", pid, oldPID)
	}
	trust := trustPEM(t, filepath.Join(certs, "ca.crt"))
	if v := statusVersion(t, addr, trust); strings.Contains(v, "9.9.9-upgraded") {
		t.Fatalf("version %q before the upgrade", v)
	}

	// 50 sessions echoing without a pause, through the switch.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var echoed atomic.Int64
	sessionErrs := make(chan error, 50)
	for i := range 50 {
		c, err := wstest.Dial(addr, "/s"+strconv.Itoa(i), trust)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer c.Close()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := c.Echo(fmt.Sprintf("session %d message %d", i, n), 10*time.Second); err != nil {
					sessionErrs <- fmt.Errorf("session %d, message %d: %w", i, n, err)
					return
				}
				echoed.Add(1)
			}
		})
	}
	// A new session every 10 ms, and the admin port asked every 10 ms.
	var opened, adminOK atomic.Int64
	churnErrs := make(chan error, 1000)
	var churn sync.WaitGroup
	churn.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			c, err := wstest.Dial(addr, "/new"+strconv.Itoa(n), trust)
			if err == nil {
				err = c.Echo("hello", 10*time.Second)
				c.Close()
			}
			if err != nil {
				churnErrs <- fmt.Errorf("new session %d: %w", n, err)
				continue
			}
			opened.Add(1)
		}
	})
	hc := &http.Client{Timeout: 5 * time.Second}
	churn.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			resp, err := hc.Get("http://" + admin + "/healthz")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err != nil || resp.StatusCode != http.StatusOK {
				churnErrs <- fmt.Errorf("admin port: %v", err)
				continue
			}
			adminOK.Add(1)
		}
	})
	waitFor(t, 10*time.Second, "sessions echoing", func() bool { return echoed.Load() > 500 && opened.Load() > 10 })

	// What a package upgrade does: the new binary renamed over the old,
	// a settings line changed, then systemctl reload.
	if err := os.Rename(newer, exe); err != nil {
		t.Fatal(err)
	}
	writeFile(t, settings, "HEAD_TIMEOUT=7s\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	newPID := waitPIDFile(t, pidFile, oldPID)
	if newPID == oldPID {
		t.Fatal("the PID file still names the old process")
	}
	p.waitLog("handed over to the new process: finishing the open sessions here")
	started := p.waitLine(10*time.Second, "new process's start line", func(l map[string]any) bool {
		return l["msg"] == "starting" && strings.Contains(fmt.Sprint(l["version"]), "9.9.9-upgraded")
	})
	if started["HEAD_TIMEOUT"] != "7s" {
		t.Errorf("the new process has HEAD_TIMEOUT %v, want the settings file's new 7s", started["HEAD_TIMEOUT"])
	}
	if v := statusVersion(t, addr, trust); !strings.Contains(v, "9.9.9-upgraded") {
		t.Errorf("after the upgrade /status.json says version %q", v)
	}
	before := opened.Load()
	waitFor(t, 10*time.Second, "new sessions after the switch", func() bool { return opened.Load() > before+20 })
	draining := metricValue(t, admin, "cloudxr_wss_proxy_sessions_draining")
	if draining < 50 {
		t.Errorf("sessions_draining is %v while the old process holds 50 sessions", draining)
	}

	// The 50 end; the old process follows within a second.
	close(stop)
	wg.Wait()
	churn.Wait()
	ended := time.Now()
	close(sessionErrs)
	close(churnErrs)
	for err := range sessionErrs {
		t.Error(err)
	}
	for err := range churnErrs {
		t.Error(err)
	}
	gone := waitExited(t, oldPID, 10*time.Second)
	if d := gone.Sub(ended); d > time.Second {
		t.Errorf("the old process exited %v after its last session ended, want within 1s", d)
	}
	p.waitLog("stopped: the new process serves")
	if !processAlive(newPID) {
		t.Fatal("the new process is gone too")
	}
	waitFor(t, 5*time.Second, "sessions_draining back to 0", func() bool {
		return metricValue(t, admin, "cloudxr_wss_proxy_sessions_draining") == 0
	})
	t.Logf("%d messages echoed by the 50 sessions, %d new sessions, %d admin answers", echoed.Load(), opened.Load(), adminOK.Load())
}

// A reload whose new process cannot start (a bad line in the settings
// file) leaves the old one serving, its sessions untouched, and the log
// names the setting.
func TestUpgradeWithBadSettingKeepsServing(t *testing.T) {
	dir := t.TempDir()
	b := backend(t)
	settings := filepath.Join(dir, "env")
	writeFile(t, settings, "HEAD_TIMEOUT=10s\n")
	certs := filepath.Join(dir, "certs")
	p := startProc(t, "CERT_DIR="+certs, "BACKEND_HOST=127.0.0.1", "BACKEND_PORT="+strconv.Itoa(b.Port()), "ENV_FILE="+settings)
	addr := p.addr()
	trust := trustPEM(t, filepath.Join(certs, "ca.crt"))
	c, err := wstest.Dial(addr, "/held", trust)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	writeFile(t, settings, "HEAD_TIMEOUT=soon\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	failed := p.waitLine(70*time.Second, "the failed upgrade's line", func(l map[string]any) bool { return l["msg"] == "SIGHUP: upgrade in place failed" })
	if !strings.Contains(fmt.Sprint(failed["why"]), "keeps serving") {
		t.Errorf("the failure says %q", failed["why"])
	}
	if out := p.output(); !strings.Contains(out, "HEAD_TIMEOUT") || !strings.Contains(out, "soon") {
		t.Errorf("no line names the bad setting:\n%s", out)
	}
	if err := c.Echo("still here", 5*time.Second); err != nil {
		t.Fatalf("the held session after the failed upgrade: %v", err)
	}
	c2, err := wstest.Dial(addr, "/new", trust)
	if err != nil {
		t.Fatalf("a new session after the failed upgrade: %v", err)
	}
	c2.Echo("new", 5*time.Second)
	c2.Close()
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, mode); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitPIDFile waits until the PID file names a process other than not,
// and returns it.
func waitPIDFile(t *testing.T, path string, not int) int {
	t.Helper()
	var pid int
	waitFor(t, 70*time.Second, "PID file naming a new process", func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return pid != 0 && pid != not
	})
	return pid
}

func killPIDFile(path string, not int) {
	b, _ := os.ReadFile(path)
	if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 && pid != not {
		syscall.Kill(pid, syscall.SIGKILL)
		for processAlive(pid) {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// processAlive: the process exists and has not exited (a zombie has).
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// waitExited returns when pid has exited (without reaping it: the
// harness does).
func waitExited(t *testing.T, pid int, d time.Duration) time.Time {
	t.Helper()
	waitFor(t, d, fmt.Sprintf("exit of process %d", pid), func() bool { return !processAlive(pid) })
	return time.Now()
}

func statusVersion(t *testing.T, addr string, trust *tls.Config) string {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: trust, DisableKeepAlives: true}}
	resp, err := hc.Get("https://" + addr + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Version string `json:"version"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st.Version
}

// metricValue reads one unlabelled metric from the admin port.
func metricValue(t *testing.T, admin, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// A client that spent its authentication-failure budget is still refused
// by the process that took over: the old one hands the spent budgets over.
func TestUpgradeKeepsSpentFailureBudgets(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	writeFile(t, tokens, "quest-a\n")
	b := backend(t)
	certs := filepath.Join(dir, "certs")
	p := startProc(t, "CERT_DIR="+certs, "BACKEND_HOST=127.0.0.1", "BACKEND_PORT="+strconv.Itoa(b.Port()),
		"AUTH_TOKENS_FILE="+tokens, "CLIENT_AUTH_FAILURES=3")
	addr := p.addr()
	trust := trustPEM(t, filepath.Join(certs, "ca.crt"))
	status := func(token string) int {
		t.Helper()
		return upgradeStatus(t, addr, trust, "/sign_in", "Authorization: Bearer "+token)
	}
	for i := range 3 {
		if s := status("guess-" + strconv.Itoa(i)); s != http.StatusUnauthorized {
			t.Fatalf("guess %d answered %d, want 401", i, s)
		}
	}
	if s := status("guess-3"); s != http.StatusTooManyRequests {
		t.Fatalf("after the budget: %d, want 429", s)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog("the previous process has exited") // every connection now reaches the new one
	if s := status("guess-4"); s != http.StatusTooManyRequests {
		t.Errorf("after the upgrade a guessing client got %d, want 429: a fresh budget", s)
	}
}

// With the runtime pool's claims in memory, SIGHUP does not start a new
// process (it could hand out a runtime a session here holds): the log
// says why, and the runtime stays with its session.
func TestUpgradeRefusedWithThePoolInMemory(t *testing.T) {
	dir := t.TempDir()
	b := backend(t)
	certs := filepath.Join(dir, "certs")
	p := startProc(t, "CERT_DIR="+certs, "BACKEND_POOL=127.0.0.1:"+strconv.Itoa(b.Port()), "POOL_CLAIMS=memory")
	addr := p.addr()
	trust := trustPEM(t, filepath.Join(certs, "ca.crt"))
	held, err := wstest.Dial(addr, "/s", trust)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	p.cmd.Process.Signal(syscall.SIGHUP)
	l := p.waitLog("SIGHUP: no upgrade in place")
	if !strings.Contains(fmt.Sprint(l["why"]), "memory") {
		t.Errorf("the refusal says %q", l["why"])
	}
	if err := held.Echo("still mine", 5*time.Second); err != nil {
		t.Fatalf("the session holding the runtime: %v", err)
	}
	if s := upgradeStatus(t, addr, trust, "/s"); s != http.StatusServiceUnavailable {
		t.Errorf("a second user while the only runtime is held: %d, want 503", s)
	}
}

// With the pool's claims in Kubernetes Leases, an upgrade in place is
// allowed: the new process sees the Lease the old one's session holds and
// keeps renewing, so the only runtime is not handed to a second user
// until that session has ended.
func TestUpgradeWithPoolLeases(t *testing.T) {
	cp := startControlPlane(t)
	admin := cp.clientset(t, cp.adminToken)
	const ns = "upgrade"
	kubeconfig := poolNamespace(t, cp, admin, ns)
	rs := startRuntimes(t, "127.0.0.2")
	if _, err := admin.DiscoveryV1().EndpointSlices(ns).Create(context.Background(),
		runtimeSlice(ns, rs.port, "127.0.0.2"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := startProc(t, "KUBECONFIG="+kubeconfig, "POD_NAME=proxy-0", "CERT_DIR="+dir,
		"BACKEND_POOL=kubernetes:runtimes:signaling", "POOL_CLAIMS=kubernetes", "POOL_RECONNECT_GRACE=0", "POOL_LEASE_DURATION=3s")
	addr := p.addr()
	trust := trustPEM(t, filepath.Join(dir, "ca.crt"))
	waitPool(t, addr, trust, 1, "free")
	a := &poolClient{src: "127.1.5.1"}
	held, status := a.upgrade(t, addr, trust)
	if status != http.StatusSwitchingProtocols {
		t.Fatalf("the first user: %d", status)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog("took over from the previous process: it finishes its open sessions")
	b := &poolClient{src: "127.1.5.2"}
	// For three Lease durations: the old process keeps renewing its
	// session's claim while it drains.
	for until := time.Now().Add(9 * time.Second); time.Now().Before(until); {
		if c, status := b.upgrade(t, addr, trust); status != http.StatusServiceUnavailable {
			if c != nil {
				c.Conn.Close()
			}
			t.Fatalf("a second user while the old process's session holds the only runtime: %d, want 503", status)
		}
	}
	if err := held.Echo("still mine", 5*time.Second); err != nil {
		t.Fatalf("the session in the old process: %v", err)
	}
	held.Close()
	p.waitLog("the previous process has exited")
	var got *wstest.Client
	waitFor(t, 30*time.Second, "the runtime for the second user once the first has left", func() bool {
		c, status := b.upgrade(t, addr, trust)
		if status == http.StatusSwitchingProtocols {
			got = c
			return true
		}
		if c != nil {
			c.Conn.Close()
		}
		return false
	})
	defer got.Close()
	for a, n := range rs.holding() {
		if n != 1 {
			t.Errorf("runtime %s holds %d sessions", a, n)
		}
	}
}

// An upgrade while the certificate is being ordered: the new process
// takes the order up from the same storage, and certmagic's lock there
// keeps the two from ordering at once: one certificate is obtained, and
// served.
func TestUpgradeDuringAnACMEOrder(t *testing.T) {
	b := backend(t)
	tlsPort := freePort(t)
	pb := startPebble(t, pebbleSpec{tlsPort: tlsPort, httpPort: freePort(t)})
	env := append(pb.acmeEnv(t.TempDir(), tlsPort, "proxy.test"), fmt.Sprintf("BACKEND_PORT=%d", b.Port()), "BACKEND_HOST=127.0.0.1")
	p := startProc(t, env...)
	addr := p.addr()
	p.cmd.Process.Signal(syscall.SIGHUP) // at once: the first process has just started its order
	p.waitLog("took over from the previous process: it finishes its open sessions")
	// The first process may have gone holding the storage's lock for the
	// name: the new one waits until the lock is stale (certmagic: about
	// ten seconds without an update), then orders.
	waitObtained(p, "proxy.test", 60*time.Second)
	waitServed(t, addr, "proxy.test", pb.roots)
	echoTrusting(t, addr, "proxy.test", pb.roots)
	if n := strings.Count(p.output(), "certificate obtained successfully"); n != 1 {
		t.Errorf("%d certificates obtained for one name across an upgrade, want 1", n)
	}
	// The old process stopped its ACME once, cleanly (a second stop of
	// certmagic's cache panics).
	waitExited(t, p.cmd.Process.Pid, 10*time.Second)
	if out := p.output(); strings.Contains(out, "panic:") {
		t.Errorf("the old process panicked on its way out:\n%s", out[strings.Index(out, "panic:"):])
	}
}
