package upgrade

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// A container ends when its first process (PID 1) does. A process that
// upgraded in place exits once its sessions end, so as PID 1 it would take
// the new one with it. Run as PID 1, the program therefore stays a small
// init, as `docker run --init` would add: it starts the program again as
// its child, tells it to report to it as systemd would (NOTIFY_SOCKET),
// forwards SIGHUP to the process that serves and SIGTERM and SIGINT to
// every process, reaps every process that ends, and exits with the status
// of the last one once none is left.

// RunAsInit does that when this process is PID 1, and returns its exit
// status and true; otherwise it returns false at once.
func RunAsInit() (int, bool) {
	if os.Getpid() != 1 {
		return 0, false
	}
	code, err := runInit()
	if err != nil {
		fmt.Fprintf(os.Stderr, "cloudxr-wss-proxy: as the container's first process: %v\n", err)
		return 1, true
	}
	return code, true
}

func runInit() (int, error) {
	// Signals first, so none sent while the child starts is lost.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	var main atomic.Int64
	sock, name, err := listenNotify()
	if err != nil {
		return 0, err
	}
	defer sock.Close()
	go followMainPID(sock, &main)

	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	env := append(os.Environ(), "NOTIFY_SOCKET="+name)
	p, err := os.StartProcess(exe, os.Args, &os.ProcAttr{Env: env, Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}})
	if err != nil {
		return 0, err
	}
	main.Store(int64(p.Pid))
	go forwardSignals(sigs, &main)
	return reapAll(&main), nil
}

// listenNotify opens an abstract datagram socket for the children's
// READY=1 and MAINPID= messages (see notify.go).
func listenNotify() (*net.UnixConn, string, error) {
	var b [8]byte
	rand.Read(b[:])
	name := "@cloudxr-wss-proxy-init-" + hex.EncodeToString(b[:])
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return nil, "", fmt.Errorf("the socket its children report on: %w", err)
	}
	return c, name, nil
}

// followMainPID keeps main at the pid the last MAINPID= message named.
func followMainPID(c *net.UnixConn, main *atomic.Int64) {
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if pid, ok := mainPID(string(buf[:n])); ok {
			main.Store(int64(pid))
		}
	}
}

// mainPID reads the MAINPID= line of a notification.
func mainPID(msg string) (int, bool) {
	for _, line := range strings.Split(msg, "\n") {
		if v, ok := strings.CutPrefix(line, "MAINPID="); ok {
			if pid, err := strconv.Atoi(v); err == nil && pid > 1 {
				return pid, true
			}
		}
	}
	return 0, false
}

// forwardSignals sends SIGHUP to the process that serves (an upgrade in
// place), and any other signal to every process in the container.
func forwardSignals(sigs <-chan os.Signal, main *atomic.Int64) {
	for sig := range sigs {
		s := sig.(syscall.Signal)
		if s == syscall.SIGHUP {
			syscall.Kill(int(main.Load()), s)
			continue
		}
		syscall.Kill(-1, s) // from PID 1: every process but itself
	}
}

// reapAll waits for every child (orphans included: PID 1 inherits them)
// until none is left, and returns the exit status of the last process
// that was serving when it ended.
func reapAll(main *atomic.Int64) int {
	code := 0
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil { // ECHILD: nobody left
			return code
		}
		if int64(pid) == main.Load() {
			code = ws.ExitStatus()
			if ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
		}
	}
}

// UnderForeignInit reports whether this process is the child of a
// container's init that is not this program (tini, catatonit), which ends
// the container when its child exits.
func UnderForeignInit() bool {
	if os.Getppid() != 1 || os.Getenv("NOTIFY_SOCKET") != "" {
		return false // systemd, or this program, as PID 1
	}
	for _, f := range []string{"/.dockerenv", "/run/.containerenv"} {
		if _, err := os.Stat(f); err == nil {
			return true
		}
	}
	return false
}
