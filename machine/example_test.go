//go:build e2e

// The examples make real container hosts: they are compiled by `make lint` (vet -tags e2e) and
// run by `make e2e`.

package machine_test

import (
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/machine-tools/machine/machine"
)

// A container host, its engine over TLS, and its removal.
func ExampleAPI_Create() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "machine-example-")
	defer os.RemoveAll(dir)
	api, err := machine.Open(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	name := fmt.Sprintf("ex-create-%d", os.Getpid())
	h, err := api.Create(ctx, name, machine.CreateOptions{Driver: "container", Engine: machine.EngineOptions{Labels: []string{"purpose=example"}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer api.Remove(ctx, name, true)
	cli, err := h.Docker()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()
	info, err := cli.Info(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	slices.Sort(info.Labels) // the engine keeps no order
	fmt.Println(info.Labels)
	st := api.Survey(ctx, []string{name}, 0, false)
	fmt.Println(st[0].State)
	// Output:
	// [provider=container purpose=example]
	// Running
}
