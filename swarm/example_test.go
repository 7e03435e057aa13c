//go:build e2e

// Compiled by `make lint` (vet -tags e2e), run by `make e2e` against real container hosts.

package swarm_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/swarm"
	"github.com/machine-tools/machine/swarm/cluster"
)

// A cluster file brought up and down through the API, as `machine swarm up` and `down` do.
func ExampleUp() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "swarm-example-")
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "cluster.yml")
	id := os.Getpid()
	os.WriteFile(file, fmt.Appendf(nil, "name: ex\ndriver: container\nnodes:\n  - {name: ex-m-%d, role: manager}\n  - {name: ex-w-%d, labels: {zone: b}}\n", id, id), 0o644)
	api, err := machine.Open(filepath.Join(dir, "store"))
	if err != nil {
		fmt.Println(err)
		return
	}
	cl, err := cluster.Load(file)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer swarm.Down(context.WithoutCancel(ctx), api, cl, swarm.DownOptions{})
	if err := swarm.Up(ctx, api, cl, swarm.UpOptions{}); err != nil {
		fmt.Println(err)
		return
	}
	m, err := swarm.OpenNode(api, cl.Managers()[0].Name)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	rows, _ := swarm.Status(ctx, m)
	fmt.Println(len(rows), "nodes")
	// Output: 2 nodes
}
