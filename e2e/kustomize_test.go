//go:build e2e

package e2e

// The kustomizations of deploy/kubernetes as a user applies them: built by
// kustomize (its API, sigs.k8s.io/kustomize/api at the version go.mod
// names: the krusty package that `kustomize build` and `kubectl apply -k`
// run), each alone and with the monitoring component added as its
// kustomization.yaml says, and every object sent to a real API server.

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const kustomizeRoot = "deploy/kubernetes"

// kustomizations are the folders under deploy/kubernetes holding a
// Kustomization (components and plain manifests are not built alone), as
// paths relative to it ("." for the root).
func kustomizations(t *testing.T) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(kustomizeRoot, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.Name() != "kustomization.yaml" {
			return err
		}
		var k struct{ Kind string }
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := yaml.Unmarshal(b, &k); err != nil {
			return err
		}
		if k.Kind != "Component" {
			rel, _ := filepath.Rel(kustomizeRoot, filepath.Dir(path))
			dirs = append(dirs, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// kustomizeBuild is `kustomize build dir` of a copy of deploy/kubernetes,
// with components added to dir's kustomization.yaml as a user would.
func kustomizeBuild(t *testing.T, dir string, components ...string) []byte {
	t.Helper()
	tree := t.TempDir()
	if err := os.CopyFS(tree, os.DirFS(kustomizeRoot)); err != nil {
		t.Fatal(err)
	}
	if len(components) > 0 {
		file := filepath.Join(tree, dir, "kustomization.yaml")
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("\ncomponents:")) {
			t.Fatalf("%s already lists components", file)
		}
		b = append(b, "components:\n"...)
		for _, c := range components {
			b = append(b, "  - "+c+"\n"...)
		}
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(tree, dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", filepath.Join(kustomizeRoot, dir), err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// monitoringFrom is how a kustomization in dir names the component.
func monitoringFrom(dir string) string {
	if dir == "." {
		return "monitoring"
	}
	return "../monitoring"
}

// Every kustomization builds, alone and with the monitoring component; the
// root is exactly the base; the monitoring component adds exactly its
// PodMonitor and PrometheusRule; and every `kubectl apply -k` the README
// and the kustomizations' comments give names one of them.
func TestKustomizeBuilds(t *testing.T) {
	dirs := kustomizations(t)
	for _, want := range []string{".", "base", "acme", "auth-oidc", "auth-tokens", "pool", "routing"} {
		if !slices.Contains(dirs, want) {
			t.Errorf("no kustomization in %s/%s (have %v)", kustomizeRoot, want, dirs)
		}
	}
	for _, dir := range dirs {
		plain := decodeYAML(t, dir, kustomizeBuild(t, dir))
		withMonitoring := decodeYAML(t, dir, kustomizeBuild(t, dir, monitoringFrom(dir)))
		if len(withMonitoring) < len(plain) {
			t.Fatalf("%s: %d objects with the monitoring component, %d without", dir, len(withMonitoring), len(plain))
		}
		var added []string
		for _, o := range withMonitoring[len(plain):] {
			added = append(added, o.GetKind())
			if o.GetLabels()["app.kubernetes.io/part-of"] != "cloudxr" {
				t.Errorf("%s with monitoring: %s %s lacks the part-of label", dir, o.GetKind(), o.GetName())
			}
		}
		if len(withMonitoring) != len(plain)+2 || !slices.Equal(added, []string{"PodMonitor", "PrometheusRule"}) {
			t.Errorf("%s: the monitoring component adds %v, want a PodMonitor and a PrometheusRule", dir, added)
		}
		for _, o := range plain {
			if o.GetLabels()["app.kubernetes.io/part-of"] != "cloudxr" {
				t.Errorf("%s: %s %s lacks the part-of label", dir, o.GetKind(), o.GetName())
			}
		}
	}
	if root, base := kustomizeBuild(t, "."), kustomizeBuild(t, "base"); !bytes.Equal(root, base) {
		t.Errorf("kubectl apply -k %s does not render the base:\n%s\nbase:\n%s", kustomizeRoot, root, base)
	}
	for _, dir := range documentedKustomizations(t) {
		if !slices.Contains(dirs, dir) {
			t.Errorf("the docs say kubectl apply -k %s, which is not a kustomization built here", filepath.Join(kustomizeRoot, dir))
		}
	}
}

// documentedKustomizations are the folders of the `kubectl apply -k`
// commands in the README, the pages under docs/ and the kustomizations'
// comments.
func documentedKustomizations(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(kustomizeRoot, "*", "kustomization.yaml"))
	docs, _ := filepath.Glob("docs/*.md")
	files = append(files, "README.md", filepath.Join(kustomizeRoot, "kustomization.yaml"))
	files = append(files, docs...)
	re := regexp.MustCompile("kubectl apply -k (" + regexp.QuoteMeta(kustomizeRoot) + `[^\s` + "`" + `)]*)`)
	var dirs []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			rel, _ := filepath.Rel(kustomizeRoot, strings.TrimRight(m[1], "/.,"))
			dirs = append(dirs, rel)
		}
	}
	if len(dirs) < 6 {
		t.Fatalf("only %d kubectl apply -k commands found in %v", len(dirs), files)
	}
	return dirs
}
