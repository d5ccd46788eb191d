package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/procstat"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

// The load generator: wss:// clients in closed loops. What it measures of
// the proxy is read from /proc (its own CPU time and memory), since the
// generator shares the machine's cores with it.

var clientTLS = &tls.Config{
	// Verification is the client's cost, not the proxy's; skipping it
	// leaves more of the shared cores to the proxies under test.
	InsecureSkipVerify: true,
	NextProtos:         []string{"http/1.1"},
	// No session cache: every session is a full handshake, as on a
	// headset that reconnects after the reference config's tickets-off.
}

// sources is how many client addresses the load comes from: 127.1.0.0/22
// (all of 127.0.0.0/8 is loopback), as a lab's headsets would each have
// their own. The proxies run with their per-client limits at the defaults
// (64 connections, 20 handshakes a second per address): each address
// carries a few sessions at a time and a few handshakes a second.
const sources = 1020

var sourceSeq atomic.Uint32

// nextSource is the next client address, in turn: 127.1.0.1 to 127.1.3.252.
func nextSource() net.IP {
	return wstest.Source(1, int(sourceSeq.Add(1)%sources))
}

// measured is what one scenario run found.
type measured struct {
	ops    int64         // sessions, round trips, or bytes
	cpu    time.Duration // the proxy's user+system time during the run
	wall   time.Duration
	lat    []time.Duration // sorted round-trip latencies (messages)
	errors int64
	// idle
	perSession float64 // bytes of proxy RSS per held session
	held       int
	alive      int
}

func (m measured) cpuPerOp() time.Duration {
	if m.ops == 0 {
		return 0
	}
	return m.cpu / time.Duration(m.ops)
}

func (m measured) rate() float64 { return float64(m.ops) / m.wall.Seconds() }

func (m measured) pct(p float64) time.Duration {
	if len(m.lat) == 0 {
		return 0
	}
	return m.lat[min(len(m.lat)-1, int(p*float64(len(m.lat))))]
}

// dialWS opens one wss:// session through addr.
func dialWS(addr string) (*wstest.Client, error) { return dialWSWith(addr, clientTLS) }

func dialWSWith(addr string, cfg *tls.Config, header ...string) (*wstest.Client, error) {
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: nextSource()}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(c, cfg)
	cl, err := wstest.Upgrade(tc, "localhost", "/sign_in?peer_id=bench", header...)
	if err != nil {
		c.Close()
		return nil, err
	}
	return cl, nil
}

// openSessions opens n sessions one after the other.
func openSessions(addr string, n int) ([]*wstest.Client, error) {
	var cls []*wstest.Client
	for range n {
		cl, err := dialWS(addr)
		if err != nil {
			return cls, err
		}
		cls = append(cls, cl)
	}
	return cls, nil
}

func closeAll(cls []*wstest.Client) {
	for _, c := range cls {
		if c != nil {
			c.Conn.Close()
		}
	}
}

// during runs f in n goroutines until d has passed, measuring pid's CPU.
func during(pid, n int, d time.Duration, f func(stop <-chan struct{}, id int) error) (measured, error) {
	cpu0, err := procstat.CPUTime(pid)
	if err != nil {
		return measured{}, err
	}
	start := time.Now()
	stop := make(chan struct{})
	var (
		wg     sync.WaitGroup
		errs   atomic.Int64
		first  error
		firstM sync.Once
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(stop, i); err != nil {
				errs.Add(1)
				firstM.Do(func() { first = err })
			}
		}()
	}
	time.Sleep(d)
	close(stop)
	wg.Wait()
	wall := time.Since(start)
	cpu1, err := procstat.CPUTime(pid)
	if err != nil {
		return measured{}, err
	}
	m := measured{cpu: cpu1 - cpu0, wall: wall, errors: errs.Load()}
	if first != nil && m.errors == int64(n) {
		return m, first
	}
	return m, nil
}

func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// sessions: handshake + upgrade + one echo + close, closed loop. With
// resume, each client keeps a session cache and resumes its TLS session.
func runSessions(p *proxy, clients int, d time.Duration, resume bool) (measured, error) {
	var ops atomic.Int64
	msg := make([]byte, 32)
	m, err := during(p.pid(), clients, d, func(stop <-chan struct{}, _ int) error {
		cfg := clientTLS
		if resume {
			cfg = clientTLS.Clone()
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
		}
		for !stopped(stop) {
			cl, err := dialWSWith(p.addr, cfg, p.header...)
			if err != nil {
				return err
			}
			cl.Conn.SetDeadline(time.Now().Add(10 * time.Second))
			if err := cl.Send(wstest.OpBinary, msg); err != nil {
				cl.Conn.Close()
				return err
			}
			if _, _, err := cl.Receive(); err != nil {
				cl.Conn.Close()
				return err
			}
			cl.Send(wstest.OpClose, []byte{3, 232})
			cl.Receive()
			cl.Conn.Close()
			ops.Add(1)
		}
		return nil
	})
	m.ops = ops.Load()
	return m, err
}

// messages: 256-byte echo round trips on open sessions, closed loop.
func runMessages(p *proxy, sessions int, d time.Duration) (measured, error) {
	cls, err := openSessions(p.addr, sessions)
	defer closeAll(cls)
	if err != nil {
		return measured{}, err
	}
	lats := make([][]time.Duration, sessions)
	payload := make([]byte, 256)
	m, err := during(p.pid(), sessions, d, func(stop <-chan struct{}, id int) error {
		cl := cls[id]
		for !stopped(stop) {
			t0 := time.Now()
			if err := cl.Send(wstest.OpBinary, payload); err != nil {
				return err
			}
			if _, got, err := cl.Receive(); err != nil || len(got) != len(payload) {
				return fmt.Errorf("echo: %v", err)
			}
			lats[id] = append(lats[id], time.Since(t0))
		}
		return nil
	})
	for _, l := range lats {
		m.lat = append(m.lat, l...)
	}
	sort.Slice(m.lat, func(i, j int) bool { return m.lat[i] < m.lat[j] })
	m.ops = int64(len(m.lat))
	return m, err
}

// bulk: 64 KiB messages streamed both ways; ops counts bytes through the
// proxy in both directions.
func runBulk(p *proxy, sessions int, d time.Duration) (measured, error) {
	cls, err := openSessions(p.addr, sessions)
	defer closeAll(cls)
	if err != nil {
		return measured{}, err
	}
	var echoed atomic.Int64
	frame := wstest.AppendFrame(nil, wstest.OpBinary, make([]byte, 64<<10), true)
	m, err := during(p.pid(), sessions, d, func(stop <-chan struct{}, id int) error {
		cl := cls[id]
		var sent atomic.Int64
		werr := make(chan error, 1)
		go func() {
			for !stopped(stop) {
				if _, err := cl.Conn.Write(frame); err != nil {
					werr <- err
					return
				}
				sent.Add(1)
			}
			werr <- nil
		}()
		var got int64
		for {
			if stopped(stop) && got >= sent.Load() {
				break
			}
			cl.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, _, err := cl.Receive(); err != nil {
				return err
			}
			got++
			echoed.Add(64 << 10)
		}
		return <-werr
	})
	m.ops = 2 * echoed.Load() // each byte crosses the proxy twice
	return m, err
}

// idle: n sessions opened and held; the proxy's memory per session; after
// holding them quiet for hold, every session must still echo.
func runIdle(p *proxy, n int, hold time.Duration) (measured, error) {
	before, err := settledRSS(p.pid())
	if err != nil {
		return measured{}, err
	}
	cls, held, openErr := holdIdle(p, n)
	defer closeAll(cls)
	m := measured{held: held}
	time.Sleep(hold) // quiet sessions are the scenario, not a wait for state
	after, err := settledRSS(p.pid())
	if err != nil {
		return m, err
	}
	m.perSession = float64(after-before) / float64(max(m.held, 1))
	m.alive = echoAll(cls)
	return m, openErr
}

// holdIdle opens n sessions on p, 32 at a time, each echoing once, and
// returns them open (nil where one failed), how many opened, and an error
// naming the first failure.
func holdIdle(p *proxy, n int) ([]*wstest.Client, int, error) {
	cls := make([]*wstest.Client, n)
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	var (
		failed   atomic.Int64
		firstErr atomic.Pointer[error]
	)
	for i := range cls {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cl, err := dialWS(p.addr)
			if err == nil {
				if err = cl.Echo("hello", 10*time.Second); err != nil {
					cl.Conn.Close()
				}
			}
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, &err)
				return
			}
			cls[i] = cl
		}()
	}
	wg.Wait()
	held := n - int(failed.Load())
	if held < n {
		return cls, held, fmt.Errorf("opened %d of %d sessions; first error: %v", held, n, *firstErr.Load())
	}
	return cls, held, nil
}

// echoAll has every open session echo once, 32 at a time, and returns how
// many did.
func echoAll(cls []*wstest.Client) int {
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	var alive atomic.Int64
	for _, c := range cls {
		if c == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if c.Echo("still there", 10*time.Second) == nil {
				alive.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(alive.Load())
}

// settledRSS is the process's resident set once it has stopped moving
// (within 64 KiB for 6 s, read every 250 ms; at most 30 s): a proxy may
// still be handing memory back after the warm-up or the connections'
// burst (ours does 3 to 4 s after connections stop arriving, so a shorter
// window can close just before it), and the figure is what it holds, not
// what it is in the middle of returning.
func settledRSS(pid int) (int64, error) {
	const window = 24 // 6 s of reads
	var last []int64
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		rss, err := procstat.RSS(pid)
		if err != nil {
			return 0, err
		}
		last = append(last, rss)
		if len(last) > window {
			last = last[1:]
		}
		if len(last) == window && slices.Max(last)-slices.Min(last) <= 64<<10 || time.Now().After(end) {
			return rss, nil
		}
	}
}
