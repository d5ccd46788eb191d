package grafana

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
)

var update = flag.Bool("update", false, "write cloudxr-wss-proxy.json from the code")

const file = "cloudxr-wss-proxy.json"

// The JSON an operator imports is what the code builds: regenerate it with
// go test ./deploy/grafana -update, never edit it by hand.
func TestJSONIsGenerated(t *testing.T) {
	want, err := JSON()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(file, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what dashboard.go builds: run go test ./deploy/grafana -update", file)
	}
}

// schemaErr is err, but nil for the SDK's empty cog.BuildErrors, which it
// returns as a non-nil error when there is none.
func schemaErr(err error) error {
	var be cog.BuildErrors
	if errors.As(err, &be) && len(be) == 0 {
		return nil
	}
	return err
}

// The file decodes strictly into the SDK's types (Grafana's dashboard
// schema, generated from its CUE): no unknown or misspelt field, every
// required one present. Its variables are a Prometheus data source and the
// proxies; every panel queries that data source, with the instance
// selector, and every query in it is one of Queries (which the end-to-end
// test runs against a real Prometheus).
func TestJSONAgainstTheSchema(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 the dashboard is the v1 schema Grafana's import takes (see Build)
	var d dashboard.Dashboard
	if err := schemaErr(d.UnmarshalJSONStrict(raw)); err != nil {
		t.Fatalf("%s against the dashboard schema: %v", file, err)
	}
	if err := schemaErr(d.Validate()); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if d.Uid == nil || *d.Uid != UID || d.Title == nil {
		t.Errorf("uid %v, title %v", d.Uid, d.Title)
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, string(v.Type)+":"+v.Name)
	}
	if !slices.Equal(vars, []string{"datasource:datasource", "query:instance"}) {
		t.Errorf("variables %v, want the data source and the proxies", vars)
	}
	known := Queries()
	var seen []string
	panels := 0
	// The SDK's strict decoding (v0.0.22) returns an empty BuildErrors as
	// a non-nil error, and its decoding of a panel list stops there, so the
	// panels come back empty: each is decoded strictly on its own, as a
	// row or a panel by its type.
	var top struct {
		Panels []struct {
			Type string          `json:"type"`
			Raw  json.RawMessage `json:"-"`
		}
	}
	var rawPanels struct{ Panels []json.RawMessage }
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(raw, &rawPanels)
	for i, pr := range rawPanels.Panels {
		exprs, isPanel := checkPanel(t, i, top.Panels[i].Type == "row", pr, known)
		if isPanel {
			panels++
		}
		seen = append(seen, exprs...)
	}
	if panels < 12 || len(seen) != len(known) {
		t.Errorf("%d panels, %d queries of %d", panels, len(seen), len(known))
	}
}

// checkPanel decodes panel i (raw) strictly, as a row or a panel, and
// checks a panel's data source and queries: each among the tested ones
// (known), each following the proxy variable. It returns a panel's
// queries, and whether it was a panel.
func checkPanel(t *testing.T, i int, row bool, raw json.RawMessage, known []string) (exprs []string, isPanel bool) {
	var p dashboard.PanelOrRowPanel
	var err error
	if row {
		p.RowPanel = &dashboard.RowPanel{}
		err = p.RowPanel.UnmarshalJSONStrict(raw)
	} else {
		p.Panel = &dashboard.Panel{}
		err = p.Panel.UnmarshalJSONStrict(raw)
	}
	if err := schemaErr(err); err != nil {
		t.Fatalf("panel %d against the schema: %v", i, err)
	}
	if p.Panel == nil {
		return nil, false // a row
	}
	if p.Panel.Datasource == nil || p.Panel.Datasource.Uid == nil || *p.Panel.Datasource.Uid != "${datasource}" {
		t.Errorf("panel %q does not use the data source variable", *p.Panel.Title)
	}
	var targets struct{ Targets []json.RawMessage }
	json.Unmarshal(raw, &targets)
	for j, target := range targets.Targets {
		q := &prometheus.Dataquery{}
		if err := schemaErr(q.UnmarshalJSONStrict(target)); err != nil {
			t.Fatalf("panel %q, query %d against the Prometheus query schema: %v", *p.Panel.Title, j, err)
		}
		if !slices.Contains(known, q.Expr) {
			t.Errorf("panel %q queries %q, which is not among the tested queries", *p.Panel.Title, q.Expr)
		}
		if !strings.Contains(q.Expr, `instance=~"$instance"`) {
			t.Errorf("panel %q: %q ignores the proxy variable", *p.Panel.Title, q.Expr)
		}
		exprs = append(exprs, q.Expr)
	}
	return exprs, true
}

// The pool is on the dashboard: its runtimes by state and the claims it
// refused, from the metrics the proxy exports (admin/metrics.go).
func TestPoolPanel(t *testing.T) {
	var byState, refused bool
	for _, q := range Queries() {
		byState = byState || strings.Contains(q, "by (state) (cloudxr_wss_proxy_pool_runtimes{")
		refused = refused || strings.Contains(q, "cloudxr_wss_proxy_pool_claims_refused_total{")
	}
	if !byState || !refused {
		t.Errorf("no panel of the pool's runtimes by state (%v) or of the claims refused (%v)", byState, refused)
	}
}
