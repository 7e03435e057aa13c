package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/swarm"
)

func upgradeCommand() *cli.Command {
	cmd := atOnce("upgrade", "Upgrade a machine to the latest version of Docker (its host's packages); --swarm: a swarm's nodes one at a time",
		[]cli.Flag{&cli.BoolFlag{Name: "swarm", Usage: "NAME is a manager: upgrade every node of its swarm, one at a time (drained, upgraded, Ready, back), managers keeping quorum"}}, "",
		func(c *cli.Context, h *machine.Host) (string, error) {
			res, err := h.Upgrade(c.Context, progress(c, h.Name))
			return machine.UpgradeSummary(res), err
		})
	each := cmd.Action
	cmd.Action = func(c *cli.Context) error {
		if !c.Bool("swarm") {
			return each(c)
		}
		ns, err := names(c)
		if err != nil {
			return err
		} else if len(ns) != 1 {
			return fmt.Errorf("%w: %s upgrade --swarm MANAGER", errExpectedOne, c.App.Name)
		}
		a, err := api(c)
		if err != nil {
			return err
		}
		_, err = swarm.RollingUpgrade(c.Context, a, ns[0], swarm.UpgradeOptions{Progress: nodeProgress(c)})
		return err
	}
	return cmd
}

func mountCommand() *cli.Command {
	return &cli.Command{Name: "mount", Usage: "Mount or unmount a directory from a machine with SSHFS", ArgsUsage: "MACHINE:PATH MOUNTPOINT",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "unmount", Aliases: []string{"u"}, Usage: "Unmount instead of mount"}},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return fmt.Errorf("usage: %s mount [-u] MACHINE:PATH MOUNTPOINT", c.App.Name)
			}
			src, dst := machine.ParseCopySpec(c.Args().Get(0)), c.Args().Get(1)
			if src.Machine == "" {
				return fmt.Errorf("%q names no machine: use MACHINE:PATH", c.Args().Get(0))
			}
			if c.Bool("unmount") {
				return machine.Unmount(c.Context, dst, stdio(c))
			}
			a, err := api(c)
			if err != nil {
				return err
			}
			h, err := a.Load(src.Machine)
			if err != nil {
				return err
			}
			return h.Mount(c.Context, src.Path, dst, stdio(c))
		}}
}
