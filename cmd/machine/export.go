package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/machine-tools/machine/machine"
)

// passphrase reads a passphrase from standard input (never from the command line).
func passphrase(c *cli.Context) (string, error) {
	if !c.Bool("passphrase-stdin") {
		return "", nil
	}
	line, err := bufio.NewReader(c.App.Reader).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	p := strings.TrimRight(line, "\r\n")
	if p == "" {
		return "", errors.New("--passphrase-stdin: standard input held no passphrase")
	}
	return p, nil
}

func exportCommand() *cli.Command {
	return &cli.Command{
		Name: "export", Usage: "Write machines to a file for another computer or store (records, keys, certificates; 0600)", ArgsUsage: "NAME...",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Required: true, Usage: "the file to write"},
			&cli.BoolFlag{Name: "with-ca-key", Usage: "add the store's CA key (whoever has the file can then make certificates these machines trust)"},
			&cli.BoolFlag{Name: "passphrase-stdin", Usage: "encrypt the file (age) with a passphrase read from standard input"},
		},
		Action: withAPI(func(c *cli.Context, a *machine.API) error {
			if c.NArg() == 0 {
				return fmt.Errorf("name the machines to export: %s export -o FILE NAME...", c.App.Name)
			}
			pass, err := passphrase(c)
			if err != nil {
				return err
			}
			out := c.String("output")
			tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name())
			if err := tmp.Chmod(0o600); err != nil {
				tmp.Close()
				return err
			}
			if err := a.Export(tmp, c.Args().Slice(), machine.ExportOptions{WithCAKey: c.Bool("with-ca-key"), Passphrase: pass}); err != nil {
				tmp.Close()
				return err
			}
			if err := tmp.Close(); err != nil {
				return err
			}
			if err := os.Rename(tmp.Name(), out); err != nil { // whole, or not there
				return err
			}
			return say(c, "exported %s to %s", strings.Join(c.Args().Slice(), ", "), out)
		}),
	}
}

func importMachinesCommand() *cli.Command {
	return &cli.Command{
		Name: "import", Usage: "Make the machines of an export usable here (paths rewritten for this store)", ArgsUsage: "FILE",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "rename", Usage: "OLD=NEW: import machine OLD as NEW (repeatable)"},
			&cli.BoolFlag{Name: "passphrase-stdin", Usage: "the export's passphrase, from standard input"},
		},
		Action: withAPI(func(c *cli.Context, a *machine.API) error {
			if c.NArg() != 1 {
				return fmt.Errorf("name the export file: %s import FILE", c.App.Name)
			}
			pass, err := passphrase(c)
			if err != nil {
				return err
			}
			rename := map[string]string{}
			for _, r := range c.StringSlice("rename") {
				old, nw, ok := strings.Cut(r, "=")
				if !ok || old == "" || nw == "" {
					return fmt.Errorf("--rename %q: give OLD=NEW", r)
				}
				rename[old] = nw
			}
			f, err := os.Open(c.Args().First())
			if err != nil {
				return err
			}
			defer f.Close()
			res, err := a.Import(f, machine.ImportOptions{Passphrase: pass, Rename: rename})
			if err != nil {
				return err
			}
			return report(c, "import", res)
		}),
	}
}
