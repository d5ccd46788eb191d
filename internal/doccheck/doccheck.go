// Package doccheck finds what the Markdown documents name — settings, metric
// names, files, tests and relative links — so that a test can hold each
// against the code and the documents cannot drift from it unseen.
package doccheck

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Kinds of things a document mentions.
const (
	Setting = "setting"
	Metric  = "metric"
	Path    = "file"
	GoFile  = "Go file"
	Test    = "test"
	Link    = "link"
)

// Mention is one thing a document names, where it names it.
type Mention struct {
	File string // relative to the repository's root, slash-separated
	Line int
	Kind string
	Name string // for a test, "pkg/TestX" when the document names the package
}

func (m Mention) String() string { return fmt.Sprintf("%s:%d: %s %s", m.File, m.Line, m.Kind, m.Name) }

// Documents lists the Markdown files the check covers, relative to root:
// README.md, SECURITY.md, docs/*.md, bench/README.md, deploy/**/README.md.
func Documents(root string) ([]string, error) {
	out := []string{"README.md", "SECURITY.md", "bench/README.md"}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		return nil, err
	}
	for _, d := range docs {
		out = append(out, "docs/"+filepath.Base(d))
	}
	err = filepath.WalkDir(filepath.Join(root, "deploy"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "README.md" {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return err
	})
	return out, err
}

var (
	settingRE = regexp.MustCompile(`\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b`)
	metricRE  = regexp.MustCompile(`\bcloudxr_wss_proxy_[a-z0-9_]+`)
	// A path starts after a space, a bracket, a quote or a backtick (never
	// after "/" or ":", which would make it part of a URL or an absolute path).
	pathRE   = regexp.MustCompile("(?:^|[\\s(\\[`'\"])([A-Za-z0-9_.*-]+(?:/[A-Za-z0-9_.*-]+)+/?|[A-Za-z0-9_-]+/)")
	goFileRE = regexp.MustCompile("(?:^|[\\s(\\[`'\",])([A-Za-z0-9_*]+\\.go)\\b")
	testRE   = regexp.MustCompile(`(?:\b([a-z0-9_]+(?:/[a-z0-9_]+)*)/)?\b((?:Test|Fuzz|Benchmark)[A-Z0-9_][A-Za-z0-9_]*)`)
	linkRE   = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)\)`)
)

// Mentions finds what one document names. topDirs are the repository's
// top-level folders: a path is taken for one of ours only when it starts
// with one of them (k8s.io/api, files/alerts.yml and /etc/... are not).
func Mentions(file, text string, topDirs map[string]bool) []Mention {
	var out []Mention
	for i, line := range strings.Split(text, "\n") {
		add := func(kind, name string) {
			out = append(out, Mention{File: file, Line: i + 1, Kind: kind, Name: name})
		}
		for _, s := range settingRE.FindAllString(line, -1) {
			add(Setting, s)
		}
		for _, s := range metricRE.FindAllString(line, -1) {
			add(Metric, s)
		}
		for _, m := range pathRE.FindAllStringSubmatch(line, -1) {
			p := strings.TrimRight(m[1], ".")
			first, _, _ := strings.Cut(p, "/")
			last := p[strings.LastIndex(p, "/")+1:]
			if topDirs[first] && !testRE.MatchString(last) {
				add(Path, p)
			}
		}
		for _, m := range goFileRE.FindAllStringSubmatch(line, -1) {
			add(GoFile, m[1])
		}
		for _, m := range testRE.FindAllStringSubmatch(line, -1) {
			name := m[2]
			if m[1] != "" {
				name = m[1] + "/" + m[2]
			}
			add(Test, name)
		}
		for _, m := range linkRE.FindAllStringSubmatch(line, -1) {
			t := m[1]
			if strings.Contains(t, "://") || strings.HasPrefix(t, "mailto:") {
				continue
			}
			add(Link, t)
		}
	}
	return out
}

// Anchors are the link targets a Markdown file's headings make, as GitHub
// makes them: lower case, punctuation dropped, spaces to dashes, a repeated
// one numbered -1, -2...
func Anchors(text string) map[string]bool {
	out := map[string]bool{}
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		if fenced || !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(h) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || isWordRune(r):
				b.WriteRune(r)
			}
		}
		a := b.String()
		for n, try := 1, a; ; n++ {
			if !out[try] {
				out[try] = true
				break
			}
			try = fmt.Sprintf("%s-%d", a, n)
		}
	}
	return out
}

func isWordRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127 && r != '→' && r != '—' && r != '–'
}

// Code is what the repository defines, for mentions to be held against.
type Code struct {
	Root     string
	Settings map[string]bool // variables: the config struct's, read directly, the Makefile's, the Dockerfile's, the scripts'
	Metrics  map[string]bool
	Tests    map[string]bool // "TestX" and "pkg/dir/TestX"
	GoFiles  map[string]bool // base names
}

var (
	getenvRE   = regexp.MustCompile(`(?:Getenv|LookupEnv)\("([A-Z][A-Z0-9_]*)"\)`)
	metricDefs = regexp.MustCompile(`Namespace: ns, Name: "([a-z0-9_]+)"|ns\s*\+\s*"_([a-z0-9_]+)"`)
	testFuncRE = regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark)[A-Za-z0-9_]*)\(`)
	makeVarRE  = regexp.MustCompile(`\$\(([A-Z][A-Z0-9_]*)\)|(?m)^([A-Z][A-Z0-9_]*)\s*[:?]?=`)
	dockerRE   = regexp.MustCompile(`(?m)^(?:ARG|ENV)\s+([A-Z][A-Z0-9_]*)`)
	shellVarRE = regexp.MustCompile(`\$\{?([A-Z][A-Z0-9_]*)`)
)

// Scan reads the repository at root: every .go file for the variables it
// reads, the metrics it registers (the admin package's "ns" namespace) and
// its tests; the Makefile, the Dockerfile and the scripts for their
// variables. settings are the config struct's variables.
func Scan(root string, settings []string) (*Code, error) {
	c := &Code{Root: root, Settings: map[string]bool{}, Metrics: map[string]bool{}, Tests: map[string]bool{}, GoFiles: map[string]bool{}}
	for _, s := range settings {
		c.Settings[s] = true
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != root && (strings.HasPrefix(n, ".") || n == "dist" || n == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		name := d.Name()
		switch {
		case strings.HasSuffix(name, ".go"):
			return c.scanGo(p, name)
		case name == "Makefile" && filepath.Dir(p) == root:
			return c.scanVars(p, makeVarRE)
		case name == "Dockerfile" && filepath.Dir(p) == root:
			return c.scanVars(p, dockerRE)
		case strings.HasSuffix(name, ".sh"):
			return c.scanVars(p, shellVarRE)
		}
		return nil
	})
	return c, err
}

func (c *Code) scanGo(p, name string) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	c.GoFiles[name] = true
	for _, m := range getenvRE.FindAllSubmatch(b, -1) {
		c.Settings[string(m[1])] = true
	}
	for _, m := range metricDefs.FindAllSubmatch(b, -1) {
		c.Metrics["cloudxr_wss_proxy_"+string(m[1])+string(m[2])] = true
	}
	if strings.HasSuffix(name, "_test.go") {
		dir, _ := filepath.Rel(c.Root, filepath.Dir(p))
		for _, m := range testFuncRE.FindAllSubmatch(b, -1) {
			c.Tests[string(m[1])] = true
			c.Tests[filepath.ToSlash(dir)+"/"+string(m[1])] = true
		}
	}
	return nil
}

func (c *Code) scanVars(p string, re *regexp.Regexp) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	for _, m := range re.FindAllSubmatch(b, -1) {
		for _, g := range m[1:] {
			if len(g) > 0 {
				c.Settings[string(g)] = true
			}
		}
	}
	return nil
}

// Missing says what is wrong with a mention ("" when it is found): a setting,
// metric, file or test the code does not have, a link that leads nowhere.
func (c *Code) Missing(m Mention) string {
	switch m.Kind {
	case Setting:
		if !c.Settings[m.Name] {
			return "is not a setting of the config struct, a variable the code reads, or a Makefile, Dockerfile or script variable"
		}
	case Metric:
		base := m.Name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(m.Name, suffix); ok && c.Metrics[b] {
				base = b
			}
		}
		if !c.Metrics[base] {
			return "is not a metric the code registers"
		}
	case Path:
		if found, _ := filepath.Glob(filepath.Join(c.Root, filepath.FromSlash(strings.TrimSuffix(m.Name, "/")))); len(found) == 0 {
			return "does not exist in the repository"
		}
	case GoFile:
		if !c.goFileExists(m.Name) {
			return "is no Go file in the repository"
		}
	case Test:
		if !c.Tests[m.Name] {
			return "is no test function (func Test…/Fuzz…/Benchmark… in a _test.go file of that package)"
		}
	case Link:
		return c.brokenLink(m)
	}
	return ""
}

func (c *Code) goFileExists(pattern string) bool {
	for name := range c.GoFiles {
		if ok, _ := filepath.Match(pattern, name); ok {
			return true
		}
	}
	return false
}

func (c *Code) brokenLink(m Mention) string {
	target, anchor, _ := strings.Cut(m.Name, "#")
	file := m.File
	if target != "" {
		file = filepath.ToSlash(filepath.Join(filepath.Dir(m.File), target))
		if strings.HasPrefix(file, "../") {
			return "leads out of the repository"
		}
		if _, err := os.Stat(filepath.Join(c.Root, filepath.FromSlash(file))); err != nil {
			return "leads to " + file + ", which does not exist"
		}
	}
	if anchor == "" || !strings.HasSuffix(file, ".md") {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(c.Root, filepath.FromSlash(file)))
	if err != nil {
		return err.Error()
	}
	if !Anchors(string(b))[anchor] {
		return "leads to #" + anchor + ", a heading " + file + " does not have"
	}
	return ""
}

// TopDirs are the folders at the repository's root.
func TopDirs(root string) (map[string]bool, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") && !slices.Contains([]string{"dist"}, e.Name()) {
			out[e.Name()] = true
		}
	}
	return out, nil
}

// Row is one setting's row of the configuration reference.
type Row struct {
	Line    int
	Default string // the cell as written
}

// DefaultDiffers says how the row's default disagrees with the code's ("" if
// it does not): a default must appear in the cell as code (`5s`), and a
// setting without one must not show a value as code first.
func (r Row) DefaultDiffers(code string) string {
	if code == "" {
		if strings.HasPrefix(r.Default, "`") {
			return fmt.Sprintf("the table shows the default %s, the code has none", r.Default)
		}
		return ""
	}
	if !strings.Contains(r.Default, "`"+code+"`") {
		return fmt.Sprintf("the table shows the default %q, the code's is `%s`", r.Default, code)
	}
	return ""
}

var rowRE = regexp.MustCompile("^\\| `([A-Z][A-Z0-9_]*)` \\| ([^|]*) \\|")

// SettingsTable reads the rows between <!-- settings:begin --> and
// <!-- settings:end -->: one per setting, the name alone in its first cell.
func SettingsTable(text string) (map[string]Row, error) {
	rows := map[string]Row{}
	in := false
	for i, line := range strings.Split(text, "\n") {
		switch strings.TrimSpace(line) {
		case "<!-- settings:begin -->":
			in = true
			continue
		case "<!-- settings:end -->":
			in = false
			continue
		}
		if !in || !strings.HasPrefix(line, "| `") {
			continue
		}
		m := rowRE.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("line %d: a row of the settings table names one variable in its first cell: %q", i+1, line)
		}
		if prev, ok := rows[m[1]]; ok {
			return nil, fmt.Errorf("line %d: %s has a row already on line %d", i+1, m[1], prev.Line)
		}
		rows[m[1]] = Row{Line: i + 1, Default: strings.TrimSpace(m[2])}
	}
	if len(rows) == 0 {
		return nil, errors.New("no settings table between <!-- settings:begin --> and <!-- settings:end -->")
	}
	return rows, nil
}
