package kubernetes

import (
	"os"
	"reflect"
	"slices"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"
)

// The monitoring component: a PodMonitor for the proxy pods' admin port
// with the job the alerts expect, and a PrometheusRule holding exactly the
// rules of deploy/prometheus/alerts.yml (which promtool and a real
// Prometheus test), each decoded strictly with the Prometheus Operator's
// own API types.
func TestMonitoringComponent(t *testing.T) {
	b := decodeBase(t)
	var k struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Labels     []struct {
			Pairs map[string]string `json:"pairs"`
		} `json:"labels"`
		Resources []string `json:"resources"`
	}
	strict(t, "monitoring/kustomization.yaml", &k)
	if k.Kind != "Component" || !slices.Equal(k.Resources, []string{"podmonitor.yaml", "prometheusrule.yaml"}) {
		t.Fatalf("monitoring is not a component of the PodMonitor and the PrometheusRule: %+v", k)
	}
	var pm monitoringv1.PodMonitor
	strict(t, "monitoring/podmonitor.yaml", &pm)
	podLabels := b.dep.Spec.Template.Labels
	for key, v := range pm.Spec.Selector.MatchLabels {
		if podLabels[key] != v {
			t.Errorf("the PodMonitor selects %s=%s, which the proxy's pods do not carry (%v)", key, v, podLabels)
		}
	}
	if podLabels[pm.Spec.JobLabel] != "cloudxr-wss-proxy" {
		t.Errorf("the job label %q is not cloudxr-wss-proxy on the pods: the alerts would never match", pm.Spec.JobLabel)
	}
	admin := false
	for _, p := range b.dep.Spec.Template.Spec.Containers[0].Ports {
		admin = admin || (len(pm.Spec.PodMetricsEndpoints) == 1 && pm.Spec.PodMetricsEndpoints[0].Port != nil && p.Name == *pm.Spec.PodMetricsEndpoints[0].Port)
	}
	if !admin || pm.Spec.PodMetricsEndpoints[0].Path != "/metrics" {
		t.Errorf("the PodMonitor does not scrape the admin port's /metrics: %+v", pm.Spec.PodMetricsEndpoints)
	}

	var rule monitoringv1.PrometheusRule
	strict(t, "monitoring/prometheusrule.yaml", &rule)
	data, err := os.ReadFile("../prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var file monitoringv1.PrometheusRuleSpec
	if err := yaml.UnmarshalStrict(data, &file); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	if !reflect.DeepEqual(rule.Spec, file) {
		t.Errorf("the PrometheusRule's rules differ from deploy/prometheus/alerts.yml")
	}
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" && (r.Annotations["runbook"] == "" || r.Labels["severity"] == "") {
				t.Errorf("alert %s has no runbook or no severity", r.Alert)
			}
		}
	}
}
