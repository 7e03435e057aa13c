package machine

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/client"
	"golang.org/x/crypto/ssh"

	"github.com/machine-tools/machine/drivers"
	"github.com/machine-tools/machine/drivers/plugin"
	"github.com/machine-tools/machine/internal/certs"
	"github.com/machine-tools/machine/internal/fsutil"
	"github.com/machine-tools/machine/internal/runner"
	"github.com/machine-tools/machine/internal/sshclient"
	"github.com/machine-tools/machine/internal/store"
	"github.com/machine-tools/machine/internal/wait"
	"github.com/machine-tools/machine/provision"
)

// Host is a loaded machine with its driver.
type Host struct {
	*store.Machine
	Driver drivers.Driver
	reg    drivers.Registration
	api    *API
	// following: FollowAddress is under way (its own dials do not follow again).
	following bool
}

// Load reads a machine and its driver.
func (a *API) Load(name string) (*Host, error) {
	m, err := a.Store.Load(name)
	if err != nil {
		return nil, err
	}
	h := &Host{Machine: m, api: a}
	if m.DriverName == "" {
		return h, nil // a record from a create that died before its first save
	}
	reg, err := a.Drivers.Get(m.DriverName)
	if err != nil {
		// A plug-in's machine: loaded without starting the plug-in (each call starts it).
		reg = plugin.Loaded(m.DriverName, a.owner())
	}
	d := reg.New()
	if len(m.Driver) > 0 {
		if err := json.Unmarshal(m.Driver, d); err != nil {
			return nil, fmt.Errorf("machine %q: its driver settings are damaged: %w", name, err)
		}
	}
	h.Driver, h.reg = d, reg
	h.setDialer()
	return h, nil
}

// Save writes the machine's record with its driver's current settings.
func (h *Host) Save() error {
	if h.Driver != nil {
		b, err := json.Marshal(h.Driver)
		if err != nil {
			return err
		}
		h.Machine.Driver = b
	}
	// docker-machine's ConfigVersion and HostOptions, where programs that read its config.json
	// look for them (a record of an older version gets them at its next save). The Driver section
	// stays the driver's own: docker-machine's names there would be read back into it.
	if h.Dir() != "" {
		rec := map[string]any{}
		h.dockerMachineFields(rec, map[string]any{}, h.Engine.Env)
		h.Machine.ConfigVersion, h.Machine.HostOptions = 3, rec["HostOptions"].(map[string]any)
	}
	return h.api.Store.Save(h.Machine)
}

// URL is the engine's address: tcp://IP:2376.
func (h *Host) URL() string {
	return "tcp://" + net.JoinHostPort(h.IP(), strconv.Itoa(h.EnginePort()))
}

// setEndpoint records where the driver says the host is reached.
func (h *Host) setEndpoint(ep drivers.Endpoint) {
	h.SSH.Port, h.SSH.User = ep.SSHPort, ep.SSHUser
	if ep.SSHKeyPath != "" {
		h.SSH.KeyPath, h.SSH.UseAgent = ep.SSHKeyPath, false
	}
	if ep.SSHHost != "" && ep.SSHHost != ep.IP {
		h.SSH.Host, h.Address = ep.SSHHost, ep.IP
		return
	}
	h.SSH.Host, h.Address = ep.IP, ""
}

// SetIP records a new address of the machine (after a start gave it another one).
func (h *Host) SetIP(ip string) {
	if h.Address != "" {
		h.Address = ip
		return
	}
	h.SSH.Host = ip
}

// ProbeAddress lets a driver that learns the host's address from inside it (drivers.AddressProber)
// do so over c, and records the result. Other drivers are left alone.
func (h *Host) ProbeAddress(ctx context.Context, c *sshclient.Client) error {
	p, ok := h.Driver.(drivers.AddressProber)
	if !ok {
		return nil
	}
	run := func(ctx context.Context, argv ...string) (string, error) {
		out, err := c.Run(ctx, nil, argv...)
		return string(out), err
	}
	if err := p.ProbeAddress(ctx, run); err != nil {
		return err
	}
	ep, err := h.Driver.Endpoint(ctx)
	if err != nil {
		return err
	}
	if ep.IP == "" {
		return errors.New("the driver found no address for the host")
	}
	user := h.SSH.User
	h.setEndpoint(ep)
	h.SSH.User = user
	return h.Save()
}

// SSHConfig is how to reach the machine over SSH.
func (h *Host) SSHConfig() sshclient.Config {
	cfg := sshclient.Config{
		Machine:    h.Name,
		Host:       h.SSH.Host,
		Port:       h.SSH.Port,
		User:       h.SSH.User,
		KeyPath:    h.SSH.KeyPath,
		UseAgent:   h.SSH.UseAgent,
		KnownHosts: h.KnownHostsPath(),
		Insecure:   h.SSH.InsecureHostKey,
		Timeout:    time.Duration(h.SSH.ConnectTimeout) * time.Second,
		KeepAlive:  time.Duration(h.SSH.ServerAliveInterval) * time.Second,
	}
	for _, j := range h.SSH.Jumps {
		hop := sshclient.Config{Host: j.Host, Port: j.Port, User: j.User, KeyPath: j.KeyPath}
		if hop.KeyPath == "" {
			hop.KeyPath, hop.UseAgent = h.SSH.KeyPath, h.SSH.UseAgent
		}
		cfg.Jumps = append(cfg.Jumps, hop)
	}
	return cfg
}

// Dial opens the machine's SSH connection, retrying until ctx ends.
//
// A host that does not answer at its recorded address is asked of its driver (a container host
// reconnected with another IP, a VM with a new lease): when the driver knows another address, the
// machine follows it (FollowAddress: the record, the pinned host keys, and the engine's
// certificate reissued for it), then the connection is made there. The recorded address gets half
// of ctx's time first (firstDialLimit without a deadline; the rest when the host has not moved), and following a host that moved has
// its own followLimit: a caller's short bound for the connection (`machine ssh`'s 20 s) is not
// what the follow, which restarts the engine, must fit in. Cancelling ctx still ends it.
func (h *Host) Dial(ctx context.Context) (*sshclient.Client, error) {
	if err := h.NeedsSSH(); err != nil {
		return nil, err
	}
	if h.following || h.Driver == nil {
		return sshclient.Dial(ctx, h.SSHConfig())
	}
	firstLimit := firstDialLimit // no deadline: the driver is asked after this long
	if dl, ok := ctx.Deadline(); ok {
		firstLimit = time.Until(dl) / 2
	}
	first, cancelFirst := context.WithTimeout(ctx, firstLimit)
	c, err := sshclient.Dial(first, h.SSHConfig())
	cancelFirst()
	if err == nil || !unreachable(err) || errors.Is(ctx.Err(), context.Canceled) {
		return c, err
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), followLimit)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		if errors.Is(ctx.Err(), context.Canceled) {
			cancel() // an interrupt ends the follow; the caller's deadline does not
		}
	})
	defer stop()
	moved, ferr := h.FollowAddress(fctx, nil)
	switch {
	case ferr != nil:
		return nil, fmt.Errorf("%w; its driver says it is at another address now, and following it failed: %v", err, ferr)
	case moved:
		return sshclient.Dial(fctx, h.SSHConfig())
	case ctx.Err() == nil:
		if c, err = sshclient.Dial(ctx, h.SSHConfig()); err == nil || !unreachable(err) {
			return c, err
		}
	}
	if _, given := h.Driver.(drivers.Readdresser); given {
		return nil, fmt.Errorf("%w (if its host has another address now: machine set-address %s ADDRESS)", err, h.Name)
	}
	return nil, err
}

// firstDialLimit is how long a connection without a deadline tries the recorded address before
// the driver is asked whether the host is somewhere else now.
const firstDialLimit = 30 * time.Second

// followLimit bounds following a host to its new address (the engine provisioned again there).
const followLimit = 3 * time.Minute

// unreachable says whether a connection failed for want of the host at that address (no route,
// refused, timed out), not for what it answered.
func unreachable(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "no route to host") || strings.Contains(s, "i/o timeout") || strings.Contains(s, "connection refused") || strings.Contains(s, "host is unreachable")
}

// FollowAddress makes the machine follow its host to another address when its driver reports
// one: the record and the pinned host keys are updated and the engine is provisioned again with
// a certificate for the new address (its engine restarts). false when the address is the same.
func (h *Host) FollowAddress(ctx context.Context, progress func(string)) (bool, error) {
	old := h.IP()
	ip, changed := h.AddressChanged(ctx)
	if !changed {
		return false, nil
	}
	if h.api != nil {
		h.api.Log.Info("the machine's address changed", "machine", h.Name, "from", old, "to", ip)
	}
	if progress != nil {
		progress(fmt.Sprintf("its host is at %s now (was %s): following it", ip, old))
	}
	h.following = true
	defer func() { h.following = false }()
	if _, err := h.Reprovision(ctx, ProvisionOptions{ReissueCert: true, Progress: progress}); err != nil {
		return true, err
	}
	return true, nil
}

// Refresh follows the machine to its host's new address when its engine does not accept a
// connection at the recorded one (within 3 s) and its driver reports another: what env and url
// hand to other programs is then where the host is. A machine reached through jump hosts, or
// whose engine is down where it was, is left as it is.
func (h *Host) Refresh(ctx context.Context, progress func(string)) error {
	if h.Driver == nil || len(h.SSH.Jumps) > 0 || h.IP() == "" {
		return nil
	}
	d := net.Dialer{Timeout: 3 * time.Second}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(h.IP(), strconv.Itoa(h.EnginePort())))
	if err == nil {
		c.Close()
		return nil
	}
	if _, changed := h.AddressChanged(ctx); !changed {
		return nil
	}
	fctx, cancel := context.WithTimeout(ctx, followLimit)
	defer cancel()
	_, err = h.FollowAddress(fctx, progress)
	return err
}

// NeedsSSH is an error for a machine machine has no SSH to (the none driver's), naming why.
func (h *Host) NeedsSSH() error {
	if h.reg.NoSSH {
		return fmt.Errorf("machine %q is an engine machine did not make (the %s driver): it has no SSH, so ssh, scp, provision and upgrade cannot reach it", h.Name, h.DriverName)
	}
	return nil
}

// Runner returns a runner for root on the host (through sudo for other users).
func Runner(c *sshclient.Client) runner.Runner {
	if c.Config().User == "root" {
		return c
	}
	return runner.Sudo{R: c}
}

// TLSConfig is the client side of the machine's engine TLS.
func (h *Host) TLSConfig() (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(h.CertPath(), h.KeyPath())
	if err != nil {
		return nil, fmt.Errorf("machine %q: reading its client certificate: %w (regenerate with `machine regenerate-certs %s`)", h.Name, err, h.Name)
	}
	caPEM, err := os.ReadFile(h.CAPath())
	if err != nil {
		return nil, fmt.Errorf("machine %q: reading its CA: %w", h.Name, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("machine %q: %s holds no certificate", h.Name, h.CAPath())
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// EngineAnswerLimit bounds the wait for the head of an engine's answer to any request (its body
// may stream for longer: a pull's progress, an image load's). The engine's slowest answers
// come well within it (a swarm join gives up after 20 s).
const EngineAnswerLimit = 60 * time.Second

// Docker opens the machine's engine over TLS, verifying its certificate (through the SSH jump
// hosts, when the machine has them). The API version is negotiated with the engine on first use.
func (h *Host) Docker() (*client.Client, error) {
	return h.docker(h.URL(), "")
}

// DockerAt opens the machine's engine at another address of its host (where its driver says the
// host is now), before the machine follows it: read-only callers (a plan) read it there, the
// engine's certificate verified for the recorded address, which is what it was issued for.
func (h *Host) DockerAt(ip string) (*client.Client, error) {
	return h.docker("tcp://"+net.JoinHostPort(ip, strconv.Itoa(h.EnginePort())), h.IP())
}

func (h *Host) docker(url, serverName string) (*client.Client, error) {
	tc, err := h.TLSConfig()
	if err != nil {
		return nil, err
	}
	tc.ServerName = serverName
	dial := (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	if len(h.SSH.Jumps) > 0 { // the engine is reached from the last jump host, through the chain
		cfg := h.SSHConfig()
		dial = func(ctx context.Context, _, addr string) (net.Conn, error) {
			return sshclient.DialThrough(ctx, cfg, addr)
		}
	}
	// Every call has a deadline even where its caller set none: an engine that accepts the
	// connection and then says nothing (a paused container, a frozen VM) fails the handshake
	// or the wait for an answer's head instead of hanging the command.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc, DialContext: dial,
		TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: EngineAnswerLimit}}
	return client.NewClientWithOpts(client.WithHost(url), client.WithHTTPClient(hc), client.WithAPIVersionNegotiation())
}

// GenerateSSHKey writes a new ed25519 key pair (0600 private key, .pub beside it) and returns
// the public key as an authorized_keys line.
func GenerateSSHKey(path, comment string) (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return "", err
	}
	if err := fsutil.WriteFileAtomic(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", err
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	line := string(ssh.MarshalAuthorizedKey(sp))
	line = line[:len(line)-1] + " " + comment + "\n"
	return line, fsutil.WriteFileAtomic(path+".pub", []byte(line), 0o644)
}

// ProvisionOptions tune Provision.
type ProvisionOptions struct {
	Progress func(string)
	// ReissueCert forces a new server certificate (regenerate-certs).
	ReissueCert bool
	// AllowReload: when only options dockerd reloads changed, it gets SIGHUP, not a restart.
	AllowReload bool
}

// ProvisionResult says what Provision did.
type ProvisionResult struct {
	*provision.Result
	CertIssued bool
}

// Provision makes the host a TLS Docker host and proves it with a TLS call to the engine.
func (h *Host) Provision(ctx context.Context, c *sshclient.Client, opt ProvisionOptions) (*ProvisionResult, error) {
	say := func(s string) {
		if opt.Progress != nil {
			opt.Progress(s)
		}
	}
	auth, err := h.api.Store.Authority(ctx)
	if err != nil {
		return nil, err
	}
	r := Runner(c)
	if h.SSH.User != "root" {
		if _, err := c.Run(ctx, nil, "sudo", "-n", "true"); err != nil {
			return nil, fmt.Errorf("user %q on %s cannot use sudo without a password (%v): give it passwordless sudo (a line `%s ALL=(ALL) NOPASSWD:ALL` in /etc/sudoers.d/) or connect as root", h.SSH.User, h.SSH.Host, firstLine(err), h.SSH.User)
		}
	}
	issued, err := h.ensureCerts(ctx, auth, opt.ReissueCert)
	if err != nil {
		return nil, err
	}
	serverCert, err := os.ReadFile(h.ServerCertPath())
	if err != nil {
		return nil, err
	}
	serverKey, err := os.ReadFile(h.ServerKeyPath())
	if err != nil {
		return nil, err
	}
	p := &provision.Provisioner{R: r, Log: h.api.Log, Progress: opt.Progress}
	res, err := p.Run(ctx, provision.Spec{
		Engine: h.Engine, DriverName: h.DriverName,
		CACert: auth.CA.CertPEM(), ServerCert: serverCert, ServerKey: serverKey,
		AllowReload: opt.AllowReload && !issued,
	})
	if err != nil {
		return nil, err
	}
	say("checking the engine over TLS")
	if err := h.WaitEngine(ctx, h.EngineWait()); err != nil {
		return nil, err
	}
	return &ProvisionResult{Result: res, CertIssued: issued}, nil
}

// ensureCerts copies the store's CA and client certificate into the machine's folder (where
// DOCKER_CERT_PATH points) and issues the server certificate when it is missing, does not
// cover the machine's addresses, or force is set.
func (h *Host) ensureCerts(ctx context.Context, auth *certs.Authority, force bool) (bool, error) {
	for _, cp := range [][2]string{{auth.CAPath(), h.CAPath()}, {auth.CertPath(), h.CertPath()}, {auth.KeyPath(), h.KeyPath()}} {
		b, err := os.ReadFile(cp[0])
		if err != nil {
			return false, err
		}
		mode := os.FileMode(0o644)
		if cp[1] == h.KeyPath() {
			mode = 0o600
		}
		if old, err := os.ReadFile(cp[1]); err == nil && string(old) == string(b) {
			continue
		}
		if err := fsutil.WriteFileAtomic(cp[1], b, mode); err != nil {
			return false, err
		}
	}
	hosts := h.certHosts(ctx)
	if !force {
		if p, err := certs.Load(h.ServerCertPath(), h.ServerKeyPath()); err == nil {
			if certs.Covers(p.Cert, hosts...) && p.Cert.CheckSignatureFrom(auth.CA.Cert) == nil && time.Now().Before(p.Cert.NotAfter) {
				return false, nil
			}
		}
	}
	srv, err := certs.NewServer(auth.CA, store.Org, h.Name, hosts, time.Now())
	if err != nil {
		return false, err
	}
	if err := srv.WriteFiles(h.ServerCertPath(), h.ServerKeyPath()); err != nil {
		return false, err
	}
	h.CertHosts = hosts
	return true, h.Save()
}

// certHosts are every name and address the engine is reached by.
func (h *Host) certHosts(ctx context.Context) []string {
	hosts := []string{h.IP(), h.Name}
	if h.Driver != nil {
		if ep, err := h.Driver.Endpoint(ctx); err == nil {
			hosts = append(hosts, ep.IP)
			hosts = append(hosts, ep.Addresses...)
		}
	}
	hosts = append(hosts, h.TLSSANs...)
	hosts = append(hosts, h.Siblings...)
	if len(h.SSH.Jumps) > 0 { // the docker CLI reaches it through `machine tunnel` on 127.0.0.1
		hosts = append(hosts, "127.0.0.1")
	}
	var out []string
	for _, x := range hosts {
		if x != "" && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// WaitEngine calls the engine over TLS until it answers or the time is up.
func (h *Host) WaitEngine(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	cli, err := h.Docker()
	if err != nil {
		return err
	}
	defer cli.Close()
	var last error
	for {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := cli.Info(pctx)
		pcancel()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("the engine of %q does not answer over TLS at %s: %w", h.Name, h.URL(), last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// EngineWait is how long the engine may take to answer after a (re)start: 90 s, or the driver's
// own figure for slow hosts.
func (h *Host) EngineWait() time.Duration { return h.reg.EngineWaitOrDefault() }

// AddressChanged reports the machine's current address when it differs from the recorded one.
func (h *Host) AddressChanged(ctx context.Context) (string, bool) {
	if h.Driver == nil {
		return "", false
	}
	ep, err := h.Driver.Endpoint(ctx)
	if err != nil || ep.IP == "" || ep.IP == h.IP() {
		return "", false
	}
	return ep.IP, true
}

// Readdress is AddressChanged for every driver: one that learns the address from inside the host
// (drivers.AddressProber) is asked over SSH, and the new address is recorded.
func (h *Host) Readdress(ctx context.Context) (string, bool, error) {
	if _, ok := h.Driver.(drivers.AddressProber); !ok {
		ip, changed := h.AddressChanged(ctx)
		return ip, changed, nil
	}
	old := h.IP()
	dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	c, err := h.Dial(dctx)
	cancel()
	if err != nil {
		return "", false, err
	}
	defer c.Close()
	if err := h.ProbeAddress(ctx, c); err != nil {
		return "", false, err
	}
	return h.IP(), h.IP() != old, nil
}

func firstLine(err error) string {
	s := err.Error()
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}

// ErrHalfMade marks a machine whose create did not finish.
var ErrHalfMade = errors.New("the machine's create did not finish")

// RebootOverSSH reboots the host and waits until SSH and the engine answer again.
func (h *Host) RebootOverSSH(ctx context.Context, within time.Duration) error {
	c, err := h.Dial(ctx)
	if err != nil {
		return err
	}
	r := Runner(c)
	// A marker on /run (a tmpfs) tells the old system from the new one.
	const marker = "/run/machine-reboot-marker"
	if _, err := r.Run(ctx, nil, "touch", marker); err != nil {
		c.Close()
		return err
	}
	// The connection drops as the host goes down: that is the expected end of this command.
	_, _ = r.Run(ctx, nil, "sh", "-c", "(sleep 1; systemctl reboot || reboot) >/dev/null 2>&1 &")
	c.Close()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if err := wait.Sleep(ctx, time.Second); err != nil {
			return fmt.Errorf("%s: waiting for it to come back after the reboot: %w", h.Name, err)
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		probe, err := sshclient.DialOnce(pctx, h.SSHConfig())
		if err != nil {
			cancel()
			continue
		}
		_, err = Runner(probe).Run(pctx, nil, "test", "-e", marker)
		probe.Close()
		cancel()
		var ce *runner.CommandError
		if errors.As(err, &ce) {
			break // the marker is gone: the new system answers
		}
	}
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	c2, err := h.Dial(dctx)
	if err != nil {
		return fmt.Errorf("%s did not come back after the reboot: %w", h.Name, err)
	}
	c2.Close()
	return h.WaitEngine(ctx, time.Until(deadline))
}

// learnSiblings records the host's other global addresses on the interface that has its IP
// (`ip -o addr show`): a dual-stack host reached by one family gets a certificate for both.
// A host without ip(8) keeps none.
func (h *Host) learnSiblings(ctx context.Context, c *sshclient.Client) {
	out, err := c.Run(ctx, nil, "ip", "-o", "addr", "show")
	if err != nil {
		return
	}
	byIf := map[string][]string{}
	dev := ""
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || (f[2] != "inet" && f[2] != "inet6") || (f[2] == "inet6" && !strings.Contains(line, "scope global")) {
			continue
		}
		addr := strings.Split(f[3], "/")[0]
		byIf[f[1]] = append(byIf[f[1]], addr)
		if addr == h.IP() {
			dev = f[1]
		}
	}
	h.Siblings = nil
	for _, a := range byIf[dev] {
		if a != h.IP() {
			h.Siblings = append(h.Siblings, a)
		}
	}
}
