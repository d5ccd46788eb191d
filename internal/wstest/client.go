package wstest

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// Client is a WebSocket client connection.
type Client struct {
	Conn     net.Conn
	R        *bufio.Reader
	Response *http.Response // the upgrade response
	out      []byte
}

// Dial opens wss://addr/target (ws:// when cfg is nil) and upgrades. header
// lines are added to the request as given ("Origin: https://x").
func Dial(addr, target string, cfg *tls.Config, header ...string) (*Client, error) {
	var (
		c   net.Conn
		err error
	)
	d := &net.Dialer{Timeout: 10 * time.Second}
	if cfg != nil {
		c, err = tls.DialWithDialer(d, "tcp", addr, cfg)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	cl, err := Upgrade(c, addr, target, header...)
	if err != nil {
		c.Close()
		return nil, err
	}
	return cl, nil
}

// UpgradeRequest is the head Dial sends.
func UpgradeRequest(host, target string, header ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", target, host)
	fmt.Fprintf(&b, "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", NewKey())
	for _, h := range header {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// Upgrade sends the upgrade request on c and reads the response. A status
// other than 101 is an error that still returns the Client, so the caller
// can look at the response.
func Upgrade(c net.Conn, host, target string, header ...string) (*Client, error) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte(UpgradeRequest(host, target, header...))); err != nil {
		return nil, err
	}
	cl := &Client{Conn: c, R: bufio.NewReader(c)}
	resp, err := http.ReadResponse(cl.R, nil)
	if err != nil {
		return nil, err
	}
	cl.Response = resp
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return cl, fmt.Errorf("wstest: upgrade answered %s", resp.Status)
	}
	return cl, nil
}

// Send writes one masked frame.
func (c *Client) Send(op byte, payload []byte) error {
	c.out = AppendFrame(c.out[:0], op, payload, true)
	_, err := c.Conn.Write(c.out)
	return err
}

// Receive reads one frame.
func (c *Client) Receive() (op byte, payload []byte, err error) {
	return ReadFrame(c.R)
}

// Echo sends a text message and waits for it to come back, within timeout.
func (c *Client) Echo(msg string, timeout time.Duration) error {
	c.Conn.SetDeadline(time.Now().Add(timeout))
	defer c.Conn.SetDeadline(time.Time{})
	if err := c.Send(OpText, []byte(msg)); err != nil {
		return err
	}
	op, got, err := c.Receive()
	if err != nil {
		return err
	}
	if op != OpText || string(got) != msg {
		return fmt.Errorf("wstest: echo got op %d %q, want %q", op, got, msg)
	}
	return nil
}

// Close sends a close frame, waits for the answer and closes.
func (c *Client) Close() error {
	c.Conn.SetDeadline(time.Now().Add(5 * time.Second))
	c.Send(OpClose, []byte{0x03, 0xe8})
	_, _, err := c.Receive()
	c.Conn.Close()
	return err
}
