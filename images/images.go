// Package images puts an image on many engines at once: pulled by every engine from a registry,
// or side-loaded, read once from a source engine and streamed to every target's image load with
// no temporary file. Targets that already hold the same image ID are skipped.
package images

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"github.com/machine-tools/machine/internal/fanout"
	"github.com/machine-tools/machine/internal/wait"
)

// Target is one engine to put the image on.
type Target struct {
	Name   string
	Client client.APIClient
}

// Result is what happened on one target.
type Result struct {
	Node    string  `json:"node"`
	Image   string  `json:"image"`
	ID      string  `json:"id,omitempty"`
	Digest  string  `json:"digest,omitempty"`
	Skipped bool    `json:"skipped,omitempty"`
	Error   string  `json:"error,omitempty"`
	Seconds float64 `json:"seconds"`
}

// ShortID is the image ID as docker prints it: 12 hex digits.
func (r Result) ShortID() string {
	id := strings.TrimPrefix(r.ID, "sha256:")
	return id[:min(12, len(id))]
}

// Result is the outcome in a word or a few: ok, skipped (has it), failed: why.
func (r Result) Result() string {
	switch {
	case r.Error != "":
		return "failed: " + r.Error
	case r.Skipped:
		return "skipped (has it)"
	}
	return "ok"
}

// Progress hears one line per node and step.
type Progress func(node, msg string)

func imageID(ctx context.Context, c client.APIClient, ref string) (string, string, error) {
	ins, err := c.ImageInspect(ctx, ref)
	if err != nil {
		return "", "", err
	}
	digest := ""
	if len(ins.RepoDigests) > 0 {
		digest = ins.RepoDigests[0]
	}
	return ins.ID, digest, nil
}

// SideLoadStats says how much was read from the source.
type SideLoadStats struct {
	BytesRead int64
	Targets   int
}

// SideLoad reads ref once from src and loads it into every target that lacks it, at once.
func SideLoad(ctx context.Context, src client.APIClient, ref string, targets []Target, progress Progress) ([]Result, SideLoadStats, error) {
	var stats SideLoadStats
	id, _, err := imageID(ctx, src, ref)
	if err != nil {
		return nil, stats, fmt.Errorf("the source engine has no image %s: %w", ref, err)
	}
	results := make([]Result, len(targets))
	var todo []int
	for i, t := range targets {
		results[i] = Result{Node: t.Name, Image: ref}
		if have, _, err := imageID(ctx, t.Client, ref); err == nil && have == id {
			results[i].ID, results[i].Skipped = id, true
			say(progress, t.Name, "already has "+ref+" ("+short(id)+"): skipped")
			continue
		}
		todo = append(todo, i)
	}
	if len(todo) == 0 {
		return results, stats, nil
	}
	start := time.Now()
	rc, err := src.ImageSave(ctx, []string{ref})
	if err != nil {
		return nil, stats, fmt.Errorf("reading %s from the source engine: %w", ref, err)
	}
	defer rc.Close()
	fan := &tee{}
	var wg sync.WaitGroup
	for _, i := range todo {
		pr, pw := io.Pipe()
		fan.add(pw)
		t := targets[i]
		say(progress, t.Name, "loading "+ref)
		wg.Go(func() {
			resp, err := t.Client.ImageLoad(ctx, pr, client.ImageLoadWithQuiet(true))
			if err == nil {
				err = drain(resp.Body)
			}
			if err != nil {
				pr.CloseWithError(err)
				results[i].Error = err.Error()
				return
			}
			_, _ = io.Copy(io.Discard, pr)
		})
	}
	n, err := io.Copy(fan, rc)
	stats.BytesRead, stats.Targets = n, len(todo)
	fan.close(err)
	wg.Wait()
	for _, i := range todo {
		r := &results[i]
		r.Seconds = time.Since(start).Seconds()
		if r.Error != "" {
			say(progress, r.Node, "failed: "+r.Error)
			continue
		}
		got, digest, err := imageID(ctx, targets[i].Client, ref)
		if err != nil || got != id {
			r.Error = fmt.Sprintf("after the load the node has %q, not %s", got, short(id))
			continue
		}
		r.ID, r.Digest = got, digest
		say(progress, r.Node, "loaded "+ref+" ("+short(id)+")")
	}
	return results, stats, check(results)
}

// tee writes to every writer that still accepts; a failed target does not stop the others.
type tee struct {
	mu sync.Mutex
	ws []*io.PipeWriter
	ok []bool
}

func (f *tee) add(w *io.PipeWriter) { f.ws = append(f.ws, w); f.ok = append(f.ok, true) }

func (f *tee) Write(p []byte) (int, error) {
	alive := 0
	for i, w := range f.ws {
		if !f.ok[i] {
			continue
		}
		if _, err := w.Write(p); err != nil {
			f.ok[i] = false
			continue
		}
		alive++
	}
	if alive == 0 {
		return 0, errors.New("every target failed")
	}
	return len(p), nil
}

func (f *tee) close(err error) {
	for _, w := range f.ws {
		w.CloseWithError(err)
	}
}

// PullOptions tune Pull.
type PullOptions struct {
	Auth     string // base64 registry auth (registry.EncodeAuthConfig), never printed
	Retries  int    // on transient errors; 3 when zero
	Progress Progress
}

// Pull makes every target pull ref from its registry, all at once, retrying transient errors
// with backoff. Every target is tried; the error lists those that failed with the registry's
// own message.
func Pull(ctx context.Context, ref string, targets []Target, o PullOptions) ([]Result, error) {
	if o.Retries == 0 {
		o.Retries = 3
	}
	results, _ := fanout.Map(ctx, targets, 0, func(ctx context.Context, t Target) (Result, error) {
		start := time.Now()
		r := Result{Node: t.Name, Image: ref}
		delay := time.Second
		var err error
		for attempt := 1; attempt <= o.Retries; attempt++ {
			say(o.Progress, t.Name, fmt.Sprintf("pulling %s", ref))
			err = pullOnce(ctx, t.Client, ref, o.Auth)
			if err == nil || !transient(err) || attempt == o.Retries {
				break
			}
			say(o.Progress, t.Name, fmt.Sprintf("retrying in %s: %v", delay, err))
			if wait.Sleep(ctx, delay) != nil {
				break
			}
			delay *= 2
		}
		r.Seconds = time.Since(start).Seconds()
		if err != nil {
			r.Error = err.Error()
			say(o.Progress, t.Name, "failed: "+r.Error)
		} else {
			r.ID, r.Digest, _ = imageID(ctx, t.Client, ref)
			say(o.Progress, t.Name, "pulled "+ref+" ("+short(r.ID)+")")
		}
		return r, nil
	})
	for i, t := range targets {
		if results[i].Node == "" { // not started: ctx ended first
			results[i] = Result{Node: t.Name, Image: ref, Error: ctx.Err().Error()}
		}
	}
	return results, check(results)
}

func pullOnce(ctx context.Context, c client.APIClient, ref, auth string) error {
	rc, err := c.ImagePull(ctx, ref, image.PullOptions{RegistryAuth: auth})
	if err != nil {
		return err
	}
	return drain(rc)
}

func transient(err error) bool {
	// The node's own engine not answering is no registry's passing fault: said at once.
	var ne net.Error
	if client.IsErrConnectionFailed(err) || (errors.As(err, &ne) && ne.Timeout()) {
		return false
	}
	if errdefs.IsUnauthorized(err) || errdefs.IsNotFound(err) || errdefs.IsForbidden(err) || errdefs.IsInvalidParameter(err) {
		return false
	}
	s := strings.ToLower(err.Error())
	for _, perm := range []string{"unauthorized", "authentication required", "not found", "denied", "manifest unknown", "no basic auth"} {
		if strings.Contains(s, perm) {
			return false
		}
	}
	return true
}

// check fails when a node failed or when nodes ended with different image IDs.
func check(results []Result) error {
	var errs []error
	ids := map[string][]string{}
	for _, r := range results {
		if r.Error != "" {
			errs = append(errs, fmt.Errorf("%s: %s", r.Node, r.Error))
			continue
		}
		ids[r.ID] = append(ids[r.ID], r.Node)
	}
	if len(ids) > 1 {
		var parts []string
		for id, nodes := range ids {
			parts = append(parts, short(id)+" on "+strings.Join(nodes, ","))
		}
		errs = append(errs, fmt.Errorf("nodes ended with different content: %s", strings.Join(parts, "; ")))
	}
	return errors.Join(errs...)
}

func drain(rc io.ReadCloser) error {
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if json.Unmarshal(sc.Bytes(), &m) == nil && (m.Error != "" || m.ErrorDetail.Message != "") {
			if m.ErrorDetail.Message != "" {
				return errors.New(m.ErrorDetail.Message)
			}
			return errors.New(m.Error)
		}
	}
	return sc.Err()
}

func say(p Progress, node, msg string) {
	if p != nil {
		p(node, msg)
	}
}

func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// EncodeAuth turns a user name and password into the engine's registry auth header value.
func EncodeAuth(user, password, server string) (string, error) {
	return registry.EncodeAuthConfig(registry.AuthConfig{Username: user, Password: password, ServerAddress: server})
}
