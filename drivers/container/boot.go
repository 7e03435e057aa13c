package container

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/machine-tools/machine/drivers"
	"github.com/machine-tools/machine/internal/wait"
)

// CheckBoot implements drivers.BootChecker: a host container that has exited while booting will
// never answer SSH, so the wait ends at once with what the container said and, where the cause is
// known, the fix.
func (d *Driver) CheckBoot(ctx context.Context) error {
	ci, cli, err := d.inspect(ctx)
	if err != nil {
		return nil // the SSH wait reports what it sees
	}
	defer cli.Close()
	// Exited, or (with the hosts' restart policy) restarted: a fresh host does neither.
	if ci.State == nil || (ci.State.Status != "exited" && ci.State.Status != "dead" && ci.RestartCount == 0) {
		return nil
	}
	var what []string
	if ci.State.ExitCode != 0 {
		what = append(what, fmt.Sprintf("status %d", ci.State.ExitCode))
	}
	tail := logTail(ctx, cli, ci.ID, ci.Config != nil && ci.Config.Tty)
	if tail != "" {
		what = append(what, "its last output: "+tail)
	} else {
		what = append(what, "no output")
	}
	if haltedOnRequest(tail) {
		// systemd shut down as asked (SIGRTMIN+3: `docker stop`, the engine stopping): no limit
		// of this machine's is the cause.
		return fmt.Errorf("the host container %s was stopped while it booted (%s): something stopped it (docker stop, or its engine stopping); create it again", d.ContainerName, strings.Join(what, ", "))
	}
	return fmt.Errorf("the host container %s exited while booting (%s): %s", d.ContainerName, strings.Join(what, ", "), bootHint(d.EngineHost))
}

// haltedOnRequest says whether a host's last output is systemd's orderly halt: it was stopped,
// it did not fail.
func haltedOnRequest(tail string) bool {
	return strings.Contains(tail, "Halting system.") || strings.Contains(tail, "Powering off.") || strings.Contains(tail, "Exiting container.")
}

// bootHint names the usual cause of a systemd that exits at once in a container. On this
// machine's own engine it reads the limit that causes it most often: inotify instances, which
// every host's systemd and dockerd take several of, out of one per-user budget (128 by default).
func bootHint(engineHost string) string {
	if engineHost == "" || strings.HasPrefix(engineHost, "unix://") {
		if n, ok := inotifyInstances(); ok && n < 1024 {
			return fmt.Sprintf("this machine allows %d inotify instances per user (fs.inotify.max_user_instances) and every host's systemd and dockerd take several: raise it with `sysctl -w fs.inotify.max_user_instances=8192`", n)
		}
	}
	return "its init did not stay up: systemd stops at once when the engine's machine is out of inotify instances (raise fs.inotify.max_user_instances there, 8192 suits many hosts), and an image of your own must run systemd with sshd"
}

func inotifyInstances() (int, bool) {
	b, err := os.ReadFile("/proc/sys/fs/inotify/max_user_instances")
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return n, err == nil
}

// logTail is the container's last few output lines (colours taken out), on one line.
func logTail(ctx context.Context, cli *client.Client, id string, tty bool) string {
	rc, err := cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "3"})
	if err != nil {
		return ""
	}
	defer rc.Close()
	var out bytes.Buffer
	if tty { // one raw stream
		_, _ = io.Copy(&out, io.LimitReader(rc, 64<<10))
	} else if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil && out.Len() == 0 {
		return ""
	}
	var lines []string // a restarted container repeats itself: each line once
	seen := map[string]bool{}
	for _, l := range strings.Split(out.String(), "\n") {
		if l = drivers.PlainLine(l); l != "" && !seen[l] {
			seen[l] = true
			lines = append(lines, l)
		}
	}
	s := strings.Join(lines, " / ")
	if len(s) > 300 {
		s = "…" + s[len(s)-300:]
	}
	return s
}

// hostKeyFiles are where the built-in image's sshd keeps its public keys (made at first boot,
// before sshd listens), and where Debian's keeps them in other images.
var hostKeyFiles = []string{"/etc/ssh/ssh_host_ed25519_key.pub", "/etc/ssh/ssh_host_ecdsa_key.pub", "/etc/ssh/ssh_host_rsa_key.pub"}

// HostKeys reads the host's SSH public keys through the engine (drivers.HostKeyReader), once
// its sshd accepts connections (its keys are made before it listens): machine pins them before
// its first SSH connection.
func (d *Driver) HostKeys(ctx context.Context) ([]string, error) {
	ep, err := d.Endpoint(ctx)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(ep.IP, strconv.Itoa(ep.SSHPort))
	for {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if err := wait.Sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, fmt.Errorf("waiting for sshd at %s: %w", addr, err)
		}
	}
	cli, err := d.Client()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	var keys []string
	for _, p := range hostKeyFiles {
		rc, _, err := cli.CopyFromContainer(ctx, d.ContainerID, p)
		if err != nil {
			continue // not this type
		}
		tr := tar.NewReader(rc)
		if _, err := tr.Next(); err == nil {
			b, _ := io.ReadAll(io.LimitReader(tr, 16<<10))
			if k := strings.TrimSpace(string(b)); k != "" {
				keys = append(keys, k)
			}
		}
		rc.Close()
	}
	return keys, nil
}

// neighbourPath is the kernel's limit on its neighbour (ARP) table, shared by every network
// namespace of the machine.
var neighbourPath = "/proc/sys/net/ipv4/neigh/default/gc_thresh3"

// NeighbourWarning is a warning when hosts container hosts (with their nested bridges and
// overlay networks: about 24 neighbour entries each, measured) would overflow the local kernel's
// neighbour table; "" when they fit or the limit cannot be read. Past it, hosts drop off the
// network at random ("neighbor table overflow" in dmesg).
func NeighbourWarning(hosts int) string {
	b, err := os.ReadFile(neighbourPath)
	if err != nil {
		return ""
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || hosts*24 <= limit {
		return ""
	}
	return fmt.Sprintf("%d container hosts may overflow this machine's neighbour table (net.ipv4.neigh.default.gc_thresh3 = %d): hosts would then drop off the network; raise it first: sysctl -w net.ipv4.neigh.default.gc_thresh1=4096 net.ipv4.neigh.default.gc_thresh2=16384 net.ipv4.neigh.default.gc_thresh3=32768", hosts, limit)
}

// What one container host takes of the machine whose engine runs it, measured (docs/performance.md):
// memory while a swarm forms and at rest with it (70 to 77 MiB a node from 10 to 100 nodes),
// and inotify instances (6: its systemd's and its dockerd's).
const (
	HostMemoryMiB      = 80
	HostInotifyHandles = 8
)

// meminfoPath and inotifyPath are read for CapacityError (tests point them elsewhere).
var (
	meminfoPath = "/proc/meminfo"
	inotifyPath = "/proc/sys/fs/inotify/max_user_instances"
)

// CapacityError says, with the numbers, when this machine cannot hold hosts more container hosts
// (their memory against what is available now, their inotify instances against the per-user
// limit, of which running hosts already use their share); nil when they fit or the limits cannot
// be read. It is meant for an engine on this machine.
func CapacityError(hosts, running int) error {
	if hosts <= 0 {
		return nil
	}
	if avail, ok := memAvailableMiB(); ok && hosts*HostMemoryMiB > avail {
		return fmt.Errorf("%d more container hosts need about %d MiB (%d MiB each while a swarm forms, measured), and this machine has %d MiB available: make fewer at once, free memory, or put some nodes on another driver", hosts, hosts*HostMemoryMiB, HostMemoryMiB, avail)
	}
	if b, err := os.ReadFile(inotifyPath); err == nil {
		if limit, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && (hosts+running)*HostInotifyHandles > limit {
			return fmt.Errorf("%d container hosts (%d of them new) need about %d inotify instances (%d each), more than this machine allows a user (fs.inotify.max_user_instances = %d): their systemd would stop as they boot; raise it first: sysctl -w fs.inotify.max_user_instances=8192", hosts+running, hosts, (hosts+running)*HostInotifyHandles, HostInotifyHandles, limit)
		}
	}
	return nil
}

func memAvailableMiB() (int, bool) {
	b, err := os.ReadFile(meminfoPath)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				if kb, err := strconv.Atoi(f[0]); err == nil {
					return kb / 1024, true
				}
			}
		}
	}
	return 0, false
}
