package config

import (
	"fmt"
	"io"
	"slices"
	"testing"
	"time"
)

// A variable with a setting's prefix, or a setting's name misspelt, is
// reported with the nearest setting; what containers and hosts carry for
// other programs, and what this program reads besides its settings, is
// not.
func TestUnknownVariables(t *testing.T) {
	environ := []string{
		"BACKEND_POLL=kubernetes:runtimes:signaling", // BACKEND_POOL
		"POOL_GRACE=60s",                          // a prefix of ours
		"LOGLEVEL=debug",                          // LOG_LEVEL, one edit away
		"BACKNED_HOST=10.0.0.2",                   // two letters swapped
		"BACKEND_HOST=10.0.0.1", "LOG_LEVEL=info", // settings
		"HOSTNAME=proxy-7d9", "PATH=/usr/bin", "HOME=/root", "TERM=xterm",
		"KUBERNETES_SERVICE_HOST=10.96.0.1", "KUBERNETES_SERVICE_PORT_HTTPS=443", "KUBERNETES_PORT=tcp://10.96.0.1:443",
		"BACKEND_SERVICE_HOST=10.96.0.9", "BACKEND_PORT_49100_TCP_ADDR=10.96.0.9", // a Service named backend
		"POOL_PORT=tcp://10.96.0.8:80", // a Service named pool
		"POD_NAME=proxy-0", "SSL_CERT_FILE=/ca.pem", "ENV_FILE=", "GOGC=50", "KUBECONFIG=/k",
		"LOG_DIR=/var/log", "WEB_CONCURRENCY=4", // other software's, with a generic first word
		"NOEQUALS",
	}
	got := unknownVars(environ, mustDescribe(t))
	want := []UnknownVar{{"BACKEND_POLL", "BACKEND_POOL"}, {"BACKNED_HOST", "BACKEND_HOST"}, {"LOGLEVEL", "LOG_LEVEL"}, {"POOL_GRACE", "POOL_RECONNECT_GRACE"}}
	if !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

// Load keeps them for the start-up warning, from the environment only.
func TestLoadReportsUnknownVariables(t *testing.T) {
	cfg, err := Load([]string{"--backend-host=10.0.0.1"}, []string{"BACKEND_POLL=x", "PATH=/bin"}, io.Discard, "test")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.UnknownVariables(); !slices.Equal(got, []UnknownVar{{"BACKEND_POLL", "BACKEND_POOL"}}) {
		t.Errorf("UnknownVariables %v", got)
	}
}

// Thousands of variables, many with our prefixes, cost little at start,
// and the report stays bounded.
func TestUnknownVariablesBounded(t *testing.T) {
	var environ []string
	for i := range 20000 {
		environ = append(environ, fmt.Sprintf("AN_OTHER_LEVEL_%05d=x", i), fmt.Sprintf("BACKEND_X%d=y", i), fmt.Sprintf("ZOG_LEVEL%d=y", i))
	}
	environ = append(environ, "AUTH_"+string(make([]byte, 1<<16))+"=z")
	fields := mustDescribe(t)
	start := time.Now()
	got := unknownVars(environ, fields)
	if took := time.Since(start); took > 2*time.Second || len(got) != maxUnknownVars {
		t.Errorf("%d reported in %v", len(got), took)
	}
	t.Logf("60,001 variables in %v", time.Since(start))
}

func mustDescribe(t *testing.T) []field {
	t.Helper()
	f, err := describe()
	if err != nil {
		t.Fatal(err)
	}
	return f
}
