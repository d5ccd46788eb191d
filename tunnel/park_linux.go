//go:build linux

package tunnel

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Parker holds the parked ways of many tunnels (see the package comment):
// one epoll set and one goroutine waiting on it, and a sweep that asks
// quiet ways to park and wakes parked ones whose time is up.
type Parker struct {
	quietFor   time.Duration
	epfd, wake int
	nextKey    atomic.Uint64

	mu      sync.Mutex
	parked  map[uint64]*way      // by key; the eventfd has key 0
	tunnels map[*Tunnel]struct{} // upgraded tunnels, for the sweep

	stopping  atomic.Bool
	stopSweep chan struct{}
	done      sync.WaitGroup
}

// NewParker starts a parker for ways quiet for quietFor.
func NewParker(quietFor time.Duration) (*Parker, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN}); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, err
	}
	p := &Parker{quietFor: quietFor, epfd: epfd, wake: wake, parked: map[uint64]*way{},
		tunnels: map[*Tunnel]struct{}{}, stopSweep: make(chan struct{})}
	p.done.Add(2)
	go p.waitEvents()
	go p.sweepLoop()
	return p, nil
}

// Close stops the parker; call it once no tunnel is left.
func (p *Parker) Close() {
	p.stopping.Store(true)
	unix.Write(p.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	close(p.stopSweep)
	p.done.Wait()
	unix.Close(p.epfd)
	unix.Close(p.wake)
}

// Parked is the number of ways parked now.
func (p *Parker) Parked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.parked)
}

func (p *Parker) newKey() uint64 { return p.nextKey.Add(1) }

func (p *Parker) track(t *Tunnel) {
	p.mu.Lock()
	p.tunnels[t] = struct{}{}
	p.mu.Unlock()
}

func (p *Parker) untrack(t *Tunnel) {
	p.mu.Lock()
	delete(p.tunnels, t)
	p.mu.Unlock()
}

// add puts w's socket into the epoll set; the caller holds w.t.mu. Once
// the call succeeds an event may come at once: the event's goroutine then
// waits for w.t.mu, and sees w parked.
func (p *Parker) add(w *way) error {
	op := unix.EPOLL_CTL_MOD
	if !w.registered {
		op = unix.EPOLL_CTL_ADD
	}
	p.mu.Lock()
	p.parked[w.key] = w
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(w.key), Pad: int32(w.key >> 32)}
	if err := unix.EpollCtl(p.epfd, op, w.fd, &ev); err != nil {
		p.remove(w)
		return err
	}
	w.registered = true
	return nil
}

// remove takes w out of the parked set; the caller holds w.t.mu. Its
// socket stays in the epoll set, disarmed or soon to be: an event that
// still comes finds w running and is ignored, and closing the socket
// removes it.
func (p *Parker) remove(w *way) {
	p.mu.Lock()
	delete(p.parked, w.key)
	p.mu.Unlock()
}

func (p *Parker) waitEvents() {
	defer p.done.Done()
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil || p.stopping.Load() {
			return
		}
		for _, ev := range events[:n] {
			key := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			p.mu.Lock()
			w := p.parked[key]
			p.mu.Unlock()
			if w != nil {
				w.t.woken(w)
			}
		}
	}
}

// sweepLoop runs the sweep every third of the quiet time (10 ms to 1 s).
func (p *Parker) sweepLoop() {
	defer p.done.Done()
	tick := time.NewTicker(min(max(p.quietFor/3, 10*time.Millisecond), time.Second))
	defer tick.Stop()
	var list []*Tunnel
	for {
		select {
		case <-p.stopSweep:
			return
		case now := <-tick.C:
			p.mu.Lock()
			list = list[:0]
			for t := range p.tunnels {
				list = append(list, t)
			}
			p.mu.Unlock()
			for _, t := range list {
				t.sweep(now, p.quietFor)
			}
			clear(list)
		}
	}
}
