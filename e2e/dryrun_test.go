//go:build e2e

package e2e

// Rendered manifests sent to a real kube-apiserver as a server-side dry
// run with strict field validation: an unknown or duplicated field, a
// wrong type, a missing CRD or any warning the API server gives fails.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// Every object of every kustomization (alone and with the monitoring
// component), of the cert-manager Certificate, and of the Helm chart (with
// each example values file, the combinations and each README `helm
// install`) is accepted by one real API server with strict field
// validation and no warning.
func TestKubernetesManifestsAccepted(t *testing.T) {
	dirs := kustomizations(t)
	charts := helmCases(t)
	api := newDryRunAPI(t, startControlPlane(t))
	for _, dir := range dirs {
		for _, components := range [][]string{nil, {monitoringFrom(dir)}} {
			name := "kubectl apply -k " + filepath.Join(kustomizeRoot, dir)
			if components != nil {
				name += " with monitoring"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				api.accept(t, namespaceFor(name), decodeYAML(t, name, kustomizeBuild(t, dir, components...)))
			})
		}
	}
	t.Run("kubectl apply -f cert-manager/certificate.yaml", func(t *testing.T) {
		t.Parallel()
		api.accept(t, namespaceFor("cert-manager"), decodeFile(t, filepath.Join(kustomizeRoot, "cert-manager", "certificate.yaml")))
	})
	for _, c := range charts {
		t.Run("helm "+c.name, func(t *testing.T) {
			t.Parallel()
			api.accept(t, namespaceFor(c.name), helmTemplate(t, c))
		})
	}
}

// dryRunAPI is an API server with the CRDs the manifests use installed.
type dryRunAPI struct {
	cp     *controlPlane
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

// crdFiles are the CustomResourceDefinitions the manifests need: the
// Prometheus Operator's from testdata (see its README), cert-manager's
// Certificate from the cert-manager module go.mod requires.
func crdFiles(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cert-manager/cert-manager").Output()
	if err != nil {
		t.Fatalf("go list cert-manager: %v", err)
	}
	certManager := strings.TrimSpace(string(out))
	return []string{
		filepath.Join(certManager, "deploy", "crds", "cert-manager.io_certificates.yaml"),
		"e2e/testdata/crds/monitoring.coreos.com_podmonitors.yaml",
		"e2e/testdata/crds/monitoring.coreos.com_prometheusrules.yaml",
	}
}

// newDryRunAPI installs the CRDs in cp and waits until the API server
// serves their kinds.
func newDryRunAPI(t *testing.T, cp *controlPlane) *dryRunAPI {
	t.Helper()
	cfg := cp.restConfig(cp.adminToken)
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	api := &dryRunAPI{cp: cp, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
	crd := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	dyn := api.client(t, nil)
	var kinds []schema.GroupKind
	for _, f := range crdFiles(t) {
		for _, obj := range decodeFile(t, f) {
			if _, err := dyn.Resource(crd).Create(context.Background(), obj, metav1.CreateOptions{}); err != nil {
				t.Fatalf("installing %s: %v", f, err)
			}
			group, _, _ := unstructured.NestedString(obj.Object, "spec", "group")
			kind, _, _ := unstructured.NestedString(obj.Object, "spec", "names", "kind")
			kinds = append(kinds, schema.GroupKind{Group: group, Kind: kind})
		}
	}
	waitFor(t, 30*time.Second, "the CRDs served", func() bool {
		api.mapper.Reset()
		for _, gk := range kinds {
			if _, err := api.mapper.RESTMapping(gk); err != nil {
				return false
			}
		}
		return true
	})
	return api
}

// warnings collects the Warning headers of the API server's answers.
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(code int, agent, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.list
	w.list = nil
	return l
}

// client is a dynamic client as the admin whose warnings go to w (nil:
// warnings are dropped).
func (api *dryRunAPI) client(t *testing.T, w *warnings) *dynamic.DynamicClient {
	t.Helper()
	cfg := api.cp.restConfig(api.cp.adminToken)
	cfg.WarningHandler = rest.NoWarnings{}
	if w != nil {
		cfg.WarningHandler = w
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return dyn
}

// accept sends each object to the API server, in a namespace of its own
// made for the test, as a server-side dry run with strict field
// validation (dryRun=All&fieldValidation=Strict); a refusal or a warning
// fails the test.
func (api *dryRunAPI) accept(t *testing.T, ns string, objs []*unstructured.Unstructured) {
	t.Helper()
	if len(objs) == 0 {
		t.Fatal("nothing rendered")
	}
	ctx := context.Background()
	var w warnings
	dyn := api.client(t, &w)
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	if _, err := api.cp.clientset(t, api.cp.adminToken).CoreV1().Namespaces().Create(ctx, nsObj, metav1.CreateOptions{}); err != nil {
		t.Fatalf("namespace %s: %v", ns, err)
	}
	for _, obj := range objs {
		what := obj.GetKind() + " " + obj.GetName()
		m, err := api.mapper.RESTMapping(obj.GroupVersionKind().GroupKind(), obj.GroupVersionKind().Version)
		if err != nil {
			t.Errorf("%s: the API server does not serve %s: %v", what, obj.GroupVersionKind(), err)
			continue
		}
		res := dynamic.ResourceInterface(dyn.Resource(m.Resource))
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			res = dyn.Resource(m.Resource).Namespace(ns)
		}
		_, err = res.Create(ctx, obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: metav1.FieldValidationStrict})
		if err != nil {
			t.Errorf("%s refused: %v", what, err)
		}
		for _, text := range w.take() {
			t.Errorf("%s: the API server warns: %s", what, text)
		}
	}
}

// decodeYAML splits a stream of YAML documents into objects, skipping
// empty documents.
func decodeYAML(t *testing.T, what string, stream []byte) []*unstructured.Unstructured {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var obj unstructured.Unstructured
		if err := utilyaml.Unmarshal(doc, &obj.Object); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if len(obj.Object) > 0 {
			objs = append(objs, &obj)
		}
	}
}

func decodeFile(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return decodeYAML(t, path, b)
}

var namespaces atomic.Int32

// namespaceFor makes a valid namespace name, unique in the test binary, of
// a test's name.
func namespaceFor(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-")
	if len(s) > 50 {
		s = s[len(s)-50:]
	}
	return fmt.Sprintf("t%d-%s", namespaces.Add(1), strings.Trim(s, "-"))
}
