package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/machine-tools/machine/internal/scp"
	"github.com/machine-tools/machine/machine"
)

func scpCommand() *cli.Command {
	return &cli.Command{
		Name:      "scp",
		Usage:     "Copy files between machines and this computer (SFTP; machine to machine streams through here)",
		ArgsUsage: "[MACHINE:]SRC... [MACHINE:]DST",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "recursive", Aliases: []string{"r"}, Usage: "copy folders"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bars"},
			&cli.BoolFlag{Name: "delta", Aliases: []string{"d"}, Usage: "send only the differences, with rsync over the machine's SSH settings"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 2 {
				return errors.New("usage: machine scp [-r] [MACHINE:]SRC... [MACHINE:]DST")
			}
			args := c.Args().Slice()
			dst := scp.ParseSpec(args[len(args)-1])
			var srcs []scp.Spec
			for _, a := range args[:len(args)-1] {
				srcs = append(srcs, scp.ParseSpec(a))
			}
			srcMachine := srcs[0].Machine
			for _, s := range srcs[1:] {
				if s.Machine != srcMachine {
					return errors.New("all sources must be on the same machine (or all local)")
				}
			}
			a, err := api(c)
			if err != nil {
				return err
			}
			if c.Bool("delta") {
				return rsyncCopy(c, a, srcs, dst)
			}
			open := func(machine string) (scp.FS, func(), error) {
				if machine == "" {
					return scp.Local{}, func() {}, nil
				}
				h, err := a.Load(machine)
				if err != nil {
					return nil, nil, err
				}
				ctx, cancel := context.WithTimeout(c.Context, 20*time.Second)
				cl, err := h.Dial(ctx)
				cancel()
				if err != nil {
					return nil, nil, err
				}
				s, err := cl.SFTP()
				if err != nil {
					cl.Close()
					return nil, nil, err
				}
				return scp.Remote{Machine: machine, C: s}, func() { cl.Close() }, nil
			}
			srcFS, closeSrc, err := open(srcMachine)
			if err != nil {
				return err
			}
			defer closeSrc()
			dstFS, closeDst, err := open(dst.Machine)
			if err != nil {
				return err
			}
			defer closeDst()
			var paths []string
			for _, s := range srcs {
				paths = append(paths, s.Path)
			}
			opts := scp.Options{Recursive: c.Bool("recursive")}
			var bars *mpb.Progress
			if !c.Bool("quiet") && term.IsTerminal(int(os.Stderr.Fd())) {
				bars = mpb.New(mpb.WithOutput(os.Stderr), mpb.WithWidth(40))
				opts.Progress = func(name string, size int64, r io.Reader) io.Reader {
					if size < 1<<20 {
						return r
					}
					bar := bars.AddBar(size, mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR)),
						mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f"), decor.Percentage(decor.WCSyncSpace)))
					pr, err := bar.ProxyReader(r)
					if err != nil {
						return r
					}
					return pr
				}
			}
			err = scp.Copy(srcFS, paths, dstFS, dstPath(dst), opts)
			if bars != nil {
				bars.Wait()
			}
			return err
		},
	}
}

func dstPath(s scp.Spec) string {
	if s.Path == "" {
		return "."
	}
	return s.Path
}

// rsyncCopy runs rsync with the machine's key, port and pinned host key.
func rsyncCopy(c *cli.Context, a *machine.API, srcs []scp.Spec, dst scp.Spec) error {
	if _, err := exec.LookPath("rsync"); err != nil {
		return errors.New("-d needs rsync on this computer and on the machine: install it (apt-get install rsync), or copy without -d")
	}
	machine := dst.Machine
	if srcs[0].Machine != "" {
		if machine != "" {
			return errors.New("-d copies between this computer and one machine; copy machine to machine without -d")
		}
		machine = srcs[0].Machine
	}
	if machine == "" {
		return errors.New("-d needs a machine on one side")
	}
	h, err := a.Load(machine)
	if err != nil {
		return err
	}
	cfg := h.SSHConfig()
	sshCmd := []string{"ssh", "-p", strconv.Itoa(cfg.Port), "-o", "UserKnownHostsFile=\"" + cfg.KnownHosts + "\"", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"}
	if cfg.KeyPath != "" {
		sshCmd = append(sshCmd, "-i", cfg.KeyPath, "-o", "IdentitiesOnly=yes")
	}
	// Ask for the type of key that is pinned, or OpenSSH may ask for another and refuse it.
	if b, err := os.ReadFile(cfg.KnownHosts); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 2 {
			algs := f[1]
			if algs == "ssh-rsa" {
				algs = "rsa-sha2-512,rsa-sha2-256,ssh-rsa"
			}
			sshCmd = append(sshCmd, "-o", "HostKeyAlgorithms="+algs)
		}
	}
	argv := []string{"-a", "--partial", "-e", strings.Join(quoteAll(sshCmd), " ")}
	if c.Bool("quiet") {
		argv = append(argv, "-q")
	}
	remote := func(p string) string { return cfg.User + "@" + cfg.Host + ":" + p }
	for _, s := range srcs {
		if s.Machine != "" {
			argv = append(argv, remote(s.Path))
		} else {
			argv = append(argv, s.Path)
		}
	}
	if dst.Machine != "" {
		argv = append(argv, remote(dstPath(dst)))
	} else {
		argv = append(argv, dst.Path)
	}
	cmd := exec.CommandContext(c.Context, "rsync", argv...)
	cmd.Stdout, cmd.Stderr = c.App.Writer, c.App.ErrWriter
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("rsync to %s failed (%v): is rsync installed on the machine? (machine ssh %s apt-get install -y rsync)", machine, err, machine)
	}
	return nil
}

func quoteAll(argv []string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if strings.ContainsAny(a, " '\"") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return out
}
