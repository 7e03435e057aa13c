package container

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"github.com/gofrs/flock"
)

//go:embed recipe
var recipe embed.FS

// ImageRepo is the repository of the host images.
const ImageRepo = "machine-host"

// Image variants.
const (
	VariantDocker = "docker" // with Docker's engine installed: the default
	VariantBase   = "base"   // systemd and sshd only: a host the provisioner installs Docker on
)

// Mirror is where the offline build's packages come from.
var Mirror = "http://deb.debian.org/debian"

// Releases are the Debian releases a host image is built from, by the name the driver's
// --container-image-release takes, to their suites.
var Releases = map[string]string{"debian-11": "bullseye", "debian-12": "bookworm", "debian-13": "trixie"}

// DefaultRelease is the release of hosts made without --container-image-release.
const DefaultRelease = "debian-12"

// suite is a release's Debian suite (the default's for "").
func suite(release string) string {
	if s := Releases[release]; s != "" {
		return s
	}
	return Releases[DefaultRelease]
}

// ReleaseNames lists the releases, sorted.
func ReleaseNames() []string { return slices.Sorted(maps.Keys(Releases)) }

// RecipeHash is the hash of every file of the recipe and the release's suite: it names the
// images, so that a change to the recipe builds new ones and an unchanged recipe reuses what is
// there.
func RecipeHash(release string) string {
	h := sha256.New()
	var names []string
	_ = fs.WalkDir(recipe, "recipe", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	sort.Strings(names)
	for _, n := range names {
		b, _ := recipe.ReadFile(n)
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(b))
		h.Write(b)
	}
	fmt.Fprintf(h, "%s\x00%s", suite(release), Mirror)
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// ImageTag is the tag of a variant of the host image of a release for this recipe (the default
// release's tags carry no release name).
func ImageTag(variant, release string) string {
	prefix := ""
	if release != "" && release != DefaultRelease {
		prefix = release + "-"
	}
	if variant == VariantBase {
		return ImageRepo + ":base-" + prefix + RecipeHash(release)
	}
	return ImageRepo + ":" + prefix + RecipeHash(release)
}

// ImageBuilder builds the host images on a local engine.
type ImageBuilder struct {
	Client   client.APIClient
	Progress func(string)
}

func (b *ImageBuilder) say(format string, a ...any) {
	if b.Progress != nil {
		b.Progress(fmt.Sprintf(format, a...))
	}
}

// Has reports whether the engine has the image.
func (b *ImageBuilder) Has(ctx context.Context, ref string) (bool, error) {
	_, err := b.Client.ImageInspect(ctx, ref)
	if err == nil {
		return true, nil
	}
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	return false, err
}

// Ensure returns the tag of the variant, building it (and the base) when absent. Parallel
// callers on one machine wait for one build.
func (b *ImageBuilder) Ensure(ctx context.Context, variant, release string, force bool) (string, error) {
	tag := ImageTag(variant, release)
	if !force {
		if ok, err := b.Has(ctx, tag); err != nil || ok {
			return tag, err
		}
	}
	lock := flock.New(filepath.Join(os.TempDir(), "machine-host-image.lock"))
	if _, err := lock.TryLockContext(ctx, 200*time.Millisecond); err != nil {
		return "", err
	}
	defer lock.Unlock()
	if !force {
		if ok, err := b.Has(ctx, tag); err != nil || ok {
			return tag, err
		}
	}
	base := ImageTag(VariantBase, release)
	if ok, err := b.Has(ctx, base); err != nil {
		return "", err
	} else if !ok || force {
		if err := b.buildBase(ctx, base, release); err != nil {
			return "", err
		}
	}
	if variant == VariantBase {
		return base, nil
	}
	b.say("building %s (Docker's engine on the base)", tag)
	if err := b.dockerBuild(ctx, "Dockerfile", tag, map[string]*string{"BASE": &base}); err != nil {
		return "", err
	}
	b.pruneOld(ctx)
	return tag, nil
}

// pruneOld removes the images of earlier recipes; one still used by a host stays.
func (b *ImageBuilder) pruneOld(ctx context.Context) {
	imgs, err := b.Client.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("reference", ImageRepo))})
	if err != nil {
		return
	}
	keep := map[string]bool{}
	for r := range Releases {
		keep[ImageTag(VariantDocker, r)], keep[ImageTag(VariantBase, r)] = true, true
	}
	for _, im := range imgs {
		for _, t := range im.RepoTags {
			if !keep[t] {
				if _, err := b.Client.ImageRemove(ctx, t, image.RemoveOptions{}); err == nil {
					b.say("removed the image of an earlier recipe: %s", t)
				}
			}
		}
	}
}

func (b *ImageBuilder) buildBase(ctx context.Context, tag, release string) error {
	su := suite(release)
	pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	rc, err := b.Client.ImagePull(pctx, "docker.io/library/debian:"+su, image.PullOptions{})
	if err == nil {
		err = drainJSON(rc, nil)
	}
	cancel()
	if err == nil {
		b.say("building %s from debian:%s", tag, su)
		return b.dockerBuild(ctx, "Dockerfile.base", tag, map[string]*string{"SUITE": &su})
	}
	b.say("debian:%s cannot be pulled (%v); building %s offline with debootstrap", su, firstLine(err), tag)
	return b.debootstrap(ctx, tag, release)
}

func (b *ImageBuilder) debootstrap(ctx context.Context, tag, release string) error {
	su := suite(release)
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return fmt.Errorf("no host image %s, no registry to pull debian from, and no debootstrap to build it offline: install debootstrap (apt-get install debootstrap) and run `machine image build` as root", tag)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("building the host image %s offline needs root (debootstrap): run `sudo machine image build` once", tag)
	}
	work, err := os.MkdirTemp("", "machine-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := os.CopyFS(filepath.Join(work, "recipe"), mustSub(recipe, "recipe")); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(work, "recipe", "rootfs.sh"), work, su, Mirror)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("debootstrap of %s from %s failed: %v: %s", su, Mirror, err, strings.TrimSpace(stderr.String()))
	}
	b.say("root file system made in %s; importing", time.Since(start).Round(time.Second))
	f, err := os.Open(filepath.Join(work, "rootfs.tar"))
	if err != nil {
		return err
	}
	defer f.Close()
	rc, err := b.Client.ImageImport(ctx, image.ImportSource{Source: f, SourceName: "-"}, tag, image.ImportOptions{
		Changes: []string{`CMD ["/sbin/init"]`, "ENV container=docker"},
		Message: "machine host base (" + su + "), recipe " + RecipeHash(release),
	})
	if err != nil {
		return fmt.Errorf("importing the host image: %w", err)
	}
	return drainJSON(rc, nil)
}

func (b *ImageBuilder) dockerBuild(ctx context.Context, dockerfile, tag string, args map[string]*string) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := fs.WalkDir(recipe, "recipe", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := recipe.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(p, "recipe/"), Mode: 0o755, Size: int64(len(data))}); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	resp, err := b.Client.ImageBuild(ctx, &buf, build.ImageBuildOptions{
		Tags: []string{tag}, Dockerfile: dockerfile, BuildArgs: args, Remove: true, ForceRemove: true,
		Labels: map[string]string{"io.machine.recipe": tag},
	})
	if err != nil {
		return fmt.Errorf("building %s: %w", tag, err)
	}
	if err := drainJSON(resp.Body, nil); err != nil {
		return fmt.Errorf("building %s: %w", tag, err)
	}
	return nil
}

// drainJSON reads a stream of the engine's JSON progress messages and returns the first error
// message in it.
func drainJSON(rc io.ReadCloser, line func(string)) error {
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var last []string
	for sc.Scan() {
		var m struct {
			Stream      string `json:"stream"`
			Status      string `json:"status"`
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		if m.Error != "" {
			tail := strings.Join(last, "")
			return errors.New(strings.TrimSpace(m.Error + "\n" + tail))
		}
		if s := strings.TrimSpace(m.Stream + m.Status); s != "" {
			last = append(last, s+"\n")
			if len(last) > 10 {
				last = last[1:]
			}
			if line != nil {
				line(s)
			}
		}
	}
	return sc.Err()
}

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

func mustSub(f fs.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return s
}

// BuildImage makes the host image of variant on the engine at host unless it is there already
// (force: build anyway); built says whether it was made now.
func BuildImage(ctx context.Context, host, variant, release string, force bool, progress func(string)) (tag string, built bool, err error) {
	if Releases[release] == "" {
		return "", false, fmt.Errorf("--release %q: use %s", release, strings.Join(ReleaseNames(), ", "))
	}
	if err := Ping(ctx, host); err != nil {
		return "", false, err
	}
	cli, err := (&Driver{EngineHost: host}).Client()
	if err != nil {
		return "", false, err
	}
	defer cli.Close()
	b := &ImageBuilder{Client: cli, Progress: progress}
	tag = ImageTag(variant, release)
	if ok, _ := b.Has(ctx, tag); ok && !force {
		return tag, false, nil
	}
	tag, err = b.Ensure(ctx, variant, release, force)
	return tag, err == nil, err
}
