package health

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type changes struct {
	mu  sync.Mutex
	got []State
}

func (c *changes) add(s State, _ string) { c.mu.Lock(); c.got = append(c.got, s); c.mu.Unlock() }
func (c *changes) list() []State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]State(nil), c.got...)
}

func TestRiseAndFall(t *testing.T) {
	var ch changes
	c := New(Options{Addr: "x", Rise: 2, Fall: 3})
	c.OnChange(ch.add)
	fail, ok := net.ErrClosed, error(nil)
	steps := []struct {
		err  error
		want State
	}{
		{ok, Up},     // the first check decides at once
		{fail, Up},   // 1 of 3
		{fail, Up},   // 2 of 3
		{ok, Up},     // resets the count
		{fail, Up},   // 1
		{fail, Up},   // 2
		{fail, Down}, // 3: down
		{ok, Down},   // 1 of 2
		{fail, Down}, // resets
		{ok, Down},   // 1
		{ok, Up},     // 2: up
	}
	for i, s := range steps {
		c.record(s.err, 0)
		if st, _ := c.State(); st != s.want {
			t.Fatalf("step %d: %v, want %v", i, st, s.want)
		}
	}
	if got := ch.list(); len(got) != 3 || got[0] != Up || got[1] != Down || got[2] != Up {
		t.Errorf("changes %v: want each change reported once", got)
	}
}

func TestFirstCheckFailingIsDown(t *testing.T) {
	c := New(Options{Addr: "x", Rise: 2, Fall: 3})
	c.record(net.ErrClosed, 0)
	if st, _ := c.State(); st != Down {
		t.Fatalf("%v", st)
	}
	c.Observe() // a session got through: up at once
	if st, _ := c.State(); st != Up {
		t.Fatalf("after Observe: %v", st)
	}
}

func TestRunChecksRealBackend(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	var ch changes
	c := New(Options{Addr: addr, Interval: 20 * time.Millisecond, Timeout: time.Second, Rise: 2, Fall: 2})
	c.OnChange(ch.add)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	wait := func(want State) {
		t.Helper()
		testutil.WaitFor(t, 5*time.Second, want.String(), func() bool { st, _ := c.State(); return st == want })
	}
	wait(Up)
	ln.Close()
	<-accepted
	wait(Down)
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening again on %s: %v", addr, err)
	}
	defer ln2.Close()
	go func() {
		for {
			c, err := ln2.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	wait(Up)
	if got := ch.list(); len(got) != 3 {
		t.Errorf("changes %v", got)
	}
}
