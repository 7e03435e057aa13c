package machine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/machine-tools/machine/drivers"
	"github.com/machine-tools/machine/internal/dockerctx"
	"github.com/machine-tools/machine/internal/safetext"
	"github.com/machine-tools/machine/internal/shellenv"
	"github.com/machine-tools/machine/internal/sshclient"
)

// EnvVar is one variable that points the docker CLI at a machine.
type EnvVar = shellenv.Var

// EnvVarNames are the variables EnvVars sets (without a proxy variable).
var EnvVarNames = []string{"DOCKER_TLS_VERIFY", "DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_MACHINE_NAME"}

// EnvVars are the variables that point the docker CLI at the machine, as docker-machine set
// them. With noProxy, the machine's address is added to NO_PROXY (or no_proxy, whichever this
// environment uses).
func (h *Host) EnvVars(noProxy bool) ([]EnvVar, error) {
	if h.SSH.Host == "" {
		return nil, fmt.Errorf("machine %q has no address: its create did not finish (remove it with `machine rm -f %s`)", h.Name, h.Name)
	}
	vars := []EnvVar{
		{Name: "DOCKER_TLS_VERIFY", Value: "1"},
		{Name: "DOCKER_HOST", Value: h.DockerHost()},
		{Name: "DOCKER_CERT_PATH", Value: h.StorePath()},
		{Name: "DOCKER_MACHINE_NAME", Value: h.Name},
	}
	if noProxy {
		k, v := NoProxyVar()
		switch {
		case v == "":
			v = h.IP()
		case !containsItem(v, h.IP()):
			v += "," + h.IP()
		}
		vars = append(vars, EnvVar{Name: k, Value: v})
	}
	return vars, nil
}

// UnsetNames are the variables `env -u` unsets: EnvVarNames, and the proxy variable's with noProxy.
func UnsetNames(noProxy bool) []string {
	names := slices.Clone(EnvVarNames)
	if noProxy {
		v, _ := NoProxyVar()
		names = append(names, v)
	}
	return names
}

// NoProxyVar is the proxy exception variable this environment uses, and its value.
func NoProxyVar() (string, string) {
	if v := os.Getenv("no_proxy"); v != "" {
		return "no_proxy", v
	}
	return "NO_PROXY", os.Getenv("NO_PROXY")
}

func containsItem(list, item string) bool {
	for _, x := range strings.Split(list, ",") {
		if strings.TrimSpace(x) == item {
			return true
		}
	}
	return false
}

// WriteDockerContext creates or updates the Docker context named after the machine.
func (h *Host) WriteDockerContext() error {
	if h.SSH.Host == "" {
		return fmt.Errorf("machine %q has no address: its create did not finish", h.Name)
	}
	var files [3][]byte
	for i, p := range []string{h.CAPath(), h.CertPath(), h.KeyPath()} {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files[i] = b
	}
	return dockerctx.Write(h.Name, h.DockerHost(), files[0], files[1], files[2])
}

// RemoveDockerContext removes the machine's Docker context, saying whether there was one.
func RemoveDockerContext(name string) (bool, error) { return dockerctx.Remove(name) }

// Active names the machine whose engine URL is dockerHost (what DOCKER_HOST says).
func (a *API) Active(dockerHost string) (string, error) {
	if dockerHost == "" {
		return "", fmt.Errorf("no active machine: DOCKER_HOST is not set (eval \"$(machine env NAME)\")")
	}
	names, err := a.List()
	if err != nil {
		return "", err
	}
	for _, n := range names {
		if h, err := a.Load(n); err == nil && h.SSH.Host != "" && (h.URL() == dockerHost || h.DockerHost() == dockerHost) {
			return n, nil
		}
	}
	return "", fmt.Errorf("no active machine: DOCKER_HOST=%s is none of this store's machines", dockerHost)
}

// TrustHostKey pins the SSH host keys the machine and its jump hosts offer now (after a
// rebuild), and returns them with the addresses they were read at, the machine's last.
func (h *Host) TrustHostKey(ctx context.Context) ([]sshclient.Pinned, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return sshclient.TrustKeys(ctx, h.SSHConfig())
}

// EngineVersion asks the machine's engine its version over TLS.
func (h *Host) EngineVersion(ctx context.Context) (string, error) {
	cli, err := h.Docker()
	if err != nil {
		return "", err
	}
	defer cli.Close()
	v, err := cli.ServerVersion(ctx)
	if err != nil {
		return "", err
	}
	return v.Version, nil
}

// Inspect is the machine's record as `machine inspect` prints it: the stored record with the
// driver's settings, the engine URL, the folder and, for drivers that describe their hosts,
// what the driver sees now.
// Engine environment values that look like credentials are masked (safetext.MaskEnv).
func (h *Host) Inspect(ctx context.Context) map[string]any {
	var rec map[string]any
	m := *h.Machine
	m.Engine.Env = nil
	for _, kv := range h.Machine.Engine.Env {
		m.Engine.Env = append(m.Engine.Env, safetext.MaskEnv(kv))
	}
	b, _ := json.Marshal(&m)
	_ = json.Unmarshal(b, &rec)
	driver := h.DriverJSON()
	if driver == nil {
		driver = map[string]any{}
	}
	h.dockerMachineFields(rec, driver, m.Engine.Env)
	rec["Driver"] = safetext.MaskSecrets(driver) // a cloud's token given as a flag
	rec["URL"] = h.URL()
	rec["StorePath"] = h.StorePath()
	if d, ok := h.Driver.(drivers.Describer); ok {
		rec["Host"] = d.Describe(ctx)
	}
	return rec
}

// dockerMachineFields adds to an inspect record the fields of docker-machine 0.16's host JSON
// that programs driving docker-machine read (GitLab Runner: HostOptions.AuthOptions.StorePath,
// where ca.pem, cert.pem and key.pem are; scripts: Driver.IPAddress, SSHPort, SSHUser, SSHKeyPath),
// at their paths and with their meanings. A driver's own fields of the same name stay, unless
// they are empty (a record made before the driver kept them).
func (h *Host) dockerMachineFields(rec, driver map[string]any, env []string) {
	dir := h.StorePath()
	storeRoot := filepath.Dir(filepath.Dir(dir))
	certs := filepath.Join(storeRoot, "certs")
	for k, v := range map[string]any{"IPAddress": h.IP(), "MachineName": h.Name, "SSHUser": h.SSH.User, "SSHPort": h.SSH.Port,
		"SSHKeyPath": h.SSH.KeyPath, "StorePath": storeRoot} {
		if cur, own := driver[k]; !own || cur == nil || cur == "" || cur == float64(0) {
			driver[k] = v
		}
	}
	e := h.Engine
	rec["ConfigVersion"] = 3
	rec["HostOptions"] = map[string]any{
		"Driver": h.DriverName, "Memory": 0, "Disk": 0,
		"EngineOptions": map[string]any{
			"ArbitraryFlags": nonNil(e.Opts), "Env": nonNil(env), "InsecureRegistry": nonNil(e.InsecureRegistries),
			"Labels": nonNil(e.Labels), "LogLevel": "", "StorageDriver": e.StorageDriver, "SelinuxEnabled": false,
			"TLSVerify": true, "RegistryMirror": nonNil(e.RegistryMirrors), "InstallURL": e.InstallURL,
		},
		"AuthOptions": map[string]any{
			"CertDir": certs, "CaCertPath": filepath.Join(certs, "ca.pem"), "CaPrivateKeyPath": filepath.Join(certs, "ca-key.pem"),
			"CaCertRemotePath": "", "ServerCertPath": h.ServerCertPath(), "ServerKeyPath": h.ServerKeyPath(),
			"ClientKeyPath": filepath.Join(certs, "key.pem"), "ServerCertRemotePath": "", "ServerKeyRemotePath": "",
			"ClientCertPath": filepath.Join(certs, "cert.pem"), "ServerCertSANs": nonNil(h.TLSSANs), "StorePath": dir,
		},
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
