package machine

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/machine-tools/machine/internal/runner"
	"github.com/machine-tools/machine/internal/scp"
	"github.com/machine-tools/machine/internal/sshclient"
)

// CopySpec is one side of a copy: a path on this computer (Machine "") or on a machine.
type CopySpec = scp.Spec

// ParseCopySpec reads MACHINE:PATH (or a local PATH), as `machine scp` takes them.
func ParseCopySpec(s string) CopySpec { return scp.ParseSpec(s) }

// CopyOptions tune Copy.
type CopyOptions = scp.Options

// Copy copies srcs (all on one machine, or all local) to dst over SFTP; machine to machine, the
// data streams through this computer.
func (a *API) Copy(ctx context.Context, srcs []CopySpec, dst CopySpec, o CopyOptions) error {
	if err := oneSource(srcs); err != nil {
		return err
	}
	open := func(spec CopySpec) (scp.FS, func(), error) {
		name := spec.Machine
		if name == "" {
			return scp.Local{}, func() {}, nil
		}
		h, err := a.Load(name)
		if err != nil {
			return nil, nil, err
		}
		if spec.User != "" {
			h.SSH.User = spec.User // USER@MACHINE: that user, with the machine's key (not saved)
		}
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		cl, err := h.Dial(dctx)
		cancel()
		if err != nil {
			return nil, nil, err
		}
		s, err := cl.SFTP()
		if err != nil {
			cl.Close()
			return nil, nil, err
		}
		return scp.Remote{Machine: name, C: s}, func() { cl.Close() }, nil
	}
	srcFS, closeSrc, err := open(srcs[0])
	if err != nil {
		return err
	}
	defer closeSrc()
	dstFS, closeDst, err := open(dst)
	if err != nil {
		return err
	}
	defer closeDst()
	var paths []string
	for _, s := range srcs {
		paths = append(paths, s.Path)
	}
	o.Context = ctx
	return scp.Copy(srcFS, paths, dstFS, copyDst(dst), o)
}

func oneSource(srcs []CopySpec) error {
	if len(srcs) == 0 {
		return errors.New("nothing to copy")
	}
	for _, s := range srcs[1:] {
		if s.Machine != srcs[0].Machine {
			return errors.New("all sources must be on the same machine (or all local)")
		}
	}
	return nil
}

func copyDst(s CopySpec) string {
	if s.Path == "" {
		return "."
	}
	return s.Path
}

// OpenSSHOptions are the ssh(1) options that reach the machine as securely as machine's own
// client: its key only, its port, and its pinned host key checked strictly; through its jump
// hosts, each checked the same way, by a ProxyCommand (ssh -W) per hop.
func (h *Host) OpenSSHOptions() []string {
	cfg := h.SSHConfig()
	opts := openSSHOptions(cfg, cfg.KnownHosts)
	if len(cfg.Jumps) > 0 {
		opts = append(opts, "-o", "ProxyCommand="+proxyCommand(cfg.Jumps, cfg.KnownHosts, cfg.Addr()))
	}
	return opts
}

// openSSHOptions: the port, the pinned key of c's host (in knownHosts) checked strictly, c's key
// only. The known_hosts path is quoted: OpenSSH splits that option's value at spaces.
func openSSHOptions(c sshclient.Config, knownHosts string) []string {
	opts := []string{"-p", strconv.Itoa(c.Port), "-o", "UserKnownHostsFile=\"" + knownHosts + "\"", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"}
	if c.KeyPath != "" {
		opts = append(opts, "-i", c.KeyPath, "-o", "IdentitiesOnly=yes")
	}
	// Ask for the type of key that is pinned, or OpenSSH may ask for another and refuse it.
	if algs := sshclient.PinnedAlgorithms(knownHosts, c.Addr()); len(algs) > 0 {
		opts = append(opts, "-o", "HostKeyAlgorithms="+strings.Join(algs, ","))
	}
	return opts
}

// proxyCommand is the ssh -W command (run by OpenSSH through sh) that reaches addr from the last
// of hops, itself reached through the ones before it.
func proxyCommand(hops []sshclient.Config, knownHosts, addr string) string {
	last := hops[len(hops)-1]
	argv := append([]string{"ssh", "-F", "/dev/null"}, openSSHOptions(last, knownHosts)...)
	if len(hops) > 1 {
		argv = append(argv, "-o", "ProxyCommand="+proxyCommand(hops[:len(hops)-1], knownHosts, last.Addr()))
	}
	return runner.Quote(append(argv, "-W", addr, last.User+"@"+last.Host)...)
}

// SSHDestination is user@host for ssh(1).
func (h *Host) SSHDestination() string { return h.SSH.User + "@" + h.SSH.Host }

// sshTarget is user@host for scp-like HOST:PATH arguments: an IPv6 address in brackets.
func (h *Host) sshTarget() string {
	if strings.Contains(h.SSH.Host, ":") {
		return h.SSH.User + "@[" + h.SSH.Host + "]"
	}
	return h.SSHDestination()
}

// RsyncArgv plans an rsync between this computer and one machine, over the machine's key, port
// and pinned host key (OpenSSH with StrictHostKeyChecking=yes); it returns the machine's name
// and rsync's arguments.
func (a *API) RsyncArgv(srcs []CopySpec, dst CopySpec, quiet bool) (string, []string, error) {
	if err := oneSource(srcs); err != nil {
		return "", nil, err
	}
	name := dst.Machine
	if srcs[0].Machine != "" {
		if name != "" {
			return "", nil, errors.New("-d copies between this computer and one machine; copy machine to machine without -d")
		}
		name = srcs[0].Machine
	}
	if name == "" {
		return "", nil, errors.New("-d needs a machine on one side")
	}
	h, err := a.Load(name)
	if err != nil {
		return "", nil, err
	}
	if u := srcs[0].User + dst.User; u != "" {
		h.SSH.User = u
	}
	sshCmd := append([]string{"ssh"}, h.OpenSSHOptions()...)
	argv := []string{"-a", "--partial", "-e", strings.Join(quoteAll(sshCmd), " ")}
	if quiet {
		argv = append(argv, "-q")
	}
	remote := func(p string) string { return h.sshTarget() + ":" + p }
	for _, s := range srcs {
		if s.Machine != "" {
			argv = append(argv, remote(s.Path))
		} else {
			argv = append(argv, s.Path)
		}
	}
	if dst.Machine != "" {
		argv = append(argv, remote(copyDst(dst)))
	} else {
		argv = append(argv, dst.Path)
	}
	return name, argv, nil
}

func quoteAll(argv []string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if strings.ContainsAny(a, " '\"") { // rsync's -e quoting: a doubled quote is one quote
			a = "'" + strings.ReplaceAll(a, "'", "''") + "'"
		}
		out[i] = a
	}
	return out
}

// SSHCommand is OpenSSH's ssh(1) run with the machine's settings (OpenSSHOptions), then the
// user's args: ssh options and a command.
func (h *Host) SSHCommand(ctx context.Context, args ...string) (*exec.Cmd, error) {
	bin, err := exec.LookPath("ssh")
	if err != nil {
		return nil, fmt.Errorf("ssh(1) options need OpenSSH's ssh on PATH: install openssh-client, or pass the command after `--`")
	}
	argv := append([]string{"-F", "/dev/null"}, h.OpenSSHOptions()...)
	return exec.CommandContext(ctx, bin, append(append(argv, h.SSHDestination()), args...)...), nil
}

// SSHFSArgv are sshfs's arguments that mount the machine's path at mountpoint over the machine's
// key and pinned host key, checked strictly (sshfs takes ssh(1)'s -o options).
func (h *Host) SSHFSArgv(path, mountpoint string) []string {
	argv := []string{h.sshTarget() + ":" + path, mountpoint}
	opts := h.OpenSSHOptions()
	for i := 0; i+1 < len(opts); i += 2 {
		switch opts[i] {
		case "-p":
			argv = append(argv, "-p", opts[i+1])
		case "-i":
			argv = append(argv, "-o", "IdentityFile=\""+opts[i+1]+"\"") // quoted: OpenSSH splits at spaces
		case "-o":
			// FUSE splits -o at commas unless they are escaped.
			argv = append(argv, "-o", strings.NewReplacer(`\`, `\\`, ",", `\,`).Replace(opts[i+1]))
		}
	}
	return argv
}

// OpenSSHConfig is the machine as ssh_config Host blocks (`machine ssh-config`): one per jump
// host (NAME-jump-1, ...) and one named after the machine, with its key, its pinned known_hosts
// checked strictly, and ProxyJump through the blocks before it. With them in ~/.ssh/config,
// plain ssh, scp, rsync and docker's ssh:// reach the machine as `machine ssh` does.
func (h *Host) OpenSSHConfig() string {
	cfg := h.SSHConfig()
	var b strings.Builder
	block := func(name string, c sshclient.Config, jump string) {
		fmt.Fprintf(&b, "Host %s\n    HostName %s\n    Port %d\n    User %s\n", name, c.Host, c.Port, c.User)
		if c.KeyPath != "" {
			fmt.Fprintf(&b, "    IdentityFile \"%s\"\n    IdentitiesOnly yes\n", c.KeyPath)
		}
		fmt.Fprintf(&b, "    UserKnownHostsFile \"%s\"\n    StrictHostKeyChecking yes\n", cfg.KnownHosts)
		if algs := sshclient.PinnedAlgorithms(cfg.KnownHosts, c.Addr()); len(algs) > 0 {
			fmt.Fprintf(&b, "    HostKeyAlgorithms %s\n", strings.Join(algs, ","))
		}
		if jump != "" {
			fmt.Fprintf(&b, "    ProxyJump %s\n", jump)
		}
		b.WriteString("\n")
	}
	jump := ""
	for i, j := range cfg.Jumps {
		name := fmt.Sprintf("%s-jump-%d", h.Name, i+1)
		block(name, j, jump)
		jump = name
	}
	block(h.Name, cfg, jump)
	return b.String()
}
