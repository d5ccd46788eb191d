package config

import (
	"regexp"
	"slices"
	"strings"
)

// Variables in the environment that are not settings. The settings file
// refuses a name it does not know (it is this program's alone); the
// environment is shared with everything else a host or a container runs,
// so a name there is only warned about, and only when it is almost surely
// meant for this program: it starts with one of the settings' prefixes
// (BACKEND_, POOL_, ...) or is a known name misspelt by a letter or two.

// UnknownVar is a variable in the environment that is no setting, and the
// setting nearest to its name.
type UnknownVar struct {
	Name, Nearest string
}

// UnknownVariables are the variables of the environment the program
// started with that look meant for it but are no setting, at most
// maxUnknownVars of them: the program logs each at start and runs on.
func (c *Config) UnknownVariables() []UnknownVar { return c.unknownEnv }

// Bounds on the work, whatever the environment holds: names longer than
// maxVarName are not looked at, at most maxExamined of the names with a
// prefix of ours and as many without are examined, and at most
// maxUnknownVars are reported.
const (
	maxVarName     = 64
	maxExamined    = 2000
	maxUnknownVars = 10
	nearDistance   = 2 // a name this close to a setting's is a typo of it
)

// readElsewhere are variables this program or its libraries read that are
// not settings: never a typo, whatever they look like.
var readElsewhere = []string{
	"POD_NAME", "KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", // the pool's Kubernetes clients
	"SSL_CERT_FILE", "SSL_CERT_DIR", // crypto/x509's roots
	"GOGC", "GOMEMLIMIT", "GOMAXPROCS", "GODEBUG", "GOTRACEBACK", // the Go runtime (gc.go)
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", // net/http, for OIDC and ACME
}

// genericPrefixes are first words of settings that other software's
// variables share too often (LOG_DIR, WEB_CONCURRENCY) to mean a typo.
var genericPrefixes = []string{"LOG", "WEB"}

// kubeServiceLink matches the variables Kubernetes adds for each Service
// in the namespace (FOO_SERVICE_HOST, FOO_PORT_80_TCP_ADDR, ...): a
// Service named "backend" or "pool" must not look like a typo.
var kubeServiceLink = regexp.MustCompile(`_SERVICE_(HOST|PORT(_[A-Z0-9_]+)?)$|_PORT_[0-9]+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?$`)

// unknownVars returns the variables of environ that look meant for this
// program but are no setting, sorted, at most maxUnknownVars of them.
func unknownVars(environ []string, fields []field) []UnknownVar {
	known := map[string]bool{}
	count := map[string]int{}
	for _, f := range fields {
		known[f.key] = true
		p, _, _ := strings.Cut(f.key, "_")
		count[p]++
	}
	var names []string
	values := map[string]string{}
	for _, kv := range environ {
		if name, value, _ := strings.Cut(kv, "="); len(name) <= maxVarName && !known[name] {
			names = append(names, name)
			values[name] = value
		}
	}
	slices.Sort(names)
	// Names with a prefix of ours first: they are reported whatever their
	// distance. Then the others, by distance.
	var ours, others []string
	for _, name := range names {
		p, _, _ := strings.Cut(name, "_")
		if count[p] >= 2 && !slices.Contains(genericPrefixes, p) {
			ours = append(ours, name)
		} else {
			others = append(others, name)
		}
	}
	var out []UnknownVar
	for _, name := range ours[:min(len(ours), maxExamined)] {
		if len(out) < maxUnknownVars && !notOurs(name, values[name]) {
			nearest, _ := nearestKey(name, fields, true)
			out = append(out, UnknownVar{Name: name, Nearest: nearest})
		}
	}
	for _, name := range others[:min(len(others), maxExamined)] {
		if nearest, d := nearestKey(strings.ToUpper(name), fields, false); d <= nearDistance && !notOurs(name, values[name]) {
			out = append(out, UnknownVar{Name: name, Nearest: nearest})
		}
	}
	slices.SortFunc(out, func(a, b UnknownVar) int { return strings.Compare(a.Name, b.Name) })
	return out[:min(len(out), maxUnknownVars)]
}

// notOurs reports whether a variable is known to be another's: read by
// this program's libraries, or set by Kubernetes for a Service.
func notOurs(name, value string) bool {
	return slices.Contains(readElsewhere, name) || kubeServiceLink.MatchString(name) ||
		strings.HasSuffix(name, "_PORT") && strings.Contains(value, "://") // a Service's FOO_PORT=tcp://...
}

// nearestKey returns the setting nearest to name and its distance; unless
// all, only one within nearDistance counts (the others are not measured
// in full).
// A setting whose name holds every word of name is nearer than any other
// (POOL_GRACE: POOL_RECONNECT_GRACE), the shortest such first.
func nearestKey(name string, fields []field, all bool) (string, int) {
	best, bestD := "", maxVarName+1
	if all {
		words := strings.Split(name, "_")
		for _, f := range fields {
			if (best == "" || len(f.key) < len(best)) && containsWords(f.key, words) {
				best = f.key
			}
		}
		if best != "" {
			return best, 0
		}
	}
	for _, f := range fields {
		limit := nearDistance
		if all {
			limit = bestD - 1
		}
		if d, ok := distance(name, f.key, limit); ok && d < bestD {
			best, bestD = f.key, d
		}
	}
	return best, bestD
}

// distance is the optimal string alignment distance between a and b (a
// swap of two neighbours counts one edit), and whether it is at most
// limit; past that it stops early.
func distance(a, b string, limit int) (int, bool) {
	if limit < 0 || abs(len(a)-len(b)) > limit {
		return 0, false
	}
	if len(b) > maxVarName {
		return 0, false
	}
	var rows [3][maxVarName + 1]int // no allocation: this runs for every variable
	prev2, prev, cur := rows[0][:len(b)+1], rows[1][:len(b)+1], rows[2][:len(b)+1]
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
			rowMin = min(rowMin, cur[j])
		}
		if rowMin > limit {
			return 0, false
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)], prev[len(b)] <= limit
}

// containsWords reports whether every one of words is a word of key.
func containsWords(key string, words []string) bool {
	have := strings.Split(key, "_")
	for _, w := range words {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
