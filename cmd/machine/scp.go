package main

import (
	"errors"

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
				return a.Rsync(c.Context, srcs, dst, c.Bool("quiet"), stdio(c))
			}
			opts := machine.CopyOptions{Recursive: c.Bool("recursive")}
			wait := func() {}
			if !c.Bool("quiet") {
				opts.Progress, wait = bars.ByteBar(c.App.ErrWriter, 1<<20)
			}
			err = a.Copy(c.Context, srcs, dst, opts)
			wait()
			return err
		},
	}
}
