// Command example makes two container machines, forms a swarm of them through the public Go
// API, prints the swarm's nodes and removes everything again.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/swarm"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx)
	stop()
	if err != nil {
		log.Fatal(err)
	}
}

// run returns its error, so that every deferred removal runs before the program exits.
func run(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "machine-example-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	api, err := machine.Open(dir) // a store of its own, with its own CA
	if err != nil {
		return err
	}
	names := []string{fmt.Sprintf("example-m-%d", os.Getpid()), fmt.Sprintf("example-w-%d", os.Getpid())}
	for _, n := range names {
		defer api.Remove(context.WithoutCancel(ctx), n, true)
		if _, err := api.Create(ctx, n, machine.CreateOptions{Driver: "container"}); err != nil {
			return err
		}
	}

	nodes, done, err := swarm.OpenNodes(api, names)
	if err != nil {
		return err
	}
	defer done()
	if _, err := swarm.Init(ctx, nodes[0], swarm.InitOptions{}); err != nil {
		return err
	}
	if _, err := swarm.Join(ctx, nodes[0], nodes[1:], swarm.JoinOptions{Role: "worker"}); err != nil {
		return err
	}
	rows, err := swarm.Status(ctx, nodes[0])
	if err != nil {
		return err
	}
	fmt.Printf("a swarm of %d nodes\n", len(rows))

	h, err := api.Load(names[1])
	if err != nil {
		return err
	}
	cli, err := h.Docker() // over verified TLS
	if err != nil {
		return err
	}
	defer cli.Close()
	info, err := cli.Info(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("%s is a swarm %s\n", names[1][:9], info.Swarm.LocalNodeState)
	return nil
}
