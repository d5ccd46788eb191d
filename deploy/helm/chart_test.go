// Package helm holds the Helm chart; the end-to-end suite lints and
// renders it with the real helm CLI and sends what it renders to a real
// API server. This test keeps the chart's copy of the alerts equal to
// deploy/prometheus/alerts.yml (which promtool and a real Prometheus test).
package helm

import (
	"bytes"
	"os"
	"testing"
)

func TestChartAlertsAreTheRules(t *testing.T) {
	chart, err := os.ReadFile("cloudxr-wss-proxy/files/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := os.ReadFile("../prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(chart, rules) {
		t.Error("deploy/helm/cloudxr-wss-proxy/files/alerts.yml differs from deploy/prometheus/alerts.yml: copy it again")
	}
}
