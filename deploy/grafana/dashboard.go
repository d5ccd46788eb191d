// Package grafana builds the proxy's Grafana dashboard as code, with
// Grafana's Foundation SDK (Apache-2.0; nothing of Grafana itself, which is
// AGPL). The JSON an operator imports, cloudxr-wss-proxy.json, is generated
// from it: `go test ./deploy/grafana -update` writes it, and the test fails
// when the file and the code differ. Every query is listed in Queries, which
// the end-to-end test evaluates against a real Prometheus scraping a real
// proxy.
package grafana

import (
	"encoding/json"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// UID is the dashboard's stable identifier: re-importing replaces it.
const UID = "cloudxr-wss-proxy"

// The variables: the Prometheus data source, and the proxies (instances)
// shown, from the proxy's build_info.
const (
	dsVar       = "datasource"
	instanceVar = "instance"
)

// sel is the label selector every query carries: only the chosen proxies.
const sel = `instance=~"$instance"`

// A panel: its title, what it shows, how, and its queries.
type panel struct {
	title, description, unit string
	kind                     string // "timeseries" or "stat"
	queries                  []query
	w, h                     uint32
}

type query struct{ expr, legend string }

// rows are the dashboard's panels, in order, by row.
var rows = []struct {
	title  string
	panels []panel
}{
	{"Sessions", []panel{
		{title: "Sessions open", kind: "timeseries", unit: "short", w: 8, h: 8,
			description: "Client connections open now, per proxy.",
			queries:     []query{{`sum by (instance) (cloudxr_wss_proxy_sessions_open{` + sel + `})`, "{{instance}}"}}},
		{title: "Sessions ended, by reason", kind: "timeseries", unit: "ops", w: 16, h: 8,
			description: "Sessions ending each second, by why they ended (the log line's reason).",
			queries:     []query{{`sum by (outcome) (rate(cloudxr_wss_proxy_sessions_total{` + sel + `}[$__rate_interval]))`, "{{outcome}}"}}},
		{title: "TLS handshake failures, by class", kind: "timeseries", unit: "ops", w: 8, h: 8,
			description: "Failed TLS handshakes each second: client rejected our certificate, not TLS, timeout, protocol mismatch, ...",
			queries:     []query{{`sum by (class) (rate(cloudxr_wss_proxy_tls_handshake_failures_total{` + sel + `}[$__rate_interval]))`, "{{class}}"}}},
		{title: "Authentication refusals, by why", kind: "timeseries", unit: "ops", w: 8, h: 8,
			description: "Credentials refused each second (401): missing, expired, wrong audience, bad signature, ...",
			queries:     []query{{`sum by (why) (rate(cloudxr_wss_proxy_auth_refusals_total{` + sel + `}[$__rate_interval]))`, "{{why}}"}}},
		{title: "Client-limit refusals, by limit", kind: "timeseries", unit: "ops", w: 8, h: 8,
			description: "Connections and requests refused by a per-client limit each second.",
			queries:     []query{{`sum by (limit) (rate(cloudxr_wss_proxy_client_limited_total{` + sel + `}[$__rate_interval]))`, "{{limit}}"}}},
	}},
	{"Runtimes", []panel{
		{title: "Runtime up", kind: "timeseries", unit: "bool_yes_no", w: 12, h: 8,
			description: "1 while the health checks consider the CloudXR runtime up, per proxy and runtime.",
			queries:     []query{{`cloudxr_wss_proxy_backend_up{` + sel + `}`, "{{backend}} ({{instance}})"}}},
		{title: "Time since the runtime's last change", kind: "stat", unit: "s", w: 12, h: 8,
			description: "How long each runtime has been in its state (up or down).",
			queries:     []query{{`time() - cloudxr_wss_proxy_backend_last_change_timestamp_seconds{` + sel + `}`, "{{backend}} ({{instance}})"}}},
		{title: "Bytes relayed, each way", kind: "timeseries", unit: "Bps", w: 12, h: 8,
			description: "Bytes a second, client to runtime (up) and runtime to client (down), counted as sessions end.",
			queries:     []query{{`sum by (direction) (rate(cloudxr_wss_proxy_bytes_total{` + sel + `}[$__rate_interval]))`, "{{direction}}"}}},
		{title: "Certificate days left", kind: "stat", unit: "d", w: 12, h: 8,
			description: "Days until the served certificate expires, per proxy.",
			queries:     []query{{`(cloudxr_wss_proxy_certificate_expiry_timestamp_seconds{` + sel + `} - time()) / 86400`, "{{instance}}"}}},
		{title: "Pool runtimes by state, and claims refused", kind: "timeseries", unit: "short", w: 24, h: 8,
			description: "With BACKEND_POOL: the pool's runtimes that are free, busy (a session holds it), in grace (its last user may take it back) or down, and the sessions refused a runtime (503: none free, or the claims unreachable) in each interval.",
			queries: []query{
				{`sum by (state) (cloudxr_wss_proxy_pool_runtimes{` + sel + `})`, "{{state}}"},
				{`sum(increase(cloudxr_wss_proxy_pool_claims_refused_total{` + sel + `}[$__rate_interval]))`, "claims refused"},
			}},
	}},
	{"The proxy process", []panel{
		{title: "CPU", kind: "timeseries", unit: "percentunit", w: 8, h: 8,
			description: "CPU time used per second of wall time (1 = one core).",
			queries:     []query{{`rate(process_cpu_seconds_total{` + sel + `}[$__rate_interval])`, "{{instance}}"}}},
		{title: "Memory", kind: "timeseries", unit: "bytes", w: 8, h: 8,
			description: "Resident memory, and the Go heap in use.",
			queries: []query{
				{`process_resident_memory_bytes{` + sel + `}`, "resident {{instance}}"},
				{`go_memstats_heap_inuse_bytes{` + sel + `}`, "heap in use {{instance}}"},
			}},
		{title: "Open files against MAX_CONNECTIONS", kind: "timeseries", unit: "short", w: 8, h: 8,
			description: "Open file descriptors (two per relayed session) and sessions open, against the connection cap.",
			queries: []query{
				{`process_open_fds{` + sel + `}`, "open files {{instance}}"},
				{`cloudxr_wss_proxy_sessions_open{` + sel + `}`, "sessions open {{instance}}"},
				{`cloudxr_wss_proxy_max_connections{` + sel + `}`, "MAX_CONNECTIONS {{instance}}"},
			}},
	}},
}

// Queries is every query of the dashboard, as written in it.
func Queries() []string {
	var out []string
	for _, r := range rows {
		for _, p := range r.panels {
			for _, q := range p.queries {
				out = append(out, q.expr)
			}
		}
	}
	return out
}

// Runnable is a dashboard query as Prometheus takes it: the variables
// replaced as Grafana replaces them (every proxy; a one-minute rate window).
func Runnable(expr string) string {
	return strings.NewReplacer(`"$instance"`, `".+"`, "$__rate_interval", "1m").Replace(expr)
}

func datasource() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${" + dsVar + "}")}
}

// Build makes the dashboard. It is the classic dashboard JSON (schema v1),
// which every Grafana in use imports; the SDK marks it deprecated in favour
// of the v2 schema, which only Grafana 12's new dashboard API takes.
//
//lint:ignore SA1019 the v1 schema is what Grafana's import takes (see above)
func Build() (dashboard.Dashboard, error) {
	//lint:ignore SA1019 the v1 schema, as above
	b := dashboard.NewDashboardBuilder("CloudXR WSS proxy").
		Uid(UID).
		Description("cloudxr-wss-proxy: sessions, refusals, runtimes, certificate and the process, for one or many proxies.").
		Tags([]string{"cloudxr", "cloudxr-wss-proxy"}).
		Refresh("30s").
		Time("now-3h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		WithVariable(dashboard.NewDatasourceVariableBuilder(dsVar).Label("Data source").Type("prometheus")).
		WithVariable(dashboard.NewQueryVariableBuilder(instanceVar).
			Label("Proxy").
			Datasource(datasource()).
			Query(dashboard.StringOrMap{String: cog.ToPtr("label_values(cloudxr_wss_proxy_build_info, instance)")}).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
			Multi(true).
			IncludeAll(true).
			Sort(dashboard.VariableSortAlphabeticalAsc))
	for _, r := range rows {
		b = b.WithRow(dashboard.NewRowBuilder(r.title))
		for _, p := range r.panels {
			b = b.WithPanel(build(p))
		}
	}
	return b.Build()
}

func targets(p panel) []*prometheus.DataqueryBuilder {
	var out []*prometheus.DataqueryBuilder
	for i, q := range p.queries {
		out = append(out, prometheus.NewDataqueryBuilder().Expr(q.expr).LegendFormat(q.legend).RefId(string(rune('A'+i))).Datasource(datasource()))
	}
	return out
}

func build(p panel) cog.Builder[dashboard.Panel] {
	if p.kind == "stat" {
		s := stat.NewPanelBuilder().Title(p.title).Description(p.description).Unit(p.unit).Datasource(datasource()).Span(p.w).Height(p.h).
			GraphMode(common.BigValueGraphModeNone)
		for _, t := range targets(p) {
			s = s.WithTarget(t)
		}
		return s
	}
	ts := timeseries.NewPanelBuilder().Title(p.title).Description(p.description).Unit(p.unit).Datasource(datasource()).Span(p.w).Height(p.h).
		Legend(common.NewVizLegendOptionsBuilder().ShowLegend(true).DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom))
	for _, t := range targets(p) {
		ts = ts.WithTarget(t)
	}
	return ts
}

// JSON is the dashboard as Grafana imports it.
func JSON() ([]byte, error) {
	d, err := Build()
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
