// Package kubernetes holds the manifests; this test decodes each strictly
// with the Kubernetes API types (an unknown or misspelt field fails) and
// checks that they refer to each other, and to the proxy, correctly.
package kubernetes

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/admin"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Labels     []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels"`
	Resources []string `json:"resources"`
	Patches   []struct {
		Path string `json:"path"`
	} `json:"patches"`
}

func strict(t *testing.T, file string, into any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

func TestManifests(t *testing.T) {
	m := decodeBase(t)
	// The ConfigMap is a valid configuration of the proxy.
	var environ []string
	for key, v := range m.cm.Data {
		environ = append(environ, key+"="+v)
	}
	cfg, err := config.Load(nil, environ, nil, "test")
	if err != nil {
		t.Fatalf("the ConfigMap is not a valid configuration: %v", err)
	}
	pod := m.dep.Spec.Template
	checkSelectors(t, m)
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	checkPorts(t, m, c, cfg)
	// envFrom refers to the ConfigMap.
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef == nil || c.EnvFrom[0].ConfigMapRef.Name != m.cm.Name {
		t.Errorf("envFrom %+v does not name ConfigMap %s", c.EnvFrom, m.cm.Name)
	}
	checkSecretMount(t, pod.Spec, c, cfg)
	checkProbes(t, c)
	checkHardening(t, pod.Spec, c)
}

// base is the base directory's resources, decoded strictly.
type baseManifests struct {
	dep appsv1.Deployment
	svc corev1.Service
	cm  corev1.ConfigMap
}

func decodeBase(t *testing.T) *baseManifests {
	// The root kustomization is the base alone (kubectl apply -k
	// deploy/kubernetes); the overlays build on base/ as ../base.
	var root kustomization
	strict(t, "kustomization.yaml", &root)
	if !slices.Equal(root.Resources, []string{"base"}) || len(root.Patches) != 0 || len(root.Labels) != 0 {
		t.Errorf("kustomization.yaml is not the base alone: %+v", root)
	}
	var k kustomization
	strict(t, "base/kustomization.yaml", &k)
	files, _ := filepath.Glob("base/*.yaml")
	for _, f := range files {
		if f := filepath.Base(f); f != "kustomization.yaml" && !slices.Contains(k.Resources, f) {
			t.Errorf("base/%s is not listed in base/kustomization.yaml", f)
		}
	}
	var m baseManifests
	for _, f := range k.Resources {
		f = filepath.Join("base", f)
		var tm metav1.TypeMeta
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		yaml.Unmarshal(data, &tm)
		switch tm.Kind {
		case "Deployment":
			strict(t, f, &m.dep)
		case "Service":
			strict(t, f, &m.svc)
		case "ConfigMap":
			strict(t, f, &m.cm)
		default:
			t.Fatalf("%s: unexpected kind %q", f, tm.Kind)
		}
	}
	return &m
}

// checkSelectors: the Deployment's and the Service's select its pods.
func checkSelectors(t *testing.T, m *baseManifests) {
	pod := m.dep.Spec.Template
	for key, v := range m.dep.Spec.Selector.MatchLabels {
		if pod.Labels[key] != v {
			t.Errorf("deployment selector %s=%s does not match the pod template", key, v)
		}
	}
	for key, v := range m.svc.Spec.Selector {
		if pod.Labels[key] != v {
			t.Errorf("service selector %s=%s selects no pod of the deployment", key, v)
		}
	}
}

// checkPorts: the container's and the Service's ports are the settings'.
func checkPorts(t *testing.T, m *baseManifests, c corev1.Container, cfg *config.Config) {
	_, adminPort, _ := net.SplitHostPort(cfg.AdminAddress)
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["wss"] != int32(cfg.ProxyPort) {
		t.Errorf("container port wss %d, PROXY_PORT %d", ports["wss"], cfg.ProxyPort)
	}
	if strconv.Itoa(int(ports["admin"])) != adminPort {
		t.Errorf("container port admin %d, ADMIN_ADDRESS %s", ports["admin"], cfg.AdminAddress)
	}
	if len(m.svc.Spec.Ports) != 1 || m.svc.Spec.Ports[0].TargetPort.StrVal != "wss" || m.svc.Spec.Ports[0].Port != int32(cfg.ProxyPort) {
		t.Errorf("service ports %+v", m.svc.Spec.Ports)
	}
}

// checkSecretMode: a Secret's files are readable by the pod's fsGroup (the
// proxy's group) and nobody else, so the proxy does not warn at start that
// its key or tokens are readable by every user (the default, 0644, is).
func checkSecretMode(t *testing.T, v *corev1.SecretVolumeSource) {
	t.Helper()
	mode := int32(0o644) // the Kubernetes default
	if v.DefaultMode != nil {
		mode = *v.DefaultMode
	}
	if mode&0o007 != 0 || mode&0o040 == 0 {
		t.Errorf("Secret %s: defaultMode %04o, want group-readable and nothing for others (0440)", v.SecretName, mode)
	}
}

// checkSecretMount: the Secret is mounted, read-only, where the proxy looks
// (CERT_DIR).
func checkSecretMount(t *testing.T, pod corev1.PodSpec, c corev1.Container, cfg *config.Config) {
	var secretVolume string
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			secretVolume = v.Name
			if v.Secret.SecretName != "cloudxr-wss-proxy-tls" {
				t.Errorf("secret %s", v.Secret.SecretName)
			}
			checkSecretMode(t, v.Secret)
		}
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		if m.Name == secretVolume {
			mounted = m.MountPath == cfg.CertDir && m.ReadOnly
		}
	}
	if !mounted {
		t.Errorf("the TLS secret is not mounted read-only at CERT_DIR %s", cfg.CertDir)
	}
}

// checkProbes: probes hit the admin listener on paths it serves.
func checkProbes(t *testing.T, c corev1.Container) {
	h := admin.NewServer(admin.NewMetrics("test"), func() (bool, string) { return true, "" }, false).Handler()
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("no %s probe", name)
			continue
		}
		if p.HTTPGet.Port.StrVal != "admin" {
			t.Errorf("%s probe port %v", name, p.HTTPGet.Port)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p.HTTPGet.Path, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("%s probe path %s answers %d", name, p.HTTPGet.Path, rec.Code)
		}
	}
	if c.ReadinessProbe != nil && !strings.Contains(c.ReadinessProbe.HTTPGet.Path, "ready") {
		t.Errorf("readiness probe on %s", c.ReadinessProbe.HTTPGet.Path)
	}
}

// checkHardening: security context and resources.
func checkHardening(t *testing.T, pod corev1.PodSpec, c corev1.Container) {
	sc, psc := c.SecurityContext, pod.SecurityContext
	switch {
	case psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot:
		t.Error("pod may run as root")
	case sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("root filesystem is writable")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("privilege escalation allowed")
	case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, corev1.Capability("ALL")) || len(sc.Capabilities.Add) > 0:
		t.Error("capabilities not all dropped")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v", c.Resources)
	}
}

// The routing overlay patches the base ConfigMap into a valid routing
// configuration whose checked runtimes are on its allow-list, and its
// NetworkPolicy lets the proxy's pods reach those runtimes and no further.
func TestRoutingOverlay(t *testing.T) {
	b := decodeBase(t)
	dep, cm := b.dep, b.cm
	var k kustomization
	strict(t, "routing/kustomization.yaml", &k)
	if !slices.Contains(k.Resources, "../base") || len(k.Patches) != 1 {
		t.Fatalf("the overlay does not build on the base with one patch: %+v", k)
	}
	var patch corev1.ConfigMap
	strict(t, filepath.Join("routing", k.Patches[0].Path), &patch)
	if patch.Name != cm.Name || patch.Kind != "ConfigMap" {
		t.Fatalf("the patch targets %s %s, want ConfigMap %s", patch.Kind, patch.Name, cm.Name)
	}
	var environ []string
	for key, v := range cm.Data {
		if _, patched := patch.Data[key]; !patched {
			environ = append(environ, key+"="+v)
		}
	}
	for key, v := range patch.Data {
		environ = append(environ, key+"="+v)
	}
	cfg, err := config.Load(nil, environ, nil, "test")
	if err != nil {
		t.Fatalf("the patched ConfigMap is not a valid configuration: %v", err)
	}
	if !cfg.RouteByPath || len(cfg.RouteCheck) == 0 {
		t.Fatalf("routing not configured: by path %v, checks %v", cfg.RouteByPath, cfg.RouteCheck)
	}
	// Load checked each ROUTE_CHECK entry against ROUTE_ALLOW.
	if len(cfg.RouteChecks()) != len(cfg.RouteCheck) {
		t.Errorf("ROUTE_CHECK %v names one runtime twice: %v", cfg.RouteCheck, cfg.RouteChecks())
	}

	checkNetworkPolicy(t, k, dep, cfg)
}

// checkNetworkPolicy: the overlay's NetworkPolicy selects the proxy's pods
// and lets them reach the runtimes' port on every CIDR of ROUTE_ALLOW.
func checkNetworkPolicy(t *testing.T, k kustomization, dep appsv1.Deployment, cfg *config.Config) {
	var np networkingv1.NetworkPolicy
	for _, r := range k.Resources {
		if r != "../base" {
			strict(t, filepath.Join("routing", r), &np)
		}
	}
	for key, v := range np.Spec.PodSelector.MatchLabels {
		if dep.Spec.Template.Labels[key] != v {
			t.Errorf("the NetworkPolicy selects %s=%s, not the proxy's pods", key, v)
		}
	}
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		t.Error("the NetworkPolicy does not restrict egress")
	}
	cidrs := map[string]bool{}
	runtimePort := false
	for _, e := range np.Spec.Egress {
		for _, p := range e.Ports {
			runtimePort = runtimePort || p.Port.IntValue() == int(cfg.BackendPort)
		}
		for _, to := range e.To {
			if to.IPBlock != nil {
				cidrs[to.IPBlock.CIDR] = true
			}
		}
	}
	if !runtimePort {
		t.Errorf("egress to the runtimes' port %d not allowed", cfg.BackendPort)
	}
	for _, a := range cfg.RouteAllow {
		if strings.Contains(a, "/") && !cidrs[a] {
			t.Errorf("ROUTE_ALLOW has %s but the NetworkPolicy does not", a)
		}
	}
}

// The cert-manager example writes the Secret the Deployment mounts, with a
// key and usages a TLS server certificate needs.
func TestCertManagerCertificate(t *testing.T) {
	dep := decodeBase(t).dep
	var crt cmv1.Certificate
	strict(t, "cert-manager/certificate.yaml", &crt)
	var secret string
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			secret = v.Secret.SecretName
		}
	}
	if crt.Spec.SecretName != secret {
		t.Errorf("the Certificate writes Secret %q, the Deployment mounts %q", crt.Spec.SecretName, secret)
	}
	if len(crt.Spec.DNSNames)+len(crt.Spec.IPAddresses) == 0 {
		t.Error("the Certificate names no host")
	}
	if !slices.Contains(crt.Spec.Usages, cmv1.UsageServerAuth) {
		t.Errorf("usages %v lack server auth", crt.Spec.Usages)
	}
	if pk := crt.Spec.PrivateKey; pk == nil || pk.Algorithm != cmv1.ECDSAKeyAlgorithm {
		t.Errorf("private key %+v: want ECDSA, the cheapest handshake", pk)
	}
	if crt.Spec.Duration == nil || crt.Spec.RenewBefore == nil || crt.Spec.RenewBefore.Duration >= crt.Spec.Duration.Duration {
		t.Errorf("duration %v, renewBefore %v", crt.Spec.Duration, crt.Spec.RenewBefore)
	}
	if crt.Spec.IssuerRef.Name == "" {
		t.Error("no issuerRef")
	}
}

// patchedConfig applies an overlay's ConfigMap patch to the base
// ConfigMap and returns the environment the proxy would get; files maps a
// setting to a stand-in for a file the cluster would mount.
func patchedConfig(t *testing.T, base corev1.ConfigMap, patchPath string, files map[string]string) (*config.Config, corev1.ConfigMap) {
	t.Helper()
	var patch corev1.ConfigMap
	strict(t, patchPath, &patch)
	if patch.Name != base.Name || patch.Kind != "ConfigMap" {
		t.Fatalf("%s targets %s %s, want ConfigMap %s", patchPath, patch.Kind, patch.Name, base.Name)
	}
	data := map[string]string{}
	for k, v := range base.Data {
		data[k] = v
	}
	for k, v := range patch.Data {
		data[k] = v
	}
	var environ []string
	for k, v := range data {
		if f, ok := files[k]; ok {
			v = f
		}
		environ = append(environ, k+"="+v)
	}
	cfg, err := config.Load(nil, environ, nil, "test")
	if err != nil {
		t.Fatalf("%s does not make a valid configuration: %v", patchPath, err)
	}
	return cfg, patch
}

// The authentication overlays: the provider's settings in the ConfigMap, or
// a tokens file from a Secret mounted where AUTH_TOKENS_FILE points.
func TestAuthOverlays(t *testing.T) {
	b := decodeBase(t)
	var k kustomization
	strict(t, "auth-oidc/kustomization.yaml", &k)
	if !slices.Contains(k.Resources, "../base") || len(k.Patches) != 1 {
		t.Fatalf("auth-oidc: %+v", k)
	}
	cfg, _ := patchedConfig(t, b.cm, filepath.Join("auth-oidc", k.Patches[0].Path), nil)
	if cfg.AuthOIDCIssuer == "" || cfg.AuthAudience == "" || !cfg.AuthEnabled() {
		t.Errorf("auth-oidc: authentication not configured: %+v", cfg)
	}

	strict(t, "auth-tokens/kustomization.yaml", &k)
	if !slices.Contains(k.Resources, "../base") || len(k.Patches) != 2 {
		t.Fatalf("auth-tokens: %+v", k)
	}
	tokens := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(tokens, []byte("t\n"), 0o600)
	cfg, patch := patchedConfig(t, b.cm, filepath.Join("auth-tokens", "configmap-patch.yaml"), map[string]string{"AUTH_TOKENS_FILE": tokens})
	want := patch.Data["AUTH_TOKENS_FILE"]
	if !cfg.AuthEnabled() || want == "" {
		t.Fatal("auth-tokens: no tokens file configured")
	}
	var dep appsv1.Deployment
	strict(t, filepath.Join("auth-tokens", "deployment-patch.yaml"), &dep)
	if dep.Name != b.dep.Name || len(dep.Spec.Template.Spec.Containers) != 1 ||
		dep.Spec.Template.Spec.Containers[0].Name != b.dep.Spec.Template.Spec.Containers[0].Name {
		t.Fatalf("the Deployment patch targets %s/%v", dep.Name, dep.Spec.Template.Spec.Containers)
	}
	var secretVolume string
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == "cloudxr-wss-proxy-tokens" {
			secretVolume = v.Name
			checkSecretMode(t, v.Secret)
		}
	}
	mounted := false
	for _, m := range dep.Spec.Template.Spec.Containers[0].VolumeMounts {
		mounted = mounted || (m.Name == secretVolume && m.ReadOnly && m.MountPath == filepath.Dir(want))
	}
	if secretVolume == "" || !mounted {
		t.Errorf("the tokens Secret is not mounted read-only where AUTH_TOKENS_FILE (%s) points", want)
	}
}

// The ACME overlay: the ConfigMap patch with the DNS provider's token from
// its Secret makes a valid CERT_MODE=acme configuration, and CERT_DIR is
// the shared claim, writable, in place of the TLS Secret.
func TestACMEOverlay(t *testing.T) {
	b := decodeBase(t)
	var k kustomization
	strict(t, "acme/kustomization.yaml", &k)
	if !slices.Contains(k.Resources, "../base") || !slices.Contains(k.Resources, "pvc.yaml") || len(k.Patches) != 2 {
		t.Fatalf("acme: %+v", k)
	}
	var patch corev1.ConfigMap
	strict(t, "acme/configmap-patch.yaml", &patch)
	var dep appsv1.Deployment
	strict(t, "acme/deployment-patch.yaml", &dep)
	var pvc corev1.PersistentVolumeClaim
	strict(t, "acme/pvc.yaml", &pvc)
	if patch.Name != b.cm.Name || dep.Name != b.dep.Name || len(dep.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("the patches target %s and %s", patch.Name, dep.Name)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	var environ []string
	for key, v := range b.cm.Data {
		if _, patched := patch.Data[key]; !patched {
			environ = append(environ, key+"="+v)
		}
	}
	for key, v := range patch.Data {
		environ = append(environ, key+"="+v)
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Key != e.Name {
			t.Errorf("env %s does not come from a Secret's key of its name", e.Name)
		}
		environ = append(environ, e.Name+"=from-the-secret")
	}
	cfg, err := config.Load(nil, environ, nil, "test")
	if err != nil {
		t.Fatalf("the overlay's configuration: %v", err)
	}
	if cfg.CertMode != "acme" || cfg.ACMEDNSProvider == "" || len(cfg.CertHostnames) == 0 {
		t.Errorf("not an ACME configuration: %+v", cfg)
	}
	var vol *corev1.Volume
	for i, v := range dep.Spec.Template.Spec.Volumes {
		if v.Name == "tls" {
			vol = &dep.Spec.Template.Spec.Volumes[i]
		}
	}
	if vol == nil || vol.Secret != nil || vol.PersistentVolumeClaim == nil || vol.PersistentVolumeClaim.ClaimName != pvc.Name {
		t.Fatalf("CERT_DIR's volume is not the claim %s: %+v", pvc.Name, vol)
	}
	writable := false
	for _, m := range c.VolumeMounts {
		writable = writable || (m.Name == "tls" && !m.ReadOnly && m.MountPath == cfg.CertDir)
	}
	if !writable || !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteMany) {
		t.Errorf("CERT_DIR %s is not the shared claim, writable", cfg.CertDir)
	}
}
