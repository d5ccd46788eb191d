package proxy

import (
	"errors"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Parking: a tunnel direction that has seen nothing for parkAfter gives up
// its goroutine. Its socket goes into the parker's epoll set (one-shot,
// level-triggered, so bytes that arrived meanwhile wake it at once) and a
// fresh goroutine carries on when the socket becomes readable, the session
// is stopped, or its idle or linger time runs out. Thousands of quiet
// signaling sessions then cost their TLS state and little else: no
// goroutine stacks, no buffers.

// errPark is what a direction's read returns when it should park.
var errPark = errors.New("park")

// Direction states.
const (
	running int32 = iota
	parked
	ended
)

// parker owns the epoll set of parked directions and the goroutine that
// waits on it.
type parker struct {
	epfd, wake int
	mu         sync.Mutex
	parked     map[uint64]*direction
	nextID     atomic.Uint64
	done       chan struct{}
	stopping   atomic.Bool
}

func newParker() (*parker, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	// Key 0 is the wake-up eventfd; directions get keys from 1.
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN}); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, err
	}
	p := &parker{epfd: epfd, wake: wake, parked: map[uint64]*direction{}, done: make(chan struct{})}
	go p.run()
	return p, nil
}

// key gives a direction its epoll key, once.
func (p *parker) key() uint64 { return p.nextID.Add(1) }

// park puts d's socket into the epoll set; the caller's goroutine then
// returns. On error d stays with its goroutine.
func (p *parker) park(d *direction) error {
	op := unix.EPOLL_CTL_MOD
	wasRegistered := d.registered
	if !wasRegistered {
		op = unix.EPOLL_CTL_ADD
	}
	d.state.Store(parked)
	// Under the lock, before the call: once the call succeeds an event may
	// resume d in another goroutine, which must see these writes.
	p.mu.Lock()
	p.parked[d.key] = d
	d.registered = true
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(d.key), Pad: int32(d.key >> 32)}
	err := unix.EpollCtl(p.epfd, op, d.fd, &ev)
	if err == nil {
		return nil
	}
	// No event comes after a failed call: d is still ours, unless a
	// sweep or a halt took it meanwhile and resumes it.
	if p.unpark(d) {
		d.registered = wasRegistered
		d.state.Store(running)
		return err
	}
	return nil
}

// unpark takes d out of the parked set; true means the caller must resume
// it, false that it was not parked (or another caller took it).
func (p *parker) unpark(d *direction) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.parked[d.key] != d {
		return false
	}
	delete(p.parked, d.key)
	return true
}

func (p *parker) run() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			key := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if key == 0 {
				if p.stopping.Load() {
					return
				}
				continue
			}
			p.mu.Lock()
			d := p.parked[key]
			delete(p.parked, key)
			p.mu.Unlock()
			if d != nil {
				go d.s.resume(d)
			}
		}
	}
}

// stop ends the parker's goroutine; call it when no session is left.
func (p *parker) stop() {
	p.stopping.Store(true)
	unix.Write(p.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	<-p.done
	unix.Close(p.epfd)
	unix.Close(p.wake)
}

// count is the number of directions parked now.
func (p *parker) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.parked)
}
