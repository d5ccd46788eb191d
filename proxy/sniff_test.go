package proxy

import (
	"errors"
	"testing"
)

func TestParseRequestHead(t *testing.T) {
	const ws = "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	cases := []struct {
		name   string
		head   string
		status int // 0: accepted
		want   requestHead
	}{
		{"upgrade", "GET /a?b=c HTTP/1.1\r\nHost: h\r\n" + ws + "Origin: https://o\r\n\r\n", 0,
			requestHead{method: "GET", target: "/a?b=c", proto: "HTTP/1.1", host: "h", origin: "https://o", upgrade: true}},
		{"upgrade token list and case", "GET / HTTP/1.1\r\nHost: h\r\nupgrade: WebSocket\r\nconnection: keep-alive, UPGRADE\r\n\r\n", 0,
			requestHead{method: "GET", target: "/", proto: "HTTP/1.1", host: "h", upgrade: true}},
		{"websocket twice, empty elements", "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: , websocket,,WebSocket \r\nConnection: Upgrade\r\n\r\n", 0,
			requestHead{method: "GET", target: "/", proto: "HTTP/1.1", host: "h", upgrade: true}},
		{"plain get", "GET / HTTP/1.1\r\nHost: h\r\n\r\n", 0,
			requestHead{method: "GET", target: "/", proto: "HTTP/1.1", host: "h"}},
		{"http/1.0 closes", "GET / HTTP/1.0\r\n\r\n", 0,
			requestHead{method: "GET", target: "/", proto: "HTTP/1.0", close: true}},
		{"http/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0,
			requestHead{method: "GET", target: "/", proto: "HTTP/1.0"}},
		{"close", "OPTIONS * HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 0,
			requestHead{method: "OPTIONS", target: "*", proto: "HTTP/1.1", host: "h", close: true}},
		{"body", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n", 0,
			requestHead{method: "POST", target: "/", proto: "HTTP/1.1", host: "h", hasBody: true, contentLength: 5}},
		{"same length twice", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 0,
			requestHead{method: "POST", target: "/", proto: "HTTP/1.1", host: "h", hasBody: true, contentLength: 5}},
		{"chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", 0,
			requestHead{method: "POST", target: "/", proto: "HTTP/1.1", host: "h", hasBody: true, chunked: true}},

		{"no host", "GET / HTTP/1.1\r\n\r\n", 400, requestHead{}},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, requestHead{}},
		{"CL and TE", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400, requestHead{}},
		{"two lengths", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400, requestHead{}},
		{"bad length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", 400, requestHead{}},
		{"gzip TE", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, requestHead{}},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400, requestHead{}},
		{"space before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400, requestHead{}},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: h\x00\r\n\r\n", 400, requestHead{}},
		{"CR in value", "GET / HTTP/1.1\r\nHost: h\rx\r\n\r\n", 400, requestHead{}},
		{"control in name", "GET / HTTP/1.1\r\nHo\x01st: h\r\n\r\n", 400, requestHead{}},
		{"bare LF", "GET / HTTP/1.1\nHost: h\r\n\r\n", 400, requestHead{}},
		{"http/0.9", "GET /\r\n\r\n", 400, requestHead{}},
		{"http/2 preface", "PRI * HTTP/2.0\r\n\r\n", 400, requestHead{}},
		{"absolute form", "GET http://evil/ HTTP/1.1\r\nHost: evil\r\n\r\n", 400, requestHead{}},
		{"CONNECT", "CONNECT evil:443 HTTP/1.1\r\nHost: evil:443\r\n\r\n", 501, requestHead{}},
		{"upgrade without connection", "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n", 400, requestHead{}},
		{"h2c upgrade", "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n", 501, requestHead{}},
		{"h2c before websocket", "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c, websocket\r\nConnection: Upgrade\r\n\r\n", 501, requestHead{}},
		{"websocket before h2c", "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket, h2c\r\nConnection: Upgrade\r\n\r\n", 501, requestHead{}},
		{"h2c in a second Upgrade field", "GET / HTTP/1.1\r\nHost: h\r\n" + ws + "Upgrade: h2c\r\n\r\n", 501, requestHead{}},
		{"websocket with a version", "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket/13\r\nConnection: Upgrade\r\n\r\n", 501, requestHead{}},
		{"an empty Upgrade", "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: \r\nConnection: Upgrade\r\n\r\n", 501, requestHead{}},
		{"upgrade with body", "GET / HTTP/1.1\r\nHost: h\r\n" + ws + "Content-Length: 3\r\n\r\n", 400, requestHead{}},
		{"upgrade by POST", "POST / HTTP/1.1\r\nHost: h\r\n" + ws + "\r\n", 400, requestHead{}},
		{"space in target", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400, requestHead{}},
		{"double space", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400, requestHead{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRequestHead([]byte(tc.head))
			if tc.status != 0 {
				var he *refusal
				if !errors.As(err, &he) || he.status != tc.status {
					t.Fatalf("err %v, want status %d", err, tc.status)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseResponseHead(t *testing.T) {
	cases := []struct {
		head   string
		status int
		length int64
		ok     bool
	}{
		{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", 101, 0, true},
		{"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", 200, 12, true},
		{"HTTP/1.0 200\r\n\r\n", 200, -1, true},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 200, -1, true},
		{"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", 204, 0, true},
		{"HTTP/1.1 304 Not Modified\r\n\r\n", 304, 0, true},
		{"SSH-2.0-OpenSSH\r\n\r\n", 0, 0, false},
		{"HTTP/1.1 2000 OK\r\n\r\n", 0, 0, false},
		{"HTTP/1.1 099 X\r\n\r\n", 0, 0, false},
		{"HTTP/2.0 200 OK\r\n\r\n", 0, 0, false},
		{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 0, 0, false},
		{"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", 0, 0, false},
	}
	for _, tc := range cases {
		got, err := parseResponseHead([]byte(tc.head))
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v", tc.head, err)
			continue
		}
		if tc.ok && (got.status != tc.status || got.contentLength != tc.length) {
			t.Errorf("%q: got %+v", tc.head, got)
		}
	}
}
