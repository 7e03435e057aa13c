// Command machine turns SSH hosts, local containers and VMs into TLS-secured Docker hosts.
// Its commands and flags follow docker-machine 0.16 so that scripts written for it carry over.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/machine-tools/machine/internal/cliflags"
	"github.com/machine-tools/machine/internal/store"
	"github.com/machine-tools/machine/machine"
)

// Version is set at build time.
var Version = "0.1.0-dev"

// exitError carries an exit status without a message (ssh passes the remote one through).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	name := "machine"
	if len(args) > 0 {
		name = progName(args[0])
	}
	app := newApp(name, stdin, stdout, stderr)
	err := withPluginFlags(ctx, app, args)
	if err == nil {
		err = app.RunContext(ctx, cliflags.Hoist(app, args))
	}
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	msg := strings.TrimSpace(err.Error())
	if ctx.Err() != nil && !strings.Contains(msg, "interrupted") {
		// Ctrl-C or SIGTERM: said first, whatever step it stopped (context canceled, or the
		// signal as a request's cause).
		msg = "interrupted: " + msg
	}
	if asDockerMachine(name) {
		fmt.Fprintln(stderr, msg)
	} else {
		fmt.Fprintf(stderr, "machine: %s\n", msg)
	}
	// docker-machine's exit codes: 3 when a driver's checks before anything is made fail.
	var pre *machine.PreCreateError
	if errors.As(err, &pre) {
		return 3
	}
	return 1
}

func newApp(name string, stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:                  name,
		Usage:                 "TLS-secured Docker hosts over SSH, in containers and VMs, and swarms of them (docker-machine's commands and flags)",
		CustomAppHelpTemplate: appHelp,
		Version:               Version,
		Reader:                stdin,
		Writer:                stdout,
		ErrWriter:             stderr,
		EnableBashCompletion:  true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "storage-path", Aliases: []string{"s"}, EnvVars: []string{"MACHINE_STORAGE_PATH"}, Value: store.DefaultRoot(), Usage: "where machines, keys and certificates are kept"},
			&cli.BoolFlag{Name: "debug", Aliases: []string{"D"}, EnvVars: []string{"MACHINE_DEBUG"}, Usage: "log every step"},
		},
		ExitErrHandler: func(*cli.Context, error) {}, // run() prints errors once
		Commands:       commands(),
	}
	app.Flags = append(app.Flags, globalCompatFlags()...)
	cliflags.OneLineUsageErrors(app)
	for _, cmd := range app.Commands {
		if strings.Contains(cmd.ArgsUsage, "NAME") && cmd.Name != "create" {
			cmd.BashComplete = completeMachines
		}
	}
	return app
}

// api opens the store and returns what the commands share.
func api(c *cli.Context) (*machine.API, error) {
	level := slog.LevelWarn
	if c.Bool("debug") {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))
	return machine.Open(c.String("storage-path"), machine.WithLogger(log))
}

// progress prints a step to stderr, prefixed with the machine's name.
func progress(c *cli.Context, name string) func(string) {
	return func(s string) { fmt.Fprintf(c.App.ErrWriter, "(%s) %s\n", name, s) }
}

// nodeProgress is progress for steps that name their machine.
func nodeProgress(c *cli.Context) func(name, step string) {
	return func(name, s string) { progress(c, name)(s) }
}

// withAPI is an action over the store.
func withAPI(act func(c *cli.Context, a *machine.API) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		a, err := api(c)
		if err != nil {
			return err
		}
		return act(c, a)
	}
}
