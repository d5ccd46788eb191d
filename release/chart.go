package main

import (
	"fmt"
	"strings"

	chart "helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
)

// chartDir is the Helm chart a release packages.
const chartDir = "deploy/helm/cloudxr-wss-proxy"

// helmChart packages the chart as `helm package` does (Helm's own loader,
// which honours .helmignore, and writer), its version and appVersion the
// release's, into out as cloudxr-wss-proxy-<version>.tgz.
func helmChart(out, version string) (string, error) {
	c, err := chart.LoadDir(chartDir)
	if err != nil {
		return "", fmt.Errorf("loading the chart: %w", err)
	}
	// A chart's version is SemVer and the default image tag is the
	// appVersion: 0.0.0~git... (Debian's pre-release mark) becomes
	// 0.0.0-git..., valid in both and ordered alike (internal/version).
	v := strings.ReplaceAll(version, "~", "-")
	c.Metadata.Version, c.Metadata.AppVersion = v, v
	path, err := chartutil.Save(c, out)
	if err != nil {
		return "", fmt.Errorf("packaging the chart: %w", err)
	}
	return path, nil
}
