package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/urfave/cli/v2"

	bars "github.com/machine-tools/machine/internal/progress"
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
			dst := machine.ParseCopySpec(args[len(args)-1])
			var srcs []machine.CopySpec
			for _, a := range args[:len(args)-1] {
				srcs = append(srcs, machine.ParseCopySpec(a))
			}
			a, err := api(c)
			if err != nil {
				return err
			}
			if c.Bool("delta") {
				return rsyncCopy(c, a, srcs, dst)
			}
			opts := machine.CopyOptions{Recursive: c.Bool("recursive")}
			wait := func() {}
			if !c.Bool("quiet") {
				if opts.Progress, wait = bars.ByteBar(os.Stderr, 1<<20); wait == nil {
					wait = func() {}
				}
			}
			err = a.Copy(c.Context, srcs, dst, opts)
			wait()
			return err
		},
	}
}

// rsyncCopy runs rsync with the machine's key, port and pinned host key.
func rsyncCopy(c *cli.Context, a *machine.API, srcs []machine.CopySpec, dst machine.CopySpec) error {
	if _, err := exec.LookPath("rsync"); err != nil {
		return errors.New("-d needs rsync on this computer and on the machine: install it (apt-get install rsync), or copy without -d")
	}
	name, argv, err := a.RsyncArgv(srcs, dst, c.Bool("quiet"))
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(c.Context, "rsync", argv...)
	cmd.Stdout, cmd.Stderr = c.App.Writer, c.App.ErrWriter
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("rsync to %s failed (%v): is rsync installed on the machine? (machine ssh %s apt-get install -y rsync)", name, err, name)
	}
	return nil
}
