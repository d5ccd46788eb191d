package proxy

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/allow"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/tunnel"
)

// Router picks the backend from the first path segment, as CloudXR.js
// clients behind an HTTPS proxy ask for it (signalingResourcePath
// "/<server-ip>/..."): wss://proxy/10.0.3.17/sign_in?peer_id=... goes to
// 10.0.3.17:49100 as /sign_in?peer_id=.... Only runtimes on the allow-list
// are ever dialed.
type Router struct {
	runtimes *allow.Runtimes
	native   *allow.Runtimes // the same list, the native signaling port by default
}

// NewRouter routes to the runtimes on the list; nativePort, if not 0, is
// the default port for native clients.
func NewRouter(r *allow.Runtimes, nativePort int) *Router {
	rt := &Router{runtimes: r, native: r}
	if nativePort != 0 {
		rt.native = r.WithDefaultPort(nativePort)
	}
	return rt
}

// Route splits a request target into the backend address and the target
// to forward (the rest of the path, with the query, unchanged). A native
// client's runtime is reached on the native port unless the segment names
// a port. Its errors
// are refusals: 400 for a malformed target, 403 for one not allowed.
func (r *Router) Route(target string, native bool) (addr, rest string, err error) {
	path, query, hasQuery := strings.Cut(target, "?")
	seg, tail, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if seg == "" {
		return "", "", &refusal{status: http.StatusBadRequest, msg: "the first path segment must name the CloudXR runtime (/<host>[:port]/...)", reason: tunnel.RouteRefused}
	}
	if s, err := url.PathUnescape(seg); err == nil {
		seg = s // browsers may send an IPv6 literal's brackets encoded
	}
	list := r.runtimes
	if native {
		list = r.native
	}
	addr, err = list.Target(seg)
	if err != nil {
		status := http.StatusForbidden
		if errors.Is(err, allow.ErrBadTarget) {
			status = http.StatusBadRequest
		}
		return "", "", &refusal{status: status, msg: err.Error(), reason: tunnel.RouteRefused}
	}
	rest = "/" + tail
	if hasQuery {
		rest += "?" + query
	}
	return addr, rest, nil
}

// rewriteTarget returns head with the request line's target replaced.
func rewriteTarget(head []byte, target string) []byte {
	line, rest, _ := strings.Cut(string(head), "\r\n")
	method, tail, _ := strings.Cut(line, " ")
	_, proto, _ := strings.Cut(tail, " ")
	return []byte(method + " " + target + " " + proto + "\r\n" + rest)
}
