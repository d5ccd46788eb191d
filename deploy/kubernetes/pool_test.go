package kubernetes

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/config"
)

// The pool overlay: its ConfigMap patch makes a valid pool configuration
// whose Service is the overlay's headless one, with the named port; the
// replicas run as the service account the Role is bound to, with its
// token; and the Role grants exactly what the pool uses (the end-to-end
// test runs the proxy with a token limited by it).
func TestPoolOverlay(t *testing.T) {
	b := decodeBase(t)
	var k kustomization
	strict(t, "pool/kustomization.yaml", &k)
	for _, r := range []string{"../base", "rbac.yaml", "runtimes.yaml"} {
		if !slices.Contains(k.Resources, r) {
			t.Errorf("pool: resource %s missing: %+v", r, k.Resources)
		}
	}
	var patch corev1.ConfigMap
	strict(t, "pool/configmap-patch.yaml", &patch)
	var dep appsv1.Deployment
	strict(t, "pool/deployment-patch.yaml", &dep)
	var svc corev1.Service
	strict(t, "pool/runtimes.yaml", &svc)
	environ := []string{}
	for key, v := range b.cm.Data {
		if _, patched := patch.Data[key]; !patched {
			environ = append(environ, key+"="+v)
		}
	}
	for key, v := range patch.Data {
		environ = append(environ, key+"="+v)
	}
	cfg, err := config.Load(nil, environ, nil, "test")
	if err != nil {
		t.Fatalf("the overlay's configuration: %v", err)
	}
	src := cfg.Pool()
	if len(src) != 1 || src[0].Kind != config.PoolKubernetes || src[0].Name != svc.Name || cfg.PoolClaims != config.ClaimsKubernetes {
		t.Fatalf("the pool is not the overlay's Service %s with claims in Leases: %+v", svc.Name, src)
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone || !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == src[0].Port }) {
		t.Errorf("the runtimes' Service is not headless with the port %q: %+v", src[0].Port, svc.Spec)
	}
	if dep.Name != b.dep.Name || dep.Spec.Replicas == nil || *dep.Spec.Replicas < 2 {
		t.Errorf("the Deployment patch: %s, replicas %v", dep.Name, dep.Spec.Replicas)
	}

	checkPoolRBAC(t, dep.Spec.Template.Spec)

}

// checkPoolRBAC checks rbac.yaml: the replicas (pod) run as its
// ServiceAccount, whose Role grants exactly what the pool's code calls.
func checkPoolRBAC(t *testing.T, pod corev1.PodSpec) {
	var sa corev1.ServiceAccount
	var role rbacv1.Role
	var binding rbacv1.RoleBinding
	docs := poolRBAC(t)
	if len(docs) != 3 {
		t.Fatalf("rbac.yaml has %d objects, want a ServiceAccount, a Role and a RoleBinding", len(docs))
	}
	for i, into := range []any{&sa, &role, &binding} {
		if err := yaml.UnmarshalStrict([]byte(docs[i]), into); err != nil {
			t.Fatalf("rbac.yaml object %d: %v", i, err)
		}
	}
	if pod.ServiceAccountName != sa.Name || pod.AutomountServiceAccountToken == nil || !*pod.AutomountServiceAccountToken {
		t.Errorf("the replicas do not run as %s with its token: %+v", sa.Name, pod)
	}
	if binding.RoleRef.Name != role.Name || len(binding.Subjects) != 1 || binding.Subjects[0].Name != sa.Name {
		t.Errorf("the binding does not give %s the Role %s: %+v", sa.Name, role.Name, binding)
	}
	want := map[string][]string{
		"coordination.k8s.io/leases":      {"create", "get", "list", "update"}, // pool/lease.go
		"discovery.k8s.io/endpointslices": {"list", "watch"},                   // pool/endpointslices.go's informer
	}
	got := map[string][]string{}
	for _, r := range role.Rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				v := slices.Clone(r.Verbs)
				slices.Sort(v)
				got[g+"/"+res] = append(got[g+"/"+res], v...)
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("the Role covers %v, want exactly %v", got, want)
	}
	for res, verbs := range want {
		if !slices.Equal(got[res], verbs) {
			t.Errorf("the Role grants %s %v, want %v", res, got[res], verbs)
		}
	}
}

// poolRBAC is the objects of pool/rbac.yaml, one YAML document each.
func poolRBAC(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("pool", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	for _, d := range strings.Split(string(b), "\n---\n") {
		if strings.TrimSpace(d) != "" {
			docs = append(docs, d)
		}
	}
	return docs
}
