// Command bench measures cloudxr-wss-proxy against HAProxy (Debian's
// package, configured as the reference container) on this machine, in one
// run, on one echo backend, and writes a Markdown table and an SVG chart.
//
// Usage: go run ./bench [-out bench/results] [-duration 3s] [-rounds 6] [-idle 5000]
// (make bench installs HAProxy first when it is missing).
package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/certs"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/oidctest"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	out      string
	duration time.Duration
	rounds   int
	clients  int
	idle     int
	hold     time.Duration
	only     string
	baseline string // a git revision: measure this tree against it instead of HAProxy
}

func (o options) runs(scenario string) bool {
	return o.only == "" || strings.Contains(","+o.only+",", ","+scenario+",")
}

func run() error {
	o := parseOptions()
	if _, err := exec.LookPath("haproxy"); err != nil && o.baseline == "" {
		return fmt.Errorf("haproxy is not installed (apt-get install -y haproxy; make bench does it)")
	}
	work, err := os.MkdirTemp("", "cxp-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bin, err := buildProxy(work)
	if err != nil {
		return err
	}
	env, err := describeMachine()
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, env)
	// The stand-in for the CloudXR runtime, echoing raw bytes: it costs
	// little, and the same for both proxies.
	backend, err := wstest.StartBackendWith("127.0.0.1:0", func(b *wstest.Backend) { b.RawEcho = true })
	if err != nil {
		return err
	}
	defer backend.Close()

	b := &bench{o: o, bin: bin, work: work, port: backend.Port(), rep: report{env: env, opts: o}}
	if err := b.certificates(); err != nil {
		return err
	}
	if o.baseline != "" {
		return b.againstBaseline()
	}
	if err := b.sessionScenarios(); err != nil {
		return err
	}
	if err := b.authScenario(); err != nil {
		return err
	}
	if err := b.dataScenarios(); err != nil {
		return err
	}
	if err := b.idleScenario(); err != nil {
		return err
	}
	return b.rep.write(o.out)
}

func parseOptions() options {
	var o options
	flag.StringVar(&o.out, "out", "bench/results", "where the table and chart go")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "length of each measured run")
	flag.IntVar(&o.rounds, "rounds", 6, "rounds per scenario, each one run of both proxies, alternating which goes first")
	flag.IntVar(&o.clients, "clients", 8, "closed-loop clients in the sessions scenario")
	flag.IntVar(&o.idle, "idle", 5000, "sessions held in the idle scenario")
	flag.DurationVar(&o.hold, "hold", 10*time.Second, "how long the idle sessions stay quiet before each must echo")
	flag.StringVar(&o.only, "only", "", "run only these scenarios (comma-separated: sessions,auth,messages,bulk,idle; with -baseline also held: sessions while -idle sessions are held), for profiling")
	flag.StringVar(&o.baseline, "baseline", "", "measure this tree against the proxy at this git revision (a lever's effect) instead of against HAProxy")
	flag.Parse()
	return o
}

func buildProxy(work string) (string, error) {
	bin := filepath.Join(work, "cloudxr-wss-proxy")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("building the proxy: %w", err)
	}
	return bin, nil
}

// bench is one run of every scenario.
type bench struct {
	o         options
	bin, work string
	port      int // the backend's
	rep       report
}

func (b *bench) dir(name string) string { return filepath.Join(b.work, name) }

// certificates writes the same ECDSA P-256 and RSA-2048 for both; then
// each proxy's default (ours generates ECDSA, the container RSA-2048).
func (b *bench) certificates() error {
	for _, w := range []struct {
		dir   string
		write func(string) error
	}{{"ecdsa", writeECDSA}, {"rsa", writeRSA}, {"ha-default", writeRSA}} {
		if err := w.write(b.dir(w.dir)); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) sessionScenarios() error {
	if !b.o.runs("sessions") {
		return nil
	}
	ecdsa, rsa := b.dir("ecdsa"), b.dir("rsa")
	for _, c := range []struct {
		label         string
		oursDir, haPM string
		env           []string
		resume        bool // tickets on for both, clients resume
	}{
		{"ECDSA P-256, same certificate", ecdsa, filepath.Join(ecdsa, "server.pem"), nil, false},
		{"ECDSA P-256, same certificate and key exchange (ours with TLS_POST_QUANTUM=false)", ecdsa, filepath.Join(ecdsa, "server.pem"), []string{"TLS_POST_QUANTUM=false"}, false},
		{"RSA-2048, same certificate", rsa, filepath.Join(rsa, "server.pem"), nil, false},
		{"each with its default certificate", b.dir("ours-default"), filepath.Join(b.dir("ha-default"), "server.pem"), nil, false},
		{"ECDSA P-256, session resumption on for both (an option; off by default)", ecdsa, filepath.Join(ecdsa, "server.pem"), []string{"TLS_SESSION_TICKETS=true"}, true},
	} {
		pair, err := startPair(b.bin, c.oursDir, c.haPM, b.port, b.work, c.resume, c.env...)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "sessions (%s)...\n", c.label)
		r, per, err := alternate(pair, b.o.rounds, func(p *proxy) (measured, error) { return runSessions(p, b.o.clients, b.o.duration, c.resume) })
		pair.stop()
		if err != nil {
			return err
		}
		b.rep.sessions = append(b.rep.sessions, labelled{c.label, r, per})
	}
	return nil
}

// authScenario measures what OIDC verification adds to a session: ours
// requiring tokens from a real provider (its keys cached) against ours
// without authentication, ABBA, same certificate.
func (b *bench) authScenario() error {
	if !b.o.runs("auth") {
		return nil
	}
	prov, err := oidctest.New()
	if err != nil {
		return err
	}
	if err := prov.Start(); err != nil {
		return err
	}
	defer prov.Stop()
	token, err := prov.Token()
	if err != nil {
		return err
	}
	on, err := startOurs(b.bin, b.dir("ecdsa"), b.port, b.work, "AUTH_OIDC_ISSUER="+prov.Issuer, "AUTH_AUDIENCE="+oidctest.ClientID)
	if err != nil {
		return err
	}
	on.header = []string{"Authorization: Bearer " + token}
	off, err := startOurs(b.bin, b.dir("ecdsa"), b.port, b.work)
	if err != nil {
		on.stop()
		return err
	}
	p := &pair{on, off}
	defer p.stop()
	for _, x := range []*proxy{on, off} { // warm up, and wait for the keys to load
		if err := warm(x); err != nil {
			return err
		}
	}
	fmt.Fprintln(os.Stderr, "sessions with and without OIDC verification...")
	b.rep.auth, b.rep.authRounds, err = alternate(p, b.o.rounds, func(x *proxy) (measured, error) { return runSessions(x, b.o.clients, b.o.duration, false) })
	return err
}

// warm runs sessions until they work (keys may still be loading), then a
// little more.
func warm(x *proxy) error {
	var err error
	for range 50 {
		if _, err = runSessions(x, 4, 200*time.Millisecond, false); err == nil {
			_, err = runSessions(x, 4, 500*time.Millisecond, false)
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("warming up %s: %w", x.name, err)
}

// dataScenarios: messages and bulk, on one pair with the same ECDSA
// certificate.
func (b *bench) dataScenarios() error {
	pair, err := startPair(b.bin, b.dir("ecdsa"), filepath.Join(b.dir("ecdsa"), "server.pem"), b.port, b.work, false)
	if err != nil {
		return err
	}
	defer pair.stop()
	if b.o.runs("messages") {
		fmt.Fprintln(os.Stderr, "messages...")
		if b.rep.messages, b.rep.messageRounds, err = alternate(pair, b.o.rounds, func(p *proxy) (measured, error) { return runMessages(p, 8, b.o.duration) }); err != nil {
			return err
		}
	}
	if b.o.runs("bulk") {
		fmt.Fprintln(os.Stderr, "bulk...")
		if b.rep.bulk, b.rep.bulkRounds, err = alternate(pair, b.o.rounds, func(p *proxy) (measured, error) { return runBulk(p, 4, b.o.duration) }); err != nil {
			return err
		}
	}
	return nil
}

// idleScenario holds b.o.idle quiet sessions on each proxy, in rounds
// alternating which goes first, each round on a freshly started pair: the
// memory a proxy holds for them is then theirs, not what an earlier
// scenario left mapped.
func (b *bench) idleScenario() error {
	if !b.o.runs("idle") {
		return nil
	}
	var err error
	b.rep.idle, b.rep.idleRounds, err = b.idleRounds(func() (*pair, error) {
		return startPair(b.bin, b.dir("ecdsa"), filepath.Join(b.dir("ecdsa"), "server.pem"), b.port, b.work, false)
	})
	return err
}

// idleRounds runs the idle rounds, each on a pair from start, and returns
// the figures merged and by round.
func (b *bench) idleRounds(start func() (*pair, error)) (sum [2]measured, rounds [][2]measured, err error) {
	for r := range b.o.rounds {
		pair, err := start()
		if err != nil {
			return sum, nil, err
		}
		var this [2]measured
		for _, i := range [2][2]int{{0, 1}, {1, 0}}[r%2] {
			p := []*proxy{pair.ours, pair.ha}[i]
			fmt.Fprintf(os.Stderr, "idle %d sessions on %s, round %d...\n", b.o.idle, p.name, r+1)
			m, err := runIdle(p, b.o.idle, b.o.hold)
			if err != nil {
				pair.stop()
				return sum, nil, fmt.Errorf("idle on %s: %w", p.name, err)
			}
			this[i] = m
			fmt.Fprintf(os.Stderr, "  %s: %.1f KiB a session\n", p.name, m.perSession/1024)
		}
		pair.stop()
		rounds = append(rounds, this)
		for i := range 2 {
			sum[i] = mergeIdle(sum[i], this[i], r)
		}
	}
	return sum, rounds, nil
}

// mergeIdle adds round r's idle figures to the rounds before: memory per
// session averaged, sessions held and alive the round's lowest.
func mergeIdle(sum, m measured, r int) measured {
	if r == 0 {
		return m
	}
	sum.perSession = (sum.perSession*float64(r) + m.perSession) / float64(r+1)
	sum.held, sum.alive = min(sum.held, m.held), min(sum.alive, m.alive)
	return sum
}

// pair is our proxy and HAProxy, both running, on the same backend.
type pair struct{ ours, ha *proxy }

func startPair(bin, oursDir, haPEM string, backendPort int, work string, tickets bool, env ...string) (*pair, error) {
	ours, err := startOurs(bin, oursDir, backendPort, work, env...)
	if err != nil {
		return nil, err
	}
	ha, err := startHAProxy(haPEM, backendPort, work, tickets)
	if err != nil {
		ours.stop()
		return nil, err
	}
	p := &pair{ours, ha}
	// Warm both up: code paths, allocator, connection pools.
	for _, x := range []*proxy{ours, ha} {
		if _, err := runSessions(x, 4, 500*time.Millisecond, false); err != nil {
			p.stop()
			return nil, fmt.Errorf("warming up %s: %w", x.name, err)
		}
	}
	return p, nil
}

func (p *pair) stop() { p.ours.stop(); p.ha.stop() }

// alternate measures the pair in rounds, alternating which goes first
// (ours then HAProxy, HAProxy then ours, ...), so a drift in the machine's
// speed weighs on both alike. It returns each proxy's sum over the rounds
// and every round's pair, from which the report takes the median ratio and
// its spread.
func alternate(p *pair, rounds int, f func(*proxy) (measured, error)) ([2]measured, [][2]measured, error) {
	var sum [2]measured
	per := make([][2]measured, 0, rounds)
	for r := range rounds {
		var this [2]measured
		for _, i := range [2][2]int{{0, 1}, {1, 0}}[r%2] {
			x := []*proxy{p.ours, p.ha}[i]
			m, err := f(x)
			if err != nil {
				return sum, per, fmt.Errorf("%s: %w", x.name, err)
			}
			this[i] = m
			sum[i] = merge(sum[i], m)
		}
		per = append(per, this)
	}
	return sum, per, nil
}

func merge(a, b measured) measured {
	a.ops += b.ops
	a.cpu += b.cpu
	a.wall += b.wall
	a.errors += b.errors
	a.lat = mergeSorted(a.lat, b.lat)
	return a
}

func mergeSorted(a, b []time.Duration) []time.Duration {
	out := make([]time.Duration, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if a[i] <= b[j] {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	return append(append(out, a[i:]...), b[j:]...)
}

func writeECDSA(dir string) error {
	g, err := certs.GenerateSelfSigned([]string{"localhost", "127.0.0.1"}, time.Now())
	if err != nil {
		return err
	}
	os.MkdirAll(dir, 0o755)
	return os.WriteFile(filepath.Join(dir, "server.pem"), g.PEM(), 0o600)
}

// writeRSA makes what the HAProxy container's entrypoint makes with
// openssl: RSA-2048, CN=localhost, 365 days.
func writeRSA(dir string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	os.MkdirAll(dir, 0o755)
	data := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})...)
	return os.WriteFile(filepath.Join(dir, "server.pem"), data, 0o600)
}

// describeMachine names what the figures were measured on.
func describeMachine() (string, error) {
	ha, err := exec.Command("haproxy", "-v").Output()
	if err != nil {
		return "", err
	}
	haLine, _, _ := strings.Cut(string(ha), "\n")
	ssl := "OpenSSL (version unknown)"
	if vv, err := exec.Command("haproxy", "-vv").Output(); err == nil {
		for _, l := range strings.Split(string(vv), "\n") {
			if strings.Contains(l, "Running on OpenSSL version") {
				ssl = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "Running on "))
			}
		}
	}
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%s; %s, %s; %s; %d cores (%s)", time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		runtime.Version(), strings.TrimSpace(haLine), ssl, runtime.NumCPU(), cpu), nil
}
