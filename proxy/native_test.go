package proxy

import (
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

// Upgrades from native clients go to the runtime's native signaling port,
// with one backend and when routing by path; others are not affected.
func TestNativeClientsRouted(t *testing.T) {
	native := backendOn(t)
	e := start(t, func(o *Options) { o.NativeBackendPort = native.Port() })
	for _, c := range []struct {
		header []string
		want   *wstest.Backend
	}{
		{[]string{"x-cloudxr-device-type: native"}, native},
		{[]string{"X-CloudXR-Device-Type: web"}, e.backend},
		{nil, e.backend},
	} {
		before := len(c.want.Requests())
		cl := e.ws("/sign_in", c.header...)
		if err := cl.Echo("hello", 5*time.Second); err != nil {
			t.Fatal(err)
		}
		cl.Close()
		if len(c.want.Requests()) != before+1 {
			t.Errorf("%v: not sent to the expected runtime", c.header)
		}
	}

	// Routing by path: the segment's host, on the native port unless the
	// segment names one.
	router, err := newRouter(t, 1, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	router = NewRouter(router.runtimes, native.Port())
	r := startWith(t, nil, "unused:1", func(o *Options) { o.Router = router; o.NativeBackendPort = native.Port() })
	before := len(native.Requests())
	cl := r.ws("/127.0.0.1/sign_in", "x-cloudxr-device-type: native")
	if err := cl.Echo("routed", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if len(native.Requests()) != before+1 || native.Requests()[before].Target != "/sign_in" {
		t.Errorf("routed native client: %v", native.Requests())
	}
}
