package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// A lever is measured against the proxy without it: -baseline REV builds
// the proxy as it was at git revision REV and runs the working tree's
// build against it in the same alternating rounds as against HAProxy, for
// the figures issue 14 is about. The ratio is new / baseline: under 1, the
// change pays.

// buildBaseline builds the proxy at rev (any git revision) in its own
// directory under work.
func buildBaseline(work, rev string) (string, error) {
	src := filepath.Join(work, "baseline-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	archive := exec.Command("sh", "-c", `git archive "$1" | tar -x -C "$2"`, "sh", rev, src)
	archive.Stderr = os.Stderr
	if err := archive.Run(); err != nil {
		return "", fmt.Errorf("extracting %s: %w", rev, err)
	}
	bin := filepath.Join(work, "cloudxr-wss-proxy-baseline")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	build.Dir, build.Stdout, build.Stderr = src, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("building %s: %w", rev, err)
	}
	return bin, nil
}

// baselineRuns measures the working tree's build (first) against the
// baseline (second): CPU per session with the same key exchange as
// HAProxy's and with the default one, CPU per echo round trip, and memory
// per idle session.
func (b *bench) baselineRuns(baseBin string) (string, error) {
	var out strings.Builder
	fmt.Fprintf(&out, "| figure | this tree | %s | this / %s | spread of the rounds |\n|---|---:|---:|---:|---:|\n", b.o.baseline, b.o.baseline)
	sessions := func(p *proxy) (measured, error) { return runSessions(p, b.o.clients, b.o.duration, false) }
	messages := func(p *proxy) (measured, error) { return runMessages(p, 8, b.o.duration) }
	x25519 := []string{"TLS_POST_QUANTUM=false"}
	for _, c := range []struct {
		scenario, label string
		env             []string
		run             func(*proxy) (measured, error)
		held            int // idle sessions each proxy holds during the rounds
	}{
		{"sessions", "CPU per session, X25519 (TLS_POST_QUANTUM=false)", x25519, sessions, 0},
		{"sessions", "CPU per session, default key exchange", nil, sessions, 0},
		{"held", fmt.Sprintf("CPU per session, X25519, while %d idle sessions are held", b.o.idle), x25519, sessions, b.o.idle},
		{"messages", "CPU per 256 B echo round trip", nil, messages, 0},
	} {
		if !b.o.runs(c.scenario) {
			continue
		}
		fmt.Fprintf(os.Stderr, "%s, against %s...\n", c.label, b.o.baseline)
		sum, per, err := b.selfRounds(baseBin, c.env, c.held, c.run)
		if err != nil {
			return "", err
		}
		r := row{ours: cpuUs(sum[0]), ha: cpuUs(sum[1])}.withRounds(per, cpuUs)
		fmt.Fprintf(&out, "| %s | %.1f µs | %.1f µs | %.2f | %s |\n", c.label, r.ours, r.ha, r.ratio(), r.spread())
	}
	if b.o.runs("idle") {
		// Each round on a fresh pair, as against HAProxy.
		sum, per, err := b.idleRounds(func() (*pair, error) { return b.startSelfPair(baseBin) })
		if err != nil {
			return "", err
		}
		kib := func(m measured) float64 { return m.perSession / 1024 }
		r := row{ours: kib(sum[0]), ha: kib(sum[1])}.withRounds(per, kib)
		fmt.Fprintf(&out, "| memory per idle session, %d held | %.1f KiB | %.1f KiB | %.2f | %s |\n", b.o.idle, r.ours, r.ha, r.ratio(), r.spread())
	}
	return out.String(), nil
}

// selfRounds runs the rounds on a fresh pair of this tree's build and the
// baseline, each first given held idle sessions to keep: a garbage
// collector's target shows its cost in handshakes only when the live heap
// is large.
func (b *bench) selfRounds(baseBin string, env []string, held int, run func(*proxy) (measured, error)) ([2]measured, [][2]measured, error) {
	p, err := b.startSelfPair(baseBin, env...)
	if err != nil {
		return [2]measured{}, nil, err
	}
	defer p.stop()
	if held > 0 {
		for _, x := range []*proxy{p.ours, p.ha} {
			cls, _, err := holdIdle(x, held)
			defer closeAll(cls)
			if err != nil {
				return [2]measured{}, nil, fmt.Errorf("holding idle sessions on %s: %w", x.name, err)
			}
		}
	}
	return alternate(p, b.o.rounds, run)
}

// startSelfPair runs this tree's build and the baseline with the same
// certificate and settings, warmed up.
func (b *bench) startSelfPair(baseBin string, env ...string) (*pair, error) {
	cur, err := startOurs(b.bin, b.dir("ecdsa"), b.port, b.work, env...)
	if err != nil {
		return nil, err
	}
	base, err := startOurs(baseBin, b.dir("ecdsa"), b.port, b.work, env...)
	if err != nil {
		cur.stop()
		return nil, err
	}
	base.name = "baseline"
	p := &pair{cur, base}
	for _, x := range []*proxy{cur, base} {
		if err := warm(x); err != nil {
			p.stop()
			return nil, err
		}
	}
	return p, nil
}

// againstBaseline builds the baseline, measures, and writes the table to
// the output folder as baseline.md (and to standard output).
func (b *bench) againstBaseline() error {
	baseBin, err := buildBaseline(b.work, b.o.baseline)
	if err != nil {
		return err
	}
	table, err := b.baselineRuns(baseBin)
	if err != nil {
		return err
	}
	text := fmt.Sprintf("# This tree against %s\n\n%s\n\n%d rounds of %s per build, alternating which goes first; the ratio is the median of the rounds'.\n\n%s",
		b.o.baseline, b.rep.env, b.o.rounds, b.o.duration, table)
	fmt.Print(text)
	if err := os.MkdirAll(b.o.out, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(b.o.out, "baseline.md"), []byte(text), 0o644)
}
