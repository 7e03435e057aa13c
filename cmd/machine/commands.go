package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/crypto/ssh"

	"github.com/machine-tools/machine/drivers/container"
	"github.com/machine-tools/machine/internal/cliflags"
	"github.com/machine-tools/machine/internal/format"
	"github.com/machine-tools/machine/internal/store"
	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/swarm"
)

// commands are machine's commands, in the order its help lists them.
func commands() []*cli.Command {
	return []*cli.Command{
		createCommand(),
		envCommand(),
		lsCommand(),
		sshCommand(),
		eachMachine("ssh-config", "Print OpenSSH Host blocks that reach machines as `machine ssh` does (for ~/.ssh/config)", func(c *cli.Context, h *machine.Host) error {
			_, err := fmt.Fprint(c.App.Writer, h.OpenSSHConfig())
			return err
		}),
		oneMachine("tunnel", "Forward 127.0.0.1 to the engine of a machine behind jump hosts, until Ctrl-C (machine env points there)", nil, func(c *cli.Context, h *machine.Host) error {
			l, err := h.ListenTunnel()
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "(%s) %s forwards to %s through %d jump host(s): eval \"$(%s env %s)\"; Ctrl-C ends it\n",
				h.Name, h.DockerHost(), h.URL(), len(h.SSH.Jumps), c.App.Name, h.Name)
			return h.Tunnel(c.Context, l)
		}),
		scpCommand(),
		eachMachine("ip", "Print a machine's IP address", func(c *cli.Context, h *machine.Host) error {
			if ip, changed := h.AddressChanged(c.Context); changed {
				return say(c, "%s", ip) // as docker-machine: the driver's answer (the record follows at the next connection)
			}
			return say(c, "%s", h.IP())
		}),
		oneMachine("url", "Print a machine's engine URL", nil, func(c *cli.Context, h *machine.Host) error {
			if err := h.Running(c.Context); err != nil {
				return err
			}
			if err := h.Refresh(c.Context, progress(c, h.Name)); err != nil {
				return err
			}
			return say(c, "%s", h.URL())
		}),
		// GitLab's docker-machine fork relabels cloud instances; its Runner calls this and reads
		// "driver does not support labels" as a driver that cannot.
		oneMachine("update-labels", "Change the labels of a machine's host (no driver here can: the words say so)",
			[]cli.Flag{&cli.StringSliceFlag{Name: "label", Usage: "key=value (repeatable)"}}, func(c *cli.Context, h *machine.Host) error {
				return fmt.Errorf("the %s driver does not support labels: its host keeps what it was made with (engine labels: --engine-label at create, or engine.label in a cluster file with swarm up)", h.DriverName)
			}),
		oneMachine("status", "Print a machine's state", nil, func(c *cli.Context, h *machine.Host) error {
			if h.Driver == nil {
				return say(c, "Error")
			}
			st, err := h.Driver.State(c.Context)
			if err != nil {
				return err
			}
			return say(c, "%s", st)
		}),
		oneMachine("inspect", "Print a machine's details as JSON", []cli.Flag{&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "a Go template over the details"}}, func(c *cli.Context, h *machine.Host) error {
			if f := c.String("format"); f != "" {
				return format.Template(c.Context, c.App.Writer, f, h.Inspect(c.Context))
			}
			return format.JSON(c.App.Writer, h.Inspect(c.Context), "    ")
		}),
		oneMachine("config", "Print the docker CLI flags that reach a machine",
			[]cli.Flag{cliflags.Refused("swarm", true, "", "it showed classic swarm's master, which Docker no longer has; swarm-mode managers are reached like any machine")},
			func(c *cli.Context, h *machine.Host) error {
				return say(c, "--tlsverify\n--tlscacert=%q\n--tlscert=%q\n--tlskey=%q\n-H=%s", h.CAPath(), h.CertPath(), h.KeyPath(), h.URL())
			}),
		atOnce("provision", "Provision machines again (changes nothing on a good host)", nil, "", func(c *cli.Context, h *machine.Host) (string, error) {
			r, err := h.Reprovision(c.Context, machine.ProvisionOptions{Progress: progress(c, h.Name)})
			return r.Summary(), err
		}),
		atOnce("regenerate-certs", "Issue new engine certificates and restart the engines",
			[]cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "Force rebuild and do not prompt"},
				cliflags.Refused("client-certs", true, "", "the store's CA and client certificate are shared by all its machines; to replace them, make a new store (-s DIR) and import or re-create the machines")},
			"Regenerate TLS machine certs?  Warning: this is irreversible.",
			func(c *cli.Context, h *machine.Host) (string, error) {
				_, err := h.Reprovision(c.Context, machine.ProvisionOptions{ReissueCert: true, Progress: progress(c, h.Name)})
				return "new certificate issued; the engine restarted and answers over TLS", err
			}),
		oneMachine("trust-host-key", "Pin the SSH host key a machine offers now (after a rebuild)", nil, func(c *cli.Context, h *machine.Host) error {
			keys, err := h.TrustHostKey(c.Context)
			for _, k := range keys {
				say(c, "(%s) now trusting %s %s at %s", h.Name, k.Key.Type(), ssh.FingerprintSHA256(k.Key), k.Addr)
			}
			return err
		}),
		setAddressCommand(),
		rmCommand(),
		lifecycleCommand(machine.OpStart, "Start machines"),
		lifecycleCommand(machine.OpStop, "Stop machines"),
		lifecycleCommand(machine.OpRestart, "Restart machines"),
		lifecycleCommand(machine.OpKill, "Kill (stop at once) machines"),
		upgradeCommand(),
		mountCommand(),
		swarmCommand(),
		pullCommand(),
		imageCommand(),
		versionCommand(),
		oneMachine("context", "Create or update a Docker context named after a machine (docker --context NAME ...)", nil, func(c *cli.Context, h *machine.Host) error {
			if err := h.WriteDockerContext(); err != nil {
				return err
			}
			return say(c, "Docker context %q points at %s: docker --context %s info", h.Name, h.URL(), h.Name)
		}),
		activeCommand(),
		completionCommand(),
		importCommand(),
		exportCommand(),
		importMachinesCommand(),
	}
}

// oneMachine is a command over the one machine its argument names (or "default").
func oneMachine(name, usage string, flags []cli.Flag, act func(c *cli.Context, h *machine.Host) error) *cli.Command {
	return &cli.Command{Name: name, Usage: usage, ArgsUsage: "NAME", Flags: flags,
		Action: func(c *cli.Context) error {
			h, err := loadOne(c)
			if err != nil {
				return err
			}
			return act(c, h)
		}}
}

// setAddressCommand gives a generic machine its host's new address: the host there must present
// the key pinned for it; its engine gets a certificate for the new address.
func setAddressCommand() *cli.Command {
	return &cli.Command{Name: "set-address", Usage: "Give a generic machine the address its host has now (the host must offer its pinned SSH key there; a new engine certificate)",
		ArgsUsage: "NAME ADDRESS",
		Action: withAPI(func(c *cli.Context, a *machine.API) error {
			if c.NArg() != 2 {
				return fmt.Errorf("give the machine and its host's new address: machine set-address NAME ADDRESS (got %d argument(s))", c.NArg())
			}
			h, err := a.Load(c.Args().Get(0))
			if err != nil {
				return err
			}
			old := h.IP()
			if _, err := h.SetAddress(c.Context, c.Args().Get(1), progress(c, h.Name)); err != nil {
				return err
			}
			return say(c, "(%s) moved from %s to %s: the same host (its pinned SSH key), a new engine certificate; docker over TLS answers at %s", h.Name, old, h.IP(), h.URL())
		})}
}

// loadOne is the command's one machine (oneName).
func loadOne(c *cli.Context) (*machine.Host, error) {
	name, err := oneName(c)
	if err != nil {
		return nil, err
	}
	a, err := api(c)
	if err != nil {
		return nil, err
	}
	return a.Load(name)
}

// eachMachine is a command over the machines named (or "default"), one after the other, that
// stops at the first failure.
func eachMachine(name, usage string, act func(c *cli.Context, h *machine.Host) error) *cli.Command {
	return &cli.Command{Name: name, Usage: usage, ArgsUsage: "NAME...",
		Action: func(c *cli.Context) error {
			ns, err := names(c)
			if err != nil {
				return err
			}
			a, err := api(c)
			for _, n := range ns {
				var h *machine.Host
				if err == nil {
					h, err = a.Load(n)
				}
				if err == nil {
					err = act(c, h)
				}
				if err != nil {
					return err
				}
			}
			return nil
		}}
}

// atOnce is a command over the machines named (or "default"), all at once, with a line per
// machine (forEach); with a question, only after a yes (or --force).
func atOnce(name, usage string, flags []cli.Flag, question string, act func(c *cli.Context, h *machine.Host) (string, error)) *cli.Command {
	return &cli.Command{Name: name, Usage: usage, ArgsUsage: "NAME...", Flags: flags,
		Action: func(c *cli.Context) error {
			ns, err := names(c)
			if err != nil {
				return err
			}
			if question != "" && !c.Bool("force") && !confirm(c, question) {
				return nil // declined: nothing done (docker-machine exits 0 too)
			}
			return forEach(c, ns, name, func(_ context.Context, h *machine.Host) (string, error) { return act(c, h) })
		}}
}

// say prints one line of a command's result.
func say(c *cli.Context, format string, a ...any) error {
	_, err := fmt.Fprintf(c.App.Writer, format+"\n", a...)
	return err
}

// forEach runs f for every name at once and reports per machine; it fails if any failed.
func forEach(c *cli.Context, ns []string, verb string, f func(ctx context.Context, h *machine.Host) (string, error)) error {
	a, err := api(c)
	if err != nil {
		return err
	}
	return report(c, verb, a.Each(c.Context, ns, f))
}

// report prints a line per machine: its note, or (with several) its error; it fails if any failed.
func report(c *cli.Context, verb string, res []machine.Result) error {
	var failed []string
	for _, r := range res {
		switch {
		case r.Err != nil && len(res) == 1: // one machine's error is the command's, printed once
			return r.Err
		case r.Err != nil:
			fmt.Fprintf(c.App.ErrWriter, "(%s) %s failed: %v\n", r.Name, verb, r.Err)
			failed = append(failed, r.Name)
		case r.Note != "":
			fmt.Fprintf(c.App.Writer, "(%s) %s\n", r.Name, r.Note)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s failed for %s", verb, strings.Join(failed, ", "))
	}
	return nil
}

// confirm asks on standard output, as docker-machine did; an answer starting with y is a yes.
func confirm(c *cli.Context, question string) bool {
	fmt.Fprintf(c.App.Writer, "%s (y/n): ", question)
	line, _ := bufio.NewReader(c.App.Reader).ReadString('\n')
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(line)), "y")
}

func rmCommand() *cli.Command {
	return &cli.Command{Name: "rm", Usage: "Remove machines and their hosts", ArgsUsage: "NAME...",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "Remove local configuration even if machine cannot be removed, also implies an automatic yes (-y)"},
			&cli.BoolFlag{Name: "y", Usage: "Assumes automatic yes to proceed with remove, without prompting further user confirmation"},
		},
		Action: func(c *cli.Context) error {
			ns, err := argNames(c)
			if err != nil {
				return err
			}
			a, err := api(c)
			if err != nil {
				return err
			}
			force := c.Bool("force")
			// docker-machine's dialogue, on standard output.
			fmt.Fprintf(c.App.Writer, "About to remove %s\n", strings.Join(ns, ", "))
			fmt.Fprintln(c.App.Writer, "WARNING: This action will delete both local reference and remote instance.")
			if !c.Bool("y") && !force && !confirm(c, "Are you sure?") {
				return nil // declined: nothing removed, and no error (as docker-machine)
			}
			var failed []string
			var last error
			// Swarm members also leave their swarms' lists (through a manager that stays).
			removed, notes := swarm.RemoveMachines(c.Context, a, ns, force)
			for _, r := range removed {
				switch {
				case r.Err != nil && force && errors.As(r.Err, new(*store.NotFoundError)):
					fmt.Fprintf(c.App.ErrWriter, "Error removing host %q: %v\n", r.Name, r.Err) // nothing to remove: no failure with -f
				case r.Err != nil:
					failed, last = append(failed, r.Name), fmt.Errorf("Error removing host %q: %w", r.Name, r.Err)
					if len(ns) > 1 {
						fmt.Fprintln(c.App.ErrWriter, last)
					}
				case r.Context:
					say(c, "Successfully removed %s\n(%s) its Docker context was removed too", r.Name, r.Name)
				default:
					say(c, "Successfully removed %s", r.Name)
				}
			}
			for _, n := range notes {
				fmt.Fprintln(c.App.ErrWriter, n)
			}
			// Whatever could not be removed is a failure, with -f too (which removes the records).
			switch {
			case len(failed) == 0:
				return nil
			case len(ns) == 1:
				return last
			case force:
				return fmt.Errorf("rm -f could not remove all of %s", strings.Join(failed, ", "))
			}
			return fmt.Errorf("rm failed for %s (-f removes their records anyway)", strings.Join(failed, ", "))
		}}
}

func lifecycleCommand(op machine.Op, usage string) *cli.Command {
	return atOnce(string(op), usage, nil, "", func(c *cli.Context, h *machine.Host) (string, error) {
		out, err := h.Do(c.Context, op, progress(c, h.Name))
		if err != nil || (op != machine.OpStart && op != machine.OpRestart) {
			return out.String(), err
		}
		// A swarm manager with autolock comes back locked: unlocked with the kept key.
		msg, err := swarm.UnlockStarted(c.Context, h)
		if err != nil {
			return out.String(), fmt.Errorf("%s, but its swarm is locked: %w", out.String(), err)
		}
		if msg != "" {
			return out.String() + "; its swarm was locked (autolock): " + msg, nil
		}
		return out.String(), nil
	})
}

func imageCommand() *cli.Command {
	return &cli.Command{Name: "image", Usage: "Manage the container driver's host image",
		Subcommands: []*cli.Command{{
			Name:  "build",
			Usage: "Build the host image (reused while its recipe is unchanged)",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "force", Usage: "build even when the image exists"},
				&cli.StringFlag{Name: "variant", Value: container.VariantDocker, Usage: "docker (with the engine) or base"},
				&cli.StringFlag{Name: "release", Value: container.DefaultRelease, Usage: "the Debian release: " + strings.Join(container.ReleaseNames(), ", ")},
				&cli.StringFlag{Name: "container-engine-host", EnvVars: []string{"MACHINE_CONTAINER_ENGINE_HOST"}, Value: container.DefaultEngineHost},
			},
			Action: func(c *cli.Context) error {
				start := time.Now()
				tag, built, err := container.BuildImage(c.Context, c.String("container-engine-host"), c.String("variant"), c.String("release"), c.Bool("force"), progress(c, "image"))
				if err != nil {
					return err
				}
				if !built {
					return say(c, "%s (present; its recipe is unchanged)", tag)
				}
				return say(c, "%s (built in %s)", tag, time.Since(start).Round(time.Second))
			},
		}},
	}
}

func versionCommand() *cli.Command {
	cmd := oneMachine("version", "Print the version of machine, or of a machine's engine", nil, func(c *cli.Context, h *machine.Host) error {
		if err := h.Running(c.Context); err != nil {
			return err
		}
		return sayResult(c, "")(h.EngineVersion(c.Context))
	})
	act := cmd.Action
	cmd.ArgsUsage, cmd.Action = "[NAME]", func(c *cli.Context) error {
		if c.NArg() == 0 {
			return say(c, "%s version %s", c.App.Name, Version)
		}
		return act(c)
	}
	return cmd
}
