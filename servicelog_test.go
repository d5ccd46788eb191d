package main

import (
	"strings"
	"testing"
	"time"
)

func TestLastLogWords(t *testing.T) {
	cases := []struct{ name, log, want string }{
		{"empty", "", ""},
		{"the proxy's end", `{"level":"info","msg":"starting"}` + "\n" +
			`{"level":"error","msg":"the service stopped","error":"PROXY_PORT 48322 is in use by another program (:48322): stop it, or set PROXY_PORT"}` + "\r\n",
			"PROXY_PORT 48322 is in use by another program (:48322): stop it, or set PROXY_PORT"},
		{"an error line", `{"level":"error","msg":"admin listener failed","error":"closed"}`, "admin listener failed: closed"},
		{"a message", "{\"msg\":\"starting\"}\n{\"level\":\"warn\",\"msg\":\"backend is down\"}\n\n", "backend is down"},
		{"not JSON", "a\nsomething else  \n", "something else"},
	}
	for _, c := range cases {
		if got := lastLogWords([]byte(c.log)); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// The failure is said in words: no service state numbers, the time in
// seconds, the last log line and where the whole log is.
func TestStartFailure(t *testing.T) {
	const log = `C:\ProgramData\cloudxr-wss-proxy\logs\cloudxr-wss-proxy.log`
	cases := []struct {
		stopped bool
		last    string
		want    string
	}{
		{false, "backend is down", `the cloudxr-wss-proxy service did not start within 30 s: backend is down (the whole log: ` + log + `)`},
		{true, "PROXY_PORT 1 is in use", `the cloudxr-wss-proxy service stopped as it started: PROXY_PORT 1 is in use (the whole log: ` + log + `)`},
		{true, "", `the cloudxr-wss-proxy service stopped as it started, and logged nothing (see ` + log + ` and the Application event log)`},
	}
	for _, c := range cases {
		err := startFailure("cloudxr-wss-proxy", c.stopped, 30*time.Second, log, c.last)
		if err.Error() != c.want {
			t.Errorf("got  %s\nwant %s", err, c.want)
		}
		if strings.Contains(err.Error(), "state") {
			t.Errorf("%s: names a state", err)
		}
	}
}
