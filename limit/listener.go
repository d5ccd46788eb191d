package limit

import (
	"net"
	"net/netip"
	"sync"
)

// Listener applies the table's per-client limits to a plain listener (the
// ACME HTTP-01 port): a connection over a limit is closed as it is
// accepted, and refused is told which limit; an admitted connection gives
// its place back when it is closed.
func (t *Table) Listener(ln net.Listener, refused func(limit string)) net.Listener {
	return &listener{Listener: ln, t: t, refused: refused}
}

type listener struct {
	net.Listener
	t       *Table
	refused func(string)
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := NonIP
		if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
			ip = ap.Addr()
		}
		client, which := l.t.Connect(ip)
		if client == nil {
			c.Close()
			if l.refused != nil {
				l.refused(which)
			}
			continue
		}
		return &conn{Conn: c, release: func() { l.t.Disconnect(client) }}, nil
	}
}

// conn gives its client's place back once, on its first Close.
type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *conn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
