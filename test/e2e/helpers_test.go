//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

	"github.com/machine-tools/machine/drivers"
	containerdrv "github.com/machine-tools/machine/drivers/container"
	"github.com/machine-tools/machine/internal/certs"
	"github.com/machine-tools/machine/machine"
)

// machineBin is the binary under test, built once by TestMain.
var machineBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "machine-e2e-bin-")
	if err != nil {
		panic(err)
	}
	machineBin = filepath.Join(dir, "machine")
	if out, err := exec.Command("go", "build", "-o", machineBin, "../../cmd/machine").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building machine: %v\n%s", err, out)
		os.Exit(2)
	}
	if err := containerdrv.Ping(context.Background(), containerdrv.DefaultEngineHost); err != nil {
		// Under CI=true a test that cannot run fails; it never skips.
		fmt.Fprintf(os.Stderr, "end-to-end tests need a local Docker engine (run `make setup`): %v\n", err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if fakeVBoxDir != "" {
		os.RemoveAll(fakeVBoxDir)
	}
	os.Exit(code)
}

// uniq makes names that do not collide with other tests or runs on the same engine.
func uniq(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, os.Getpid()%100000)
}

// env is one store for a test, with the binary run against it.
type env struct {
	t     testing.TB
	store string
}

func newEnv(t *testing.T) *env {
	return &env{t: t, store: filepath.Join(t.TempDir(), "store with space")}
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// run runs the machine binary. DOCKER_HOST is cleared: the container driver must use the local
// engine whatever the caller's environment says.
func (e *env) run(args ...string) result {
	return e.runIn(nil, args...)
}

// commandLimit bounds one run of the binary: a VM under QEMU's emulation, beside the rest of the
// suite, takes more than 5 minutes to boot and be provisioned, and once came to the 10.
const commandLimit = 15 * time.Minute

func (e *env) runIn(stdin []byte, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, machineBin, args...)
	cmd.Env = append(cleanEnv(), "MACHINE_STORAGE_PATH="+e.store)
	var o, er bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &er
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("running machine %v: %v", args, err)
	}
	return result{o.String(), er.String(), code}
}

func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DOCKER_") || strings.HasPrefix(kv, "MACHINE_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// must runs machine and fails the test unless it exits 0.
func (e *env) must(args ...string) string {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("machine %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}

// docker runs the real docker CLI the way a user does: eval "$(machine env NAME)" first.
func (e *env) docker(name string, args ...string) result {
	e.t.Helper()
	return e.dockerWith(nil, "", name, args...)
}

// dockerWith runs the docker CLI through machine env, with extra environment and stdin.
func (e *env) dockerWith(extra []string, stdin, name string, args ...string) result {
	e.t.Helper()
	script := `eval "$("$0" env "$1")" || exit 97; shift; exec docker "$@"`
	cmd := exec.Command("bash", append([]string{"-c", script, machineBin, name}, args...)...)
	cmd.Env = append(append(cleanEnv(), "MACHINE_STORAGE_PATH="+e.store, "SHELL=/bin/bash"), extra...)
	return runCmd(cmd, stdin)
}

// runWith runs the machine binary with extra environment (DOCKER_CONFIG) and standard input;
// commandLimit at most, as run.
func (e *env) runWith(extra []string, stdin string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, machineBin, args...)
	cmd.Env = append(append(cleanEnv(), "MACHINE_STORAGE_PATH="+e.store), extra...)
	return runCmd(cmd, stdin)
}

// cachedBuild is what a build script of scripts/ prints (an image's tag or folder: it builds once
// per hash of its recipe), or the environment variable that make e2e set to it.
func cachedBuild(t *testing.T, envVar, script string) string {
	t.Helper()
	if v := os.Getenv(envVar); v != "" {
		return v
	}
	out, err := exec.Command("bash", filepath.Join("..", "..", "scripts", script)).Output()
	if err != nil {
		t.Fatalf("scripts/%s: %v", script, err)
	}
	return strings.TrimSpace(string(out))
}

// runCmd runs cmd with stdin and returns its output and exit code (-1 when it could not run).
func runCmd(cmd *exec.Cmd, stdin string) result {
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var o, er bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &er
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		er.WriteString(err.Error())
	}
	return result{o.String(), er.String(), code}
}

// expectOneLineError checks the standard for bad input: non-zero exit and one clear line.
func expectOneLineError(t *testing.T, r result, wants ...string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("want a failure, got %s", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "machine: ") {
		t.Fatalf("the error line should start with 'machine: ': %s", r)
	}
	if strings.Contains(last, "\n") {
		t.Fatalf("the error should be one line: %q", last)
	}
	for _, w := range wants {
		if !strings.Contains(last, w) {
			t.Errorf("the error should mention %q: %q", w, last)
		}
	}
}

// engine is the local Docker engine, for the tests' own checks.
func engine(t testing.TB) *containerdrv.Driver {
	return &containerdrv.Driver{EngineHost: containerdrv.DefaultEngineHost}
}

// leftovers lists what the engine still has of a machine name or a network.
func leftovers(t *testing.T, names []string, networks []string) []string {
	t.Helper()
	cli, err := engine(t).Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	var left []string
	for _, n := range names {
		if _, err := cli.ContainerInspect(ctx, n); err == nil {
			left = append(left, "container "+n)
		}
		vols, _ := cli.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(filters.Arg("name", n+"-var-lib-docker"))})
		for _, v := range vols.Volumes {
			left = append(left, "volume "+v.Name)
		}
	}
	for _, n := range networks {
		if _, err := cli.NetworkInspect(ctx, n, network.InspectOptions{}); err == nil {
			left = append(left, "network "+n)
		}
	}
	return left
}

// testbedHost starts a bare host (the base image: systemd and sshd, no Docker) from the same
// machinery the container driver ships, with pubKey authorized for root. It is not a machine:
// the tests make it one with the generic driver.
func testbedHost(t *testing.T, name, net, subnet, ip, pubKey string) *containerdrv.Driver {
	t.Helper()
	return testbedHostOf(t, containerdrv.VariantBase, name, net, subnet, ip, pubKey)
}

// testbedHostOf is testbedHost from the built-in image's variant (docker: the engine is there).
func testbedHostOf(t *testing.T, variant, name, net, subnet, ip, pubKey string) *containerdrv.Driver {
	t.Helper()
	return testbedHostRelease(t, variant, containerdrv.DefaultRelease, name, net, subnet, ip, pubKey)
}

// testbedHostRelease is testbedHostOf on a Debian release of the built-in image.
func testbedHostRelease(t *testing.T, variant, release, name, net, subnet, ip, pubKey string) *containerdrv.Driver {
	t.Helper()
	d := &containerdrv.Driver{EngineHost: containerdrv.DefaultEngineHost, Network: net, Subnet: subnet, IP: ip, Variant: variant, Release: release}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := d.Validate(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := d.Create(ctx, drivers.CreateSpec{Name: name, AuthorizedKey: pubKey}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Remove(context.Background()) })
	// The built-in image lets the key in as sshd starts (before, sshd does not answer): wait for
	// that, since tests copy the key to other users right away.
	for i := 0; ; i++ {
		err := exec.Command("docker", "-H", containerdrv.DefaultEngineHost, "exec", d.ContainerName, "test", "-s", "/root/.ssh/authorized_keys").Run()
		if err == nil {
			break
		}
		if i == 300 {
			t.Fatalf("the testbed host %s did not get its key within a minute: %v", name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// ... and until its sshd accepts connections (a host that refuses them is Stopped to the
	// generic driver, as to docker-machine's).
	waitSSHPort(t, name, d.IP)
	return d
}

func sshKey(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	p := filepath.Join(dir, name)
	pub, err := machine.GenerateSSHKey(p, name)
	if err != nil {
		t.Fatal(err)
	}
	return p, pub
}

// execIn runs a command inside a testbed container: only for test set-up (adding users), never
// for what the provisioner does.
func execIn(t *testing.T, containerName string, argv ...string) {
	t.Helper()
	out, err := exec.Command("docker", append([]string{"-H", containerdrv.DefaultEngineHost, "exec", containerName}, argv...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker exec %v: %v\n%s", argv, err, out)
	}
}

// parallel runs fns at once and waits.
func parallel(fns ...func()) {
	var wg sync.WaitGroup
	for _, f := range fns {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	wg.Wait()
}

var _ = container.ListOptions{}

// tinyTar writes a one-file root file system for `docker import`.
func tinyTar(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rootfs.tar")
	writeTar(t, p, map[string][]byte{"hello.txt": []byte("kept across stop and start\n")}, nil)
	return p
}

// writeTar writes files (mode 0755) and, for each link name, bin/NAME -> busybox.
func writeTar(t testing.TB, p string, files map[string][]byte, links []string) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	_ = tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755})
	_ = tw.WriteHeader(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777})
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range links {
		_ = tw.WriteHeader(&tar.Header{Name: "bin/" + l, Typeflag: tar.TypeSymlink, Linkname: "busybox"})
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// runDocker runs the docker CLI with exactly these DOCKER_* variables.
func runDocker(t *testing.T, vars []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(cleanEnv(), vars...)
	return runCmd(cmd, "")
}

// subnetOf returns a network's subnet on the local engine.
func subnetOf(t testing.TB, name string) string {
	t.Helper()
	cli, err := engine(t).Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	n, err := cli.NetworkInspect(context.Background(), name, network.InspectOptions{})
	if err != nil || len(n.IPAM.Config) == 0 {
		t.Fatalf("network %s: %v", name, err)
	}
	return n.IPAM.Config[0].Subnet
}

// certCovers reports whether a machine's server certificate names ip.
func certCovers(t *testing.T, store, name, ip string) bool {
	t.Helper()
	p, err := certs.Load(filepath.Join(store, "machines", name, "server.pem"), filepath.Join(store, "machines", name, "server-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return certs.Covers(p.Cert, ip)
}

// testRegistry is Debian's docker-registry for one test or benchmark, at Addr (gw:port, gw being
// the test network's gateway: this machine's own address there), with TLS from a CA of its own.
type testRegistry struct {
	Addr, Dir, CAFile string
	CAPEM             []byte
	log               bytes.Buffer
}

// newTestRegistry makes the registry's CA and certificate; start serves it once the hosts'
// network (and so gw) exists.
func newTestRegistry(tb testing.TB, gw string, port int) *testRegistry {
	tb.Helper()
	r := &testRegistry{Addr: fmt.Sprintf("%s:%d", gw, port), Dir: tb.TempDir()}
	ca, err := certs.NewCA("test registry", time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := certs.NewServer(ca, "test registry", "registry", []string{gw}, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	r.CAPEM, r.CAFile = ca.CertPEM(), filepath.Join(r.Dir, "ca.pem")
	if err := os.WriteFile(r.CAFile, r.CAPEM, 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := srv.WriteFiles(filepath.Join(r.Dir, "cert.pem"), filepath.Join(r.Dir, "key.pem")); err != nil {
		tb.Fatal(err)
	}
	return r
}

// start serves the registry, with htpasswd auth when htpasswd is given, and waits until it
// listens.
func (r *testRegistry) start(tb testing.TB, htpasswd []byte) {
	tb.Helper()
	cfg := fmt.Sprintf("version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: %s/data}}\nhttp: {addr: \"%s\", tls: {certificate: %s/cert.pem, key: %s/key.pem}}\n",
		r.Dir, r.Addr, r.Dir, r.Dir)
	if htpasswd != nil {
		if err := os.WriteFile(filepath.Join(r.Dir, "htpasswd"), htpasswd, 0o600); err != nil {
			tb.Fatal(err)
		}
		cfg += fmt.Sprintf("auth: {htpasswd: {realm: test, path: %s/htpasswd}}\n", r.Dir)
	}
	if err := os.WriteFile(filepath.Join(r.Dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("docker-registry", "serve", filepath.Join(r.Dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = &r.log, &r.log
	if err := cmd.Start(); err != nil {
		tb.Fatalf("docker-registry (make setup installs it): %v", err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", r.Addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if i == 80 {
			tb.Fatalf("the registry does not listen on %s (%v): %s", r.Addr, err, r.log.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Log is what the registry printed.
func (r *testRegistry) Log() string { return r.log.String() }

// waitSSHPort waits (a minute at most) until ip:22 accepts connections.
func waitSSHPort(t *testing.T, name, ip string) {
	t.Helper()
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "22"), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if i == 300 {
			t.Fatalf("the testbed host %s does not accept SSH connections: %v", name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// addressIn is the address with the last byte last in the subnet of the Docker network netName
// (made by the container driver: a user-configured subnet, so `connect --ip` takes it).
func addressIn(t *testing.T, netName string, last byte) string {
	t.Helper()
	out, err := exec.Command("docker", "-H", containerdrv.DefaultEngineHost, "network", "inspect", "--format", "{{(index .IPAM.Config 0).Subnet}}", netName).Output()
	if err != nil {
		t.Fatalf("network inspect: %v", err)
	}
	_, subnet, err := net.ParseCIDR(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	ip := append(net.IP(nil), subnet.IP.To4()...)
	ip[3] = last
	return ip.String()
}

// reconnect moves a container to another address of its network: disconnected, connected again
// with --ip (what a new DHCP lease does to a VM).
func reconnect(t *testing.T, netName, container, ip string) {
	t.Helper()
	for _, args := range [][]string{{"network", "disconnect", netName, container}, {"network", "connect", "--ip", ip, netName, container}} {
		if out, err := exec.Command("docker", append([]string{"-H", containerdrv.DefaultEngineHost}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("docker %v: %v %s", args, err, out)
		}
	}
}
