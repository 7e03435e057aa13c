package swarm

import (
	"context"
	"errors"
	"fmt"

	"github.com/docker/docker/client"

	"github.com/machine-tools/machine/images"
	"github.com/machine-tools/machine/machine"
)

// DistributeOptions say where images go and where they come from.
type DistributeOptions struct {
	Nodes []string // machines of the store
	// FromLocal streams each image from the local engine, From from that machine's engine
	// (read once for all nodes); otherwise every node pulls it from its registry.
	FromLocal bool
	From      string
	// Username and Password log in to the registry (default: the Docker config's credentials).
	Username, Password string
	Progress           images.Progress
}

// Distribution is what Distribute did: a result per node and image, and notes (bytes read).
type Distribution struct {
	Results []images.Result
	Notes   []string
}

// Distribute puts every image on every node, as `machine pull` does. It goes on after a
// failure and reports every image that some node lacks.
func Distribute(ctx context.Context, api *machine.API, refs []string, o DistributeOptions) (Distribution, error) {
	var d Distribution
	nodes, done, err := OpenNodes(api, o.Nodes)
	if err != nil {
		return d, err
	}
	defer done()
	var targets []images.Target
	for _, n := range nodes {
		targets = append(targets, images.Target{Name: n.Name, Client: n.Docker})
	}
	var errs []error
	for _, ref := range refs {
		var res []images.Result
		if o.FromLocal || o.From != "" {
			src, closeSrc, err := sideLoadSource(api, o.From)
			if err != nil {
				return d, err
			}
			var stats images.SideLoadStats
			res, stats, err = images.SideLoad(ctx, src, ref, targets, o.Progress)
			closeSrc()
			if stats.Targets > 0 {
				from := "the local engine"
				if o.From != "" {
					from = o.From
				}
				d.Notes = append(d.Notes, fmt.Sprintf("%s: read %d bytes once from %s for %d node(s)", ref, stats.BytesRead, from, stats.Targets))
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", ref, err))
			}
		} else {
			auth, err := registryAuth(ref, o.Username, o.Password)
			if err != nil {
				return d, err
			}
			res, err = images.Pull(ctx, ref, targets, images.PullOptions{Auth: auth, Progress: o.Progress})
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", ref, err))
			}
		}
		d.Results = append(d.Results, res...)
	}
	if len(errs) > 0 {
		return d, fmt.Errorf("not every node has every image: %w", errors.Join(errs...))
	}
	return d, nil
}

func registryAuth(ref, user, password string) (string, error) {
	reg := images.RegistryOf(ref)
	if user != "" {
		if password == "" {
			return "", errors.New("--username needs --password-stdin (a password is never taken on the command line)")
		}
		return images.EncodeAuth(user, password, reg)
	}
	return images.ConfigAuth(reg)
}

// sideLoadSource is the engine a side-load reads from: the local one, or a machine's.
func sideLoadSource(api *machine.API, from string) (client.APIClient, func(), error) {
	if from != "" {
		h, err := api.Load(from)
		if err != nil {
			return nil, nil, err
		}
		cli, err := h.Docker()
		if err != nil {
			return nil, nil, err
		}
		return cli, func() { cli.Close() }, nil
	}
	local, err := LocalEngine()
	if err != nil {
		return nil, nil, err
	}
	return local.Client, func() { local.Client.Close() }, nil
}
