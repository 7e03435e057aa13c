package images

import (
	"context"
	"errors"
	"fmt"

	"github.com/docker/docker/client"
)

// DistributeOptions say where images come from: a source engine, read once for all targets
// (SourceName names it in the notes), or, when Source is nil, each target's registry.
type DistributeOptions struct {
	Source     client.APIClient
	SourceName string
	// Username and Password log in to the registry (default: the Docker config's credentials).
	Username, Password string
	Progress           Progress
}

// Distribution is what Distribute did: a result per node and image, and notes (bytes read).
type Distribution struct {
	Results []Result
	Notes   []string
}

// Distribute puts every image on every target, as `machine pull` does. It goes on after a
// failure and reports every image that some target lacks.
func Distribute(ctx context.Context, targets []Target, refs []string, o DistributeOptions) (Distribution, error) {
	var d Distribution
	var errs []error
	for _, ref := range refs {
		var res []Result
		if o.Source != nil {
			var stats SideLoadStats
			var err error
			res, stats, err = SideLoad(ctx, o.Source, ref, targets, o.Progress)
			if stats.Targets > 0 {
				d.Notes = append(d.Notes, fmt.Sprintf("%s: read %d bytes once from %s for %d node(s)", ref, stats.BytesRead, o.SourceName, stats.Targets))
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", ref, err))
			}
		} else {
			auth, err := RegistryAuth(ref, o.Username, o.Password)
			if err != nil {
				return d, err
			}
			res, err = Pull(ctx, ref, targets, PullOptions{Auth: auth, Progress: o.Progress})
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

// RegistryAuth is the credentials sent for ref's registry: user's (which needs a password), or
// the Docker config's.
func RegistryAuth(ref, user, password string) (string, error) {
	reg := RegistryOf(ref)
	if user != "" {
		if password == "" {
			return "", errors.New("--username needs --password-stdin (a password is never taken on the command line)")
		}
		return EncodeAuth(user, password, reg)
	}
	return ConfigAuth(reg)
}
