package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/template"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/crypto/ssh"

	"github.com/machine-tools/machine/drivers/container"
	"github.com/machine-tools/machine/internal/fanout"
	"github.com/machine-tools/machine/internal/store"
	"github.com/machine-tools/machine/machine"
)

func loadOne(c *cli.Context) (*machine.API, *machine.Host, error) {
	name, err := oneName(c)
	if err != nil {
		return nil, nil, err
	}
	a, err := api(c)
	if err != nil {
		return nil, nil, err
	}
	h, err := a.Load(name)
	return a, h, err
}

func ipCommand() *cli.Command {
	return &cli.Command{Name: "ip", Usage: "Print a machine's IP address", ArgsUsage: "NAME...",
		Action: func(c *cli.Context) error {
			ns, err := names(c)
			if err != nil {
				return err
			}
			a, err := api(c)
			if err != nil {
				return err
			}
			for _, n := range ns {
				h, err := a.Load(n)
				if err != nil {
					return err
				}
				fmt.Fprintln(c.App.Writer, h.IP())
			}
			return nil
		}}
}

func urlCommand() *cli.Command {
	return &cli.Command{Name: "url", Usage: "Print a machine's engine URL", ArgsUsage: "NAME",
		Action: func(c *cli.Context) error {
			_, h, err := loadOne(c)
			if err != nil {
				return err
			}
			if err := h.Running(c.Context); err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, h.URL())
			return nil
		}}
}

func statusCommand() *cli.Command {
	return &cli.Command{Name: "status", Usage: "Print a machine's state", ArgsUsage: "NAME",
		Action: func(c *cli.Context) error {
			_, h, err := loadOne(c)
			if err != nil {
				return err
			}
			if h.Driver == nil {
				fmt.Fprintln(c.App.Writer, "Error")
				return nil
			}
			st, err := h.Driver.State(c.Context)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, st)
			return nil
		}}
}

func inspectCommand() *cli.Command {
	return &cli.Command{Name: "inspect", Usage: "Print a machine's details as JSON", ArgsUsage: "NAME",
		Flags: []cli.Flag{&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "a Go template over the details"}},
		Action: func(c *cli.Context) error {
			_, h, err := loadOne(c)
			if err != nil {
				return err
			}
			rec := h.Inspect(c.Context)
			if f := c.String("format"); f != "" {
				return renderTemplate(c.App.Writer, f, rec)
			}
			enc := json.NewEncoder(c.App.Writer)
			enc.SetIndent("", "    ")
			return enc.Encode(rec)
		}}
}

func configCommand() *cli.Command {
	return &cli.Command{Name: "config", Usage: "Print the docker CLI flags that reach a machine", ArgsUsage: "NAME",
		Flags: []cli.Flag{refusedFlag("swarm", true, "it showed classic swarm's master, which Docker no longer has; swarm-mode managers are reached like any machine")},
		Action: func(c *cli.Context) error {
			_, h, err := loadOne(c)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "--tlsverify\n--tlscacert=%q\n--tlscert=%q\n--tlskey=%q\n-H=%s\n", h.CAPath(), h.CertPath(), h.KeyPath(), h.URL())
			return nil
		}}
}

// forEach runs f for every name at once and reports per machine; it fails if any failed.
func forEach(c *cli.Context, ns []string, verb string, f func(ctx context.Context, a *machine.API, h *machine.Host) (string, error)) error {
	a, err := api(c)
	if err != nil {
		return err
	}
	msgs, errs := fanout.Map(c.Context, ns, 0, func(ctx context.Context, n string) (string, error) {
		h, err := a.Load(n)
		if err != nil {
			return "", err
		}
		return f(ctx, a, h)
	})
	var failed []string
	for i, n := range ns {
		switch {
		case errs[i] != nil:
			if len(ns) > 1 { // one machine's error is the command's, printed once
				fmt.Fprintf(c.App.ErrWriter, "(%s) %s failed: %v\n", n, verb, errs[i])
			}
			failed = append(failed, n)
		case msgs[i] != "":
			fmt.Fprintf(c.App.Writer, "(%s) %s\n", n, msgs[i])
		}
	}
	if len(failed) == 1 && len(ns) == 1 {
		return errs[0]
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s failed for %s", verb, strings.Join(failed, ", "))
	}
	return nil
}

func provisionCommand() *cli.Command {
	return &cli.Command{Name: "provision", Usage: "Provision machines again (changes nothing on a good host)", ArgsUsage: "NAME...",
		Action: func(c *cli.Context) error {
			ns, err := names(c)
			if err != nil {
				return err
			}
			return forEach(c, ns, "provision", func(ctx context.Context, a *machine.API, h *machine.Host) (string, error) {
				r, err := h.Reprovision(ctx, machine.ProvisionOptions{Progress: progress(c, h.Name)})
				if err != nil {
					return "", err
				}
				return r.Summary(), nil
			})
		}}
}

func regenerateCertsCommand() *cli.Command {
	return &cli.Command{Name: "regenerate-certs", Usage: "Issue new engine certificates and restart the engines", ArgsUsage: "NAME...",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "Force rebuild and do not prompt"},
			refusedFlag("client-certs", true, "the store's CA and client certificate are shared by all its machines; to replace them, make a new store (-s DIR) and import or re-create the machines")},
		Action: func(c *cli.Context) error {
			ns, err := names(c)
			if err != nil {
				return err
			}
			if !c.Bool("force") && !confirm(c, "Regenerate TLS machine certs?  Warning: this is irreversible.") {
				return nil // declined: nothing done (docker-machine exits 0 too)
			}
			return forEach(c, ns, "regenerate-certs", func(ctx context.Context, a *machine.API, h *machine.Host) (string, error) {
				if _, err := h.Reprovision(ctx, machine.ProvisionOptions{ReissueCert: true, Progress: progress(c, h.Name)}); err != nil {
					return "", err
				}
				return "new certificate issued; the engine restarted and answers over TLS", nil
			})
		}}
}

func trustHostKeyCommand() *cli.Command {
	return &cli.Command{Name: "trust-host-key", Usage: "Pin the SSH host key a machine offers now (after a rebuild)", ArgsUsage: "NAME",
		Action: func(c *cli.Context) error {
			_, h, err := loadOne(c)
			if err != nil {
				return err
			}
			key, addr, err := h.TrustHostKey(c.Context)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "(%s) now trusting %s %s at %s\n", h.Name, key.Type(), ssh.FingerprintSHA256(key), addr)
			return nil
		}}
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
			res, errs := fanout.Map(c.Context, ns, 0, func(ctx context.Context, n string) (bool, error) {
				if !a.Exists(n) {
					return false, &store.NotFoundError{Name: n}
				}
				if err := a.Remove(ctx, n, force); err != nil {
					return false, err
				}
				ok, _ := machine.RemoveDockerContext(n)
				return ok, nil
			})
			var failed []string
			for i, n := range ns {
				if errs[i] != nil {
					failed = append(failed, n)
					if len(ns) > 1 || force {
						fmt.Fprintf(c.App.ErrWriter, "Error removing host %q: %v\n", n, errs[i])
					}
					continue
				}
				fmt.Fprintf(c.App.Writer, "Successfully removed %s\n", n)
				if res[i] {
					fmt.Fprintf(c.App.Writer, "(%s) its Docker context was removed too\n", n)
				}
			}
			if len(failed) > 0 && !force {
				if len(ns) == 1 {
					return fmt.Errorf("Error removing host %q: %w", ns[0], errs[0])
				}
				return fmt.Errorf("rm failed for %s (-f removes their records anyway)", strings.Join(failed, ", "))
			}
			return nil
		}}
}

func lifecycleCommand(op machine.Op, usage string) *cli.Command {
	return &cli.Command{Name: string(op), Usage: usage, ArgsUsage: "NAME...",
		Action: func(c *cli.Context) error {
			ns, err := names(c)
			if err != nil {
				return err
			}
			return forEach(c, ns, string(op), func(ctx context.Context, a *machine.API, h *machine.Host) (string, error) {
				out, err := h.Do(ctx, op, progress(c, h.Name))
				if err != nil {
					return "", err
				}
				return out.String(), nil
			})
		}}
}

func imageCommand() *cli.Command {
	return &cli.Command{Name: "image", Usage: "Manage the container driver's host image",
		Subcommands: []*cli.Command{{
			Name:  "build",
			Usage: "Build the host image (reused while its recipe is unchanged)",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "force", Usage: "build even when the image exists"},
				&cli.StringFlag{Name: "variant", Value: container.VariantDocker, Usage: "docker (with the engine) or base"},
				&cli.StringFlag{Name: "container-engine-host", EnvVars: []string{"MACHINE_CONTAINER_ENGINE_HOST"}, Value: container.DefaultEngineHost},
			},
			Action: func(c *cli.Context) error {
				host := c.String("container-engine-host")
				if err := container.Ping(c.Context, host); err != nil {
					return err
				}
				d := &container.Driver{EngineHost: host}
				cli, err := d.Client()
				if err != nil {
					return err
				}
				defer cli.Close()
				b := &container.ImageBuilder{Client: cli, Progress: progress(c, "image")}
				tag := container.ImageTag(c.String("variant"))
				if ok, _ := b.Has(c.Context, tag); ok && !c.Bool("force") {
					fmt.Fprintf(c.App.Writer, "%s (present; its recipe is unchanged)\n", tag)
					return nil
				}
				start := time.Now()
				tag, err = b.Ensure(c.Context, c.String("variant"), c.Bool("force"))
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "%s (built in %s)\n", tag, time.Since(start).Round(time.Second))
				return nil
			},
		}},
	}
}

func versionCommand() *cli.Command {
	return &cli.Command{Name: "version", Usage: "Print the version of machine, or of a machine's engine", ArgsUsage: "[NAME]",
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				fmt.Fprintf(c.App.Writer, "%s version %s\n", c.App.Name, Version)
				return nil
			}
			_, h, err := loadOne(c)
			if err != nil {
				return err
			}
			if err := h.Running(c.Context); err != nil {
				return err
			}
			v, err := h.EngineVersion(c.Context)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, v)
			return nil
		}}
}

// templateFuncs are docker-machine's template functions: json and prettyjson.
var templateFuncs = template.FuncMap{
	"json": func(v any) string { b, _ := json.Marshal(v); return string(b) },
	"prettyjson": func(v any) string {
		b, _ := json.MarshalIndent(v, "", "  ")
		return string(b)
	},
}

// renderTemplate prints v through a --format template; a field that v does not have is an
// error, not "<no value>".
func renderTemplate(w io.Writer, format string, v any) error {
	t, err := template.New("format").Funcs(templateFuncs).Option("missingkey=error").Parse(format + "\n")
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	_, err = w.Write(b.Bytes())
	return err
}
