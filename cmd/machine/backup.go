package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/machine-tools/machine/swarm"
)

func swarmBackupCommand() *cli.Command {
	return &cli.Command{
		Name: "backup", Usage: "Copy a swarm's state from one manager, without losing quorum, into a file (0600: it holds the swarm's CA and raft keys)",
		Flags: []cli.Flag{fileFlag,
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "the backup file (default: CLUSTER-TIME.swarm-backup here)"},
			&cli.StringFlag{Name: "from", Usage: "the manager to copy (default: one whose stop keeps quorum, not the leader)"},
		},
		Action: func(c *cli.Context) error {
			cl, a, err := loadClusterAPI(c)
			if err != nil {
				return err
			}
			out := c.String("output")
			if out == "" {
				out = fmt.Sprintf("%s-%s.swarm-backup", cl.Name, time.Now().UTC().Format("20060102T150405Z"))
			}
			info, err := swarm.Backup(c.Context, a, cl, out, swarm.BackupOptions{
				From: c.String("from"), Progress: nodeProgress(c),
				Warn: func(msg string) { fmt.Fprintf(c.App.ErrWriter, "warning: %s\n", msg) },
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "%s: swarm %s from %s (%d managers, %d workers; %d services, %d secrets, %d configs, %d networks); %s was out for %s\n",
				out, info.SwarmID, info.Machine, len(info.Managers), len(info.Workers), info.Services, info.Secrets, info.Configs, info.Networks, info.Machine, info.Out.Round(100*time.Millisecond))
			if info.Autolock {
				fmt.Fprintf(c.App.ErrWriter, "the swarm has autolock on: its unlock key is in %s (0600): store it apart from the backup (whoever holds both holds the swarm); restore reads it from there or from --unlock-key-stdin\n", swarm.UnlockKeyPath(out))
			}
			return nil
		},
	}
}

func swarmRestoreCommand() *cli.Command {
	return &cli.Command{
		Name: "restore", Usage: "Bring a swarm back from a backup on the cluster file's hosts (made if missing), then the rest of the file up", ArgsUsage: "BACKUP",
		Flags: []cli.Flag{fileFlag, parallelFlag,
			&cli.StringFlag{Name: "onto", Usage: "the manager to restore on (default: the file's first)"},
			&cli.BoolFlag{Name: "force", Usage: "also over a swarm that is up (what it holds is lost)"},
			&cli.BoolFlag{Name: "unlock-key-stdin", Usage: "read the swarm's unlock key from standard input (a backup of a swarm with autolock)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("restore needs the backup file: machine swarm restore -f cluster.yml BACKUP")
			}
			cl, a, err := loadClusterAPI(c)
			if err != nil {
				return err
			}
			o := swarm.RestoreOptions{Onto: c.String("onto"), Force: c.Bool("force"), Up: upOptions(c)}
			if c.Bool("unlock-key-stdin") {
				b, err := io.ReadAll(io.LimitReader(c.App.Reader, 4096))
				if err != nil {
					return err
				}
				o.UnlockKey = strings.TrimSpace(string(b))
			}
			if err := swarm.Restore(c.Context, a, cl, c.Args().First(), o); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "cluster %s is restored from %s and up: %d manager(s), %d worker(s)\n", cl.Name, c.Args().First(), len(cl.Managers()), len(cl.Workers()))
			return nil
		},
	}
}

func swarmRecoverCommand() *cli.Command {
	return &cli.Command{
		Name: "recover", Usage: "Quorum lost: force a new cluster on the best surviving manager, then bring the file's managers and workers back",
		Flags: []cli.Flag{fileFlag, parallelFlag},
		Action: func(c *cli.Context) error {
			cl, a, err := loadClusterAPI(c)
			if err != nil {
				return err
			}
			if err := swarm.Recover(c.Context, a, cl, upOptions(c)); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "cluster %s is recovered and up: %d manager(s), %d worker(s)\n", cl.Name, len(cl.Managers()), len(cl.Workers()))
			return nil
		},
	}
}
