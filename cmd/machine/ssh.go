package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/crypto/ssh"
	"golang.org/x/term"
)

func sshCommand() *cli.Command {
	return &cli.Command{
		Name:            "ssh",
		Usage:           "Run a command on a machine, or open a shell on it",
		ArgsUsage:       "NAME [COMMAND...]",
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) == 0 || args[0] == "--help" || args[0] == "-h" {
				return fmt.Errorf("usage: machine ssh NAME [COMMAND...]")
			}
			a, err := api(c)
			if err != nil {
				return err
			}
			h, err := a.Load(args[0])
			if err != nil {
				return err
			}
			if h.SSH.Host == "" {
				return fmt.Errorf("machine %q has no address: its create did not finish", h.Name)
			}
			dctx, cancel := context.WithTimeout(c.Context, 20*time.Second)
			cl, err := h.Dial(dctx)
			cancel()
			if err != nil {
				return err
			}
			defer cl.Close()
			if len(args) > 1 {
				// Like ssh(1): the words are joined into the remote command line.
				code, err := cl.Exec(c.Context, strings.Join(args[1:], " "), os.Stdin, c.App.Writer, c.App.ErrWriter)
				if err != nil {
					return err
				}
				if code != 0 {
					return exitError{code}
				}
				return nil
			}
			return interactive(c, cl.Conn())
		},
	}
}

func interactive(c *cli.Context, conn *ssh.Client) error {
	s, err := conn.NewSession()
	if err != nil {
		return err
	}
	defer s.Close()
	s.Stdin, s.Stdout, s.Stderr = os.Stdin, os.Stdout, os.Stderr
	fd := int(os.Stdin.Fd())
	if term.IsTerminal(fd) {
		w, hgt, err := term.GetSize(fd)
		if err != nil {
			w, hgt = 80, 24
		}
		t := os.Getenv("TERM")
		if t == "" {
			t = "xterm"
		}
		if err := s.RequestPty(t, hgt, w, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
			return err
		}
		old, err := term.MakeRaw(fd)
		if err != nil {
			return err
		}
		defer term.Restore(fd, old)
	}
	if err := s.Shell(); err != nil {
		return err
	}
	if err := s.Wait(); err != nil {
		if ee, ok := err.(*ssh.ExitError); ok {
			return exitError{ee.ExitStatus()}
		}
		return err
	}
	return nil
}
