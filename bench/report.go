package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

type labelled struct {
	label  string
	m      [2]measured   // ours, HAProxy: sums over the rounds
	rounds [][2]measured // each round
}

type report struct {
	env      string
	opts     options
	sessions []labelled
	auth     [2]measured // ours with OIDC verification, ours without
	messages [2]measured
	// each round of the scenarios above, for the median ratio and spread
	authRounds, messageRounds, bulkRounds [][2]measured
	bulk                                  [2]measured
	idle                                  [2]measured
	idleRounds                            [][2]measured
}

// row is one line of the table: ours, HAProxy, their ratio and the target.
type row struct {
	figure      string
	ours, ha    float64
	unit        string
	target      float64 // ratio ours/HAProxy must be at most this; 0: none
	lowerBetter bool
	// med, lo, hi: the median ratio of the rounds and its spread; 0 when
	// the figure has no rounds (memory, sessions held)
	med, lo, hi float64
}

func (r row) ratio() float64 {
	if r.med > 0 {
		return r.med
	}
	if r.ha == 0 {
		return math.NaN()
	}
	return r.ours / r.ha
}

// spread is the rounds' lowest and highest ratio, for the table.
func (r row) spread() string {
	if r.med == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f–%.2f", r.lo, r.hi)
}

// withRounds sets r's median ratio and spread from each round's figure f.
func (r row) withRounds(rounds [][2]measured, f func(measured) float64) row {
	var ratios []float64
	for _, pr := range rounds {
		if b := f(pr[1]); b > 0 {
			ratios = append(ratios, f(pr[0])/b)
		}
	}
	if len(ratios) == 0 {
		return r
	}
	slices.Sort(ratios)
	n := len(ratios)
	r.med = ratios[n/2]
	if n%2 == 0 {
		r.med = (ratios[n/2-1] + ratios[n/2]) / 2
	}
	r.lo, r.hi = ratios[0], ratios[n-1]
	return r
}

func cpuUs(m measured) float64 { return us(m.cpuPerOp()) }

// mk is a row without rounds.
func mk(figure string, ours, ha float64, unit string, target float64, lowerBetter bool) row {
	return row{figure: figure, ours: ours, ha: ha, unit: unit, target: target, lowerBetter: lowerBetter}
}

func (r row) verdict() string {
	switch {
	case r.target == 0:
		return "(no target)"
	case r.ratio() <= r.target:
		return fmt.Sprintf("≤ %.2f ✔", r.target)
	}
	return fmt.Sprintf("≤ %.2f ✘", r.target)
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func (rep *report) rows() []row {
	var rows []row
	for _, s := range rep.sessions {
		target := 0.0
		switch {
		case strings.HasPrefix(s.label, "ECDSA P-256, same certificate"):
			target = 0.8 // for both key exchanges
		case strings.HasPrefix(s.label, "each"):
			target = 0.5
		}
		rows = append(rows,
			row{figure: "CPU per session, " + s.label, ours: us(s.m[0].cpuPerOp()), ha: us(s.m[1].cpuPerOp()), unit: "µs", target: target, lowerBetter: true}.withRounds(s.rounds, cpuUs),
			mk("sessions per second, "+s.label, s.m[0].rate(), s.m[1].rate(), "/s", 0, false))
	}
	if a := rep.auth; a[0].ops > 0 {
		rows = append(rows, row{figure: "CPU per session, ECDSA P-256: ours with OIDC verification (cached keys) in the first column, ours without in the second",
			ours: us(a[0].cpuPerOp()), ha: us(a[1].cpuPerOp()), unit: "µs", target: 1.05, lowerBetter: true}.withRounds(rep.authRounds, cpuUs))
	}
	m := rep.messages
	if m[0].ops > 0 {
		rows = append(rows,
			row{figure: "CPU per 256 B echo round trip", ours: us(m[0].cpuPerOp()), ha: us(m[1].cpuPerOp()), unit: "µs", target: 0.8, lowerBetter: true}.withRounds(rep.messageRounds, cpuUs),
			mk("p50 latency, 8 sessions", us(m[0].pct(0.50)), us(m[1].pct(0.50)), "µs", 0, true),
			mk("p99 latency, 8 sessions", us(m[0].pct(0.99)), us(m[1].pct(0.99)), "µs", 1.0, true),
			mk("p99.9 latency, 8 sessions", us(m[0].pct(0.999)), us(m[1].pct(0.999)), "µs", 0, true),
			mk("round trips per second", m[0].rate(), m[1].rate(), "/s", 0, false))
	}
	b := rep.bulk
	perMiB := func(x measured) float64 {
		if x.ops == 0 {
			return 0
		}
		return float64(x.cpu) / float64(time.Millisecond) / (float64(x.ops) / (1 << 20))
	}
	if b[0].ops > 0 {
		rows = append(rows,
			row{figure: "CPU per MiB, bulk 64 KiB both ways", ours: perMiB(b[0]), ha: perMiB(b[1]), unit: "ms", target: 1.0, lowerBetter: true}.withRounds(rep.bulkRounds, perMiB),
			mk("bulk throughput", b[0].rate()/1e6, b[1].rate()/1e6, "MB/s", 0, false))
	}
	i := rep.idle
	if i[0].held == 0 {
		return rows
	}
	rows = append(rows,
		row{figure: "memory per idle session", ours: i[0].perSession / 1024, ha: i[1].perSession / 1024, unit: "KiB", target: 0.65, lowerBetter: true}.withRounds(rep.idleRounds, func(m measured) float64 { return m.perSession }),
		mk(fmt.Sprintf("sessions held, of %d", rep.opts.idle), float64(i[0].held), float64(i[1].held), "", 0, false),
		mk("held sessions that echo after idling", float64(i[0].alive), float64(i[1].alive), "", 0, false))
	return rows
}

func (rep *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# cloudxr-wss-proxy against HAProxy\n\nMeasured %s.\n\n", rep.env)
	fmt.Fprintf(&b, "Each scenario runs %d rounds of %v per proxy, alternating which goes first (ours then HAProxy, then HAProxy then ours, ...). The ours and HAProxy columns sum all rounds; for CPU, the ratio is the median of the rounds' ratios and the spread their lowest and highest, so one noisy round on this shared machine moves neither. CPU is the proxy's own user+system time from /proc/PID/stat over all threads, divided by the operations it served; memory is the growth of its resident set while %d sessions are held, per session.\n\n",
		rep.opts.rounds, rep.opts.duration, rep.opts.idle)
	b.WriteString("| figure | ours | HAProxy | ours / HAProxy | spread of the rounds | target |\n|---|---:|---:|---:|---:|---|\n")
	for _, r := range rep.rows() {
		fmt.Fprintf(&b, "| %s | %s | %s | %.2f | %s | %s |\n", r.figure, num(r.ours, r.unit), num(r.ha, r.unit), r.ratio(), r.spread(), r.verdict())
	}
	var errs []string
	for _, s := range rep.sessions {
		if s.m[0].errors+s.m[1].errors > 0 {
			errs = append(errs, fmt.Sprintf("sessions %s: %d/%d client errors", s.label, s.m[0].errors, s.m[1].errors))
		}
	}
	if len(errs) > 0 {
		b.WriteString("\nErrors: " + strings.Join(errs, "; ") + "\n")
	}
	b.WriteString("\nChart: [latency distribution and CPU per operation](latest.svg). Method and profiles: [bench/README.md](../README.md).\n")
	return b.String()
}

func num(v float64, unit string) string {
	switch {
	case unit == "":
		return fmt.Sprintf("%.0f", v)
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, unit)
	case v >= 10:
		return fmt.Sprintf("%.1f %s", v, unit)
	}
	return fmt.Sprintf("%.2f %s", v, unit)
}

func (rep *report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	md := rep.markdown()
	svg := rep.svg()
	stamp := time.Now().UTC().Format("2006-01-02")
	for name, data := range map[string]string{
		"latest.md": md, "latest.svg": svg, stamp + ".md": strings.ReplaceAll(md, "latest.svg", stamp+".svg"), stamp + ".svg": svg,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	fmt.Print(md)
	return nil
}

// svg draws the latency distribution (left) and the CPU ratios (right).
func (rep *report) svg() string {
	const w, h = 960, 420
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`, w, h)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>`)
	rep.latencyChart(&b)
	rep.ratioChart(&b)
	fmt.Fprintf(&b, `<text x="%v" y="416" fill="#555" font-size="10">%s</text>`, 60.0, rep.env)
	b.WriteString(`</svg>`)
	return b.String()
}

var (
	chartColors = [2]string{"#1f77b4", "#d62728"}
	chartNames  = [2]string{"cloudxr-wss-proxy", "HAProxy"}
)

// latencyChart draws the CDF of round-trip latency, log x.
func (rep *report) latencyChart(b *bytes.Buffer) {
	x0, y0, pw, ph := 60.0, 40.0, 380.0, 320.0
	fmt.Fprintf(b, `<text x="%v" y="24" font-size="14">256 B echo round trip, 8 sessions (CDF)</text>`, x0)
	lo, hi := math.Inf(1), 0.0
	for _, m := range rep.messages {
		if len(m.lat) > 0 {
			lo = math.Min(lo, us(m.lat[0]))
			hi = math.Max(hi, us(m.pct(0.9999)))
		}
	}
	if lo <= 0 || math.IsInf(lo, 1) {
		lo = 1
	}
	lx := func(v float64) float64 {
		return x0 + pw*(math.Log10(math.Max(v, lo))-math.Log10(lo))/math.Max(math.Log10(hi)-math.Log10(lo), 1e-9)
	}
	fmt.Fprintf(b, `<rect x="%v" y="%v" width="%v" height="%v" fill="none" stroke="#999"/>`, x0, y0, pw, ph)
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		v := math.Pow(10, e)
		if v < lo || v > hi {
			continue
		}
		fmt.Fprintf(b, `<line x1="%.1f" y1="%v" x2="%.1f" y2="%v" stroke="#eee"/><text x="%.1f" y="%v" text-anchor="middle">%g µs</text>`, lx(v), y0, lx(v), y0+ph, lx(v), y0+ph+16, v)
	}
	for _, q := range []float64{0, 0.25, 0.5, 0.75, 0.9, 1} {
		y := y0 + ph*(1-q)
		fmt.Fprintf(b, `<text x="%v" y="%.1f" text-anchor="end">%g</text>`, x0-6, y+4, q)
	}
	for i, m := range rep.messages {
		if len(m.lat) == 0 {
			continue
		}
		var pts []string
		step := max(1, len(m.lat)/400)
		for k := 0; k < len(m.lat); k += step {
			q := float64(k) / float64(len(m.lat))
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", lx(us(m.lat[k])), y0+ph*(1-q)))
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, chartColors[i], strings.Join(pts, " "))
		fmt.Fprintf(b, `<text x="%v" y="%v" text-anchor="end" fill="%s">%s: p50 %.0f µs, p99 %.0f µs</text>`, x0+pw-8, y0+ph-36+16*float64(i), chartColors[i], chartNames[i], us(m.pct(0.5)), us(m.pct(0.99)))
	}
}

// ratioChart draws CPU per operation and memory per session, ours /
// HAProxy, against their targets.
func (rep *report) ratioChart(b *bytes.Buffer) {
	rx, rw := 560.0, 360.0
	fmt.Fprintf(b, `<text x="%v" y="24" font-size="14">CPU per operation and memory per session, ours / HAProxy</text>`, rx-60)
	var bars []row
	for _, r := range rep.rows() {
		if r.lowerBetter && (strings.HasPrefix(r.figure, "CPU") || strings.HasPrefix(r.figure, "memory")) {
			bars = append(bars, r)
		}
	}
	maxR := 1.5
	for _, r := range bars {
		if !math.IsNaN(r.ratio()) {
			maxR = math.Max(maxR, r.ratio()*1.1)
		}
	}
	bh := 320.0 / float64(max(len(bars), 1))
	for k, r := range bars {
		y := 40 + float64(k)*bh
		ratio := r.ratio()
		if math.IsNaN(ratio) {
			ratio = 0
		}
		color := chartColors[0]
		if r.target > 0 && ratio > r.target {
			color = "#ff7f0e"
		}
		fmt.Fprintf(b, `<rect x="%v" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, rx, y+4, rw*ratio/maxR, bh-18, color)
		fmt.Fprintf(b, `<text x="%v" y="%.1f">%s: %.2f</text>`, rx, y+bh-2, shorten(r.figure), r.ratio())
		if r.target > 0 {
			tx := rx + rw*r.target/maxR
			fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black" stroke-dasharray="3,2"/>`, tx, y+2, tx, y+bh-12)
		}
	}
	one := rx + rw/maxR
	fmt.Fprintf(b, `<line x1="%.1f" y1="36" x2="%.1f" y2="364" stroke="#d62728"/><text x="%.1f" y="380" text-anchor="middle" fill="#d62728">HAProxy = 1</text>`, one, one, one)
	fmt.Fprintf(b, `<text x="%v" y="404" fill="#555">lower is better; dashed: target; orange: target missed</text>`, rx-60)
}

func shorten(s string) string {
	s = strings.TrimPrefix(s, "CPU per ")
	if len(s) > 52 {
		s = s[:52] + "…"
	}
	return s
}
