//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestPullPrivateRegistry: a real registry (Debian's docker-registry) with TLS from a test CA and
// htpasswd auth, trusted by the hosts through --engine-registry-ca; an image pushed into it is
// pre-pulled onto three hosts at once with the user's Docker config credentials, and every node
// ends with the same digest. A wrong password: the registry's refusal per node, nothing half
// pulled, and a re-run with the right one works.
func TestPullPrivateRegistry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := uniq("e2e-reg")
	octet := os.Getpid()%200 + 20
	subnet := fmt.Sprintf("10.236.%d.0/24", octet)
	gw := fmt.Sprintf("10.236.%d.1", octet)
	registry := newTestRegistry(t, gw, 5443)
	reg, caFile, dir := registry.Addr, registry.CAFile, registry.Dir
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret-pw"), bcrypt.DefaultCost)

	names := []string{p + "-1", p + "-2", p + "-3"}
	t.Cleanup(func() { e.run(append([]string{"rm", "-f", "-y"}, names...)...) })
	res := make([]result, 3)
	var fns []func()
	for i, n := range names {
		fns = append(fns, func() {
			res[i] = e.run("create", "-d", "container", "--container-network", p+"-net", "--container-subnet", subnet,
				"--engine-registry-ca", reg+"="+caFile, n)
		})
	}
	parallel(fns...)
	for i, r := range res {
		if r.code != 0 {
			t.Fatalf("create %s: %s", names[i], r)
		}
	}
	if out := e.must("ssh", names[0], "cat", "/etc/docker/certs.d/"+reg+"/ca.crt"); out != string(registry.CAPEM) {
		t.Fatalf("the registry CA on the host: %q", out)
	}

	// The registry, listening on the test network's gateway (this machine's own address there).
	registry.start(t, []byte("tester:"+string(hash)+"\n"))

	// Push a test image from the first host, logged in with a Docker config of the test's own.
	img := "machine-e2e/" + p + ":1"
	localImage(t, img)
	e.must("pull", "--nodes", names[0], "--from-local", img)
	dockerConfig := []string{"DOCKER_CONFIG=" + filepath.Join(dir, "docker-config")}
	if r := e.dockerWith(dockerConfig, "s3cret-pw\n", names[0], "login", "-u", "tester", "--password-stdin", reg); r.code != 0 {
		t.Fatalf("docker login: %s\nregistry log:\n%s", r, registry.Log())
	}
	remote := reg + "/e2e/busybox:1"
	if r := e.docker(names[0], "tag", img, remote); r.code != 0 {
		t.Fatal(r)
	}
	if r := e.dockerWith(dockerConfig, "", names[0], "push", remote); r.code != 0 {
		t.Fatalf("docker push: %s\nregistry log:\n%s", r, registry.Log())
	}
	e.docker(names[0], "rmi", remote)

	// Pre-pull onto every host with the Docker config's credentials.
	r := e.runWith(dockerConfig, "", append([]string{"pull", "--json", "--nodes", strings.Join(names, ",")}, remote)...)
	if r.code != 0 {
		t.Fatalf("pull: %s", r)
	}
	var results []struct{ Node, Digest, Error string }
	if err := json.Unmarshal([]byte(r.stdout), &results); err != nil || len(results) != 3 {
		t.Fatalf("pull --json: %v %s", err, r)
	}
	for _, x := range results {
		if x.Digest == "" || x.Digest != results[0].Digest {
			t.Fatalf("nodes should end with one digest: %+v", results)
		}
	}
	if strings.Contains(r.stdout+r.stderr, "s3cret-pw") {
		t.Fatal("the password was printed")
	}

	// A wrong password: the registry's refusal per node; nothing half-pulled; then right.
	for _, n := range names[1:] {
		e.docker(n, "rmi", remote)
	}
	r = e.runWith(nil, "wrong-pw\n", "pull", "--nodes", strings.Join(names[1:], ","), "--username", "tester", "--password-stdin", remote)
	if r.code == 0 {
		t.Fatalf("a wrong password should fail: %s", r)
	}
	for _, n := range names[1:] {
		if !strings.Contains(r.stdout, n) || !strings.Contains(strings.ToLower(r.stdout), "unauthorized") {
			t.Errorf("the refusal should be reported for %s: %s", n, r)
		}
		if d := e.docker(n, "image", "inspect", remote); d.code == 0 {
			t.Errorf("%s holds the image after a refused pull", n)
		}
	}
	if strings.Contains(r.stdout+r.stderr, "wrong-pw") {
		t.Fatal("the password was printed")
	}
	r = e.runWith(nil, "s3cret-pw\n", "pull", "--nodes", strings.Join(names[1:], ","), "--username", "tester", "--password-stdin", remote)
	if r.code != 0 {
		t.Fatalf("re-run with the right password: %s", r)
	}

	// swarm up pre-pulls a cluster file's private image with the same credentials as pull.
	for _, n := range names {
		e.docker(n, "rmi", remote)
	}
	file := filepath.Join(dir, "cluster.yml")
	cluster := fmt.Sprintf("name: %s\ndriver: container\nnodes:\n  - {name: %s, role: manager}\n  - {name: %s}\n  - {name: %s}\nimages: [%s]\n", p, names[0], names[1], names[2], remote)
	if err := os.WriteFile(file, []byte(cluster), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.runWith(dockerConfig, "", "swarm", "up", "-f", file); r.code != 0 {
		t.Fatalf("swarm up with a private image: %s", r)
	}
	for _, n := range names {
		if d := e.docker(n, "image", "inspect", remote); d.code != 0 {
			t.Errorf("%s lacks the private image after swarm up: %s", n, d)
		}
	}
}
