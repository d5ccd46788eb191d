package proxy

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"
)

func TestInjectResponse(t *testing.T) {
	head := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"access-control-allow-origin: https://backend.example\r\nSec-WebSocket-Accept: abc\r\n\r\n"
	out := string(injectResponse(nil, []byte(head), false, anyOrigin))
	want := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: abc\r\n" +
		string(corsBlock) + "\r\n"
	if out != want {
		t.Fatalf("got\n%q\nwant\n%q", out, want)
	}

	closing := string(injectResponse(nil, []byte("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n"), true, anyOrigin))
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(closing)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Close || strings.Count(closing, "\r\nConnection: close\r\n") != 1 || strings.Count(strings.ToLower(closing), "connection:") != 1 {
		t.Errorf("want exactly one Connection: close in %q", closing)
	}
	if resp.Header.Get("Keep-Alive") != "" {
		t.Error("Keep-Alive kept")
	}
	wantCORS(t, resp.Header)
}

func TestClosingRequest(t *testing.T) {
	in := "POST /x HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n"
	got := string(closingRequest(nil, []byte(in)))
	want := "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
	if got != want {
		t.Fatalf("got %q", got)
	}
}

func TestLocalResponse(t *testing.T) {
	for _, keep := range []bool{true, false} {
		b := preflight(anyOrigin, keep)
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), nil)
		if err != nil {
			t.Fatal(err)
		}
		wantCORS(t, resp.Header)
		if resp.Close == keep {
			t.Errorf("keepAlive=%v but Close=%v", keep, resp.Close)
		}
	}
}

func BenchmarkParseRequestHead(b *testing.B) {
	head := []byte("GET /sign_in?peer_id=abc&version=2 HTTP/1.1\r\nHost: 10.0.3.17:48322\r\nConnection: Upgrade\r\n" +
		"Pragma: no-cache\r\nCache-Control: no-cache\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) OculusBrowser/35.0\r\n" +
		"Upgrade: websocket\r\nOrigin: https://client.example\r\nSec-WebSocket-Version: 13\r\n" +
		"Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n")
	b.ReportAllocs()
	b.SetBytes(int64(len(head)))
	for b.Loop() {
		if _, err := parseRequestHead(head); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkInjectResponse(b *testing.B) {
	head := []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
	dst := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		dst = injectResponse(dst[:0], head, false, anyOrigin)
	}
}
