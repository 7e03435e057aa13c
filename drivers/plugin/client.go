// Package plugin runs docker-machine's driver plug-ins: any `docker-machine-driver-NAME` binary
// (clouds, hypervisors; Rancher's node drivers are the same binaries) becomes a driver of
// machine's. The protocol is libmachine's (API version 1): the binary, started with
// MACHINE_PLUGIN_TOKEN=42, prints the address it serves Go net/rpc on (HTTP, 127.0.0.1) as its
// first line and its log after; it exits when 10 s pass without a Heartbeat. See
// docs/drivers/plugins.md.
package plugin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/machine-tools/machine/drivers"
)

// Limits of a plug-in process.
const (
	// AddressLimit: a plug-in that has not printed its address by then is given up on.
	AddressLimit = 10 * time.Second
	// heartbeatEvery keeps the plug-in alive (it exits after 10 s without one).
	heartbeatEvery = 3 * time.Second
	// closeGrace is how long a plug-in may take to exit after Close before it is killed.
	closeGrace = 3 * time.Second
)

// BinaryName is the executable a driver name is looked up as, on PATH.
func BinaryName(driver string) string { return "docker-machine-driver-" + driver }

// ErrNotFound is a driver name with no plug-in binary on PATH.
var ErrNotFound = errors.New("no plug-in binary")

// Find returns the plug-in binary of a driver name.
func Find(driver string) (string, error) {
	if driver == "" || strings.ContainsAny(driver, "/\\ ") {
		return "", ErrNotFound
	}
	p, err := exec.LookPath(BinaryName(driver))
	if err != nil {
		return "", fmt.Errorf("%w: %s is not on PATH", ErrNotFound, BinaryName(driver))
	}
	return p, nil
}

// client is one running plug-in process and its RPC connection.
type client struct {
	driver, path string
	cmd          *exec.Cmd
	rpc          *rpc.Client
	service      string
	exited       chan struct{} // closed when the process has ended
	exitErr      error
	lastLines    *lines // the plug-in's last log lines, for errors
	stopBeat     chan struct{}
	closeOnce    sync.Once
}

// lines keeps the last few lines a plug-in printed.
type lines struct {
	mu  sync.Mutex
	buf []string
}

func (l *lines) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf = append(l.buf, s); len(l.buf) > 5 {
		l.buf = l.buf[len(l.buf)-5:]
	}
}

func (l *lines) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.buf) - 1; i >= 0; i-- {
		if s := drivers.PlainLine(l.buf[i]); s != "" {
			return s
		}
	}
	return ""
}

// start runs the plug-in binary of driver and connects to it; log hears every line it prints
// after its address.
func start(ctx context.Context, driver, path string, log func(string)) (*client, error) {
	c := &client{driver: driver, path: path, exited: make(chan struct{}), lastLines: &lines{}, stopBeat: make(chan struct{})}
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), "MACHINE_PLUGIN_TOKEN=42", "MACHINE_PLUGIN_DRIVER_NAME="+driver)
	// Its own process group: a Ctrl-C at the terminal reaches machine, which closes the plug-in
	// itself (Close, then a kill), instead of killing it under a call.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("the plug-in %s could not be started: %w", path, err)
	}
	c.cmd = cmd
	addr := make(chan string, 1)
	var streams sync.WaitGroup
	follow := func(r io.Reader, first bool) {
		defer streams.Done()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r\n")
			if first {
				addr <- strings.TrimSpace(line)
				first = false
				continue
			}
			c.lastLines.add(line)
			if log != nil && strings.TrimSpace(line) != "" {
				log(line)
			}
		}
		if first {
			close(addr)
		}
	}
	streams.Add(2)
	go follow(stdout, true)
	go follow(stderr, false)
	go func() {
		streams.Wait() // the pipes first: Wait closes them
		c.exitErr = cmd.Wait()
		close(c.exited)
	}()
	fail := func(err error) (*client, error) {
		c.kill()
		return nil, err
	}
	var a string
	select {
	case a = <-addr:
	case <-c.exited:
		a = ""
	case <-time.After(AddressLimit):
		return fail(fmt.Errorf("the plug-in %s printed no address within %s: is it a docker-machine driver plug-in?%s", path, AddressLimit, c.said()))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	if a == "" {
		<-c.exited
		return fail(fmt.Errorf("the plug-in %s exited as it started (%v)%s", path, c.exitErr, c.said()))
	}
	host, _, err := net.SplitHostPort(a)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fail(fmt.Errorf("the plug-in %s printed %q where its address belongs (a 127.0.0.1:PORT): is it a docker-machine driver plug-in?", path, drivers.PlainLine(a)))
	}
	dctx, cancel := context.WithTimeout(ctx, AddressLimit)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", a)
	if err != nil {
		return fail(fmt.Errorf("the plug-in %s does not answer at %s: %w", path, a, err))
	}
	// net/rpc over HTTP: CONNECT to its path, then the RPC stream (rpc.DialHTTP, on our dialer).
	if _, err := io.WriteString(conn, "CONNECT "+rpc.DefaultRPCPath+" HTTP/1.0\n\n"); err != nil {
		conn.Close()
		return fail(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(AddressLimit))
	status, err := bufio.NewReader(conn).ReadString('\n')
	_ = conn.SetReadDeadline(time.Time{})
	if err != nil || !strings.Contains(status, "200 Connected") {
		conn.Close()
		return fail(fmt.Errorf("the plug-in %s does not speak net/rpc at %s (%q, %v)", path, a, strings.TrimSpace(status), err))
	}
	c.rpc = rpc.NewClient(conn)
	// libmachine's service name since 0.5.1, then the older one.
	var version int
	c.service = "RPCServerDriver"
	if err := c.call(ctx, "GetVersion", struct{}{}, &version); err != nil {
		c.service = "RpcServerDriver"
		if err := c.call(ctx, "GetVersion", struct{}{}, &version); err != nil {
			return fail(fmt.Errorf("the plug-in %s does not answer GetVersion: %w", path, err))
		}
	}
	if version != 1 {
		return fail(fmt.Errorf("the plug-in %s speaks plug-in API version %d; machine speaks 1", path, version))
	}
	go c.heartbeat()
	return c, nil
}

// said is the plug-in's last line of output, for an error.
func (c *client) said() string {
	if l := c.lastLines.last(); l != "" {
		return " (its last output: " + l + ")"
	}
	return ""
}

func (c *client) heartbeat() {
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stopBeat:
			return
		case <-c.exited:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), heartbeatEvery)
			_ = c.call(ctx, "Heartbeat", struct{}{}, nil)
			cancel()
		}
	}
}

// call makes one call, returning when it is answered, when ctx ends or when the plug-in exits.
func (c *client) call(ctx context.Context, method string, args, reply any) error {
	return c.callWithGrace(ctx, 0, method, args, reply)
}

// callWithGrace is call that, when ctx ends first, still waits up to grace for the answer
// (a Create let finish so that Remove knows what it made), then returns ctx's error.
func (c *client) callWithGrace(ctx context.Context, grace time.Duration, method string, args, reply any) error {
	done := c.rpc.Go(c.service+"."+method, args, reply, make(chan *rpc.Call, 1)).Done
	if grace > 0 {
		select {
		case <-ctx.Done():
			select {
			case <-done:
			case <-c.exited:
			case <-time.After(grace):
			}
			return ctx.Err()
		case call := <-done:
			done = make(chan *rpc.Call, 1)
			done <- call
		case <-c.exited:
		}
	}
	select {
	case call := <-done:
		if call.Error == nil {
			return nil
		}
		var se rpc.ServerError
		if errors.As(call.Error, &se) {
			return &Error{Method: method, Msg: string(se)}
		}
		select { // a lost connection: the plug-in may have died
		case <-c.exited:
		case <-time.After(500 * time.Millisecond):
		}
		return c.lost(method, call.Error)
	case <-c.exited:
		return c.lost(method, nil)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lost describes a call that the plug-in did not answer.
func (c *client) lost(method string, err error) error {
	select {
	case <-c.exited:
		return fmt.Errorf("the plug-in %s exited during %s (%v)%s", BinaryName(c.driver), method, c.exitErr, c.said())
	default:
		return fmt.Errorf("the plug-in %s stopped answering during %s: %w%s", BinaryName(c.driver), method, err, c.said())
	}
}

// Error is an error the plug-in's driver returned, in its own words.
type Error struct {
	Method, Msg string
}

// Error is the plug-in's words on one line (docker-machine's drivers quote tools' output, newlines
// and all).
func (e *Error) Error() string { return drivers.PlainLine(strings.Join(strings.Fields(e.Msg), " ")) }

// close asks the plug-in to exit, and kills it (its process group) when it has not within a grace.
func (c *client) close() {
	c.closeOnce.Do(func() {
		close(c.stopBeat)
		if c.rpc != nil {
			ctx, cancel := context.WithTimeout(context.Background(), closeGrace)
			_ = c.call(ctx, "Close", struct{}{}, nil)
			cancel()
			c.rpc.Close()
		}
		select {
		case <-c.exited:
		case <-time.After(closeGrace):
			c.kill()
		}
	})
}

func (c *client) kill() {
	if c.cmd != nil && c.cmd.Process != nil {
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.exited
	}
}
