package machine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/machine-tools/machine/drivers"
	"github.com/machine-tools/machine/provision"
)

// Op is what the lifecycle does to a running or stopped machine.
type Op string

// The lifecycle operations, named as the CLI's commands.
const (
	OpStart   Op = "start"
	OpStop    Op = "stop"
	OpRestart Op = "restart"
	OpKill    Op = "kill"
)

// Outcome says what an operation did.
type Outcome struct {
	Op Op
	// NewAddress is set when the machine came back at another address; its certificate was then
	// re-issued for it.
	NewAddress string
}

// String is the line the CLI prints: "started", or "started; its address changed to ...".
func (o Outcome) String() string {
	done := map[Op]string{OpStart: "started", OpStop: "stopped", OpKill: "killed", OpRestart: "restarted"}[o.Op]
	if o.NewAddress != "" {
		return fmt.Sprintf("%s; its address changed to %s and its certificate was re-issued", done, o.NewAddress)
	}
	return done
}

// AlreadyError is a start of a running machine or a stop of a stopped one, in docker-machine's
// words.
type AlreadyError struct {
	Name  string
	State drivers.State
}

func (e *AlreadyError) Error() string {
	return fmt.Sprintf("Machine %q is already %s.", e.Name, strings.ToLower(string(e.State)))
}

// ErrNotRunning is a machine whose host is not running, in docker-machine's words.
var ErrNotRunning = errors.New("Host is not running")

// Running says whether the machine's host runs now: nil, or ErrNotRunning (with the state and
// the fix), or the driver's error.
func (h *Host) Running(ctx context.Context) error {
	if h.Driver == nil {
		return fmt.Errorf("machine %q did not finish its create: remove it with `machine rm -f %s`", h.Name, h.Name)
	}
	st, err := h.Driver.State(ctx)
	if err != nil {
		return err
	}
	if st != drivers.Running {
		if _, given := h.Driver.(drivers.Readdresser); given {
			// Its SSH does not answer at the recorded address: off, or somewhere else now.
			return fmt.Errorf("%w (%s is %s: nothing answers SSH at %s; start the host, or, if it has another address now, `machine set-address %s ADDRESS`)", ErrNotRunning, h.Name, st, h.IP(), h.Name)
		}
		return fmt.Errorf("%w (%s is %s: start it with `machine start %s`)", ErrNotRunning, h.Name, st, h.Name)
	}
	return nil
}

// Do runs a lifecycle operation through the machine's driver. After a start or restart it waits
// for the engine over TLS; when the machine came back at another address it re-issues the
// certificate and installs it (progress hears that).
func (h *Host) Do(ctx context.Context, op Op, progress func(string)) (Outcome, error) {
	out := Outcome{Op: op}
	if h.Driver == nil {
		return out, fmt.Errorf("machine %q did not finish its create", h.Name)
	}
	st, canStart := h.Driver.(drivers.Starter)
	var err error
	switch op {
	case OpStart, OpStop:
		if !canStart {
			return out, fmt.Errorf("%s driver does not support %s (its host is not the driver's to power)", h.DriverName, op)
		}
		want := map[Op]drivers.State{OpStart: drivers.Running, OpStop: drivers.Stopped}[op]
		if now, serr := h.Driver.State(ctx); serr == nil && now == want {
			return out, &AlreadyError{Name: h.Name, State: want}
		}
		if op == OpStart {
			err = st.Start(ctx)
		} else {
			err = st.Stop(ctx)
		}
	case OpKill:
		k, ok := h.Driver.(drivers.Killer)
		if !ok {
			return out, fmt.Errorf("%s driver does not support kill (its host is not the driver's to power)", h.DriverName)
		}
		err = k.Kill(ctx)
	case OpRestart:
		if r, ok := h.Driver.(drivers.Restarter); ok {
			err = r.Restart(ctx)
		} else if h.reg.RestartOverSSH {
			err = h.RebootOverSSH(ctx, 5*time.Minute)
		} else if canStart {
			if err = st.Stop(ctx); err == nil {
				err = st.Start(ctx)
			}
		} else {
			return out, fmt.Errorf("%s driver does not support restart", h.DriverName)
		}
	default:
		return out, fmt.Errorf("unknown operation %q", op)
	}
	if err != nil || (op != OpStart && op != OpRestart) {
		return out, err
	}
	ip, changed, err := h.Readdress(ctx)
	if err != nil {
		return out, fmt.Errorf("reading its address after the %s: %w", op, err)
	}
	if changed {
		if _, err := h.Reprovision(ctx, ProvisionOptions{ReissueCert: true, Progress: progress}); err != nil {
			return out, fmt.Errorf("the address changed to %s and the new certificate could not be installed: %w", ip, err)
		}
		out.NewAddress = ip
		return out, nil
	}
	return out, h.WaitEngine(ctx, h.EngineWait())
}

// Reprovision provisions a made machine again (machine provision, regenerate-certs): its
// address is read again first, and a changed one gets a new certificate.
func (h *Host) Reprovision(ctx context.Context, opt ProvisionOptions) (*ProvisionResult, error) {
	if h.Driver == nil || h.SSH.Host == "" {
		return nil, fmt.Errorf("machine %q did not finish its create: remove it with `machine rm -f %s` and create it again", h.Name, h.Name)
	}
	before := h.IP()
	if ip, changed := h.AddressChanged(ctx); changed {
		h.SetIP(ip)
		if err := h.Save(); err != nil {
			return nil, err
		}
		if hk, ok := h.Driver.(drivers.HostKeyReader); ok && !h.SSH.InsecureHostKey { // its keys at the new address
			if _, err := h.pinHostKeys(ctx, hk); err != nil {
				return nil, err
			}
		}
	}
	dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	cl, err := h.Dial(dctx)
	cancel()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	if err := h.ProbeAddress(ctx, cl); err != nil {
		return nil, err
	}
	if h.IP() != before {
		if opt.Progress != nil {
			opt.Progress(fmt.Sprintf("its address changed from %s to %s; re-issuing its certificate", before, h.IP()))
		}
		opt.ReissueCert = true
	}
	return h.Provision(ctx, cl, opt)
}

// Summary is the line the CLI prints for a provision ("" for none).
func (r *ProvisionResult) Summary() string {
	if r == nil {
		return ""
	}
	if len(r.Changed) == 0 && !r.Installed && !r.Restarted && !r.CertIssued {
		return "provisioned: nothing changed"
	}
	return fmt.Sprintf("provisioned: installed=%v restarted=%v changed=%s", r.Installed, r.Restarted, joinComma(r.Changed))
}

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

// UpgradeResult says what Upgrade did.
type UpgradeResult = provision.UpgradeResult

// Upgrade upgrades the machine's engine to the newest its host's package source has and, when
// it changed, restarts it with the machine's TLS configuration and waits until it answers over
// TLS. An engine that is the newest already is left alone.
func (h *Host) Upgrade(ctx context.Context, progress func(string)) (*UpgradeResult, error) {
	// A stopped machine is started first, as docker-machine's upgrade does.
	if err := h.Running(ctx); errors.Is(err, ErrNotRunning) {
		if st, serr := h.Driver.State(ctx); serr == nil && st == drivers.Stopped {
			if progress != nil {
				progress("the machine is stopped: starting it first")
			}
			if _, err := h.Do(ctx, OpStart, progress); err != nil {
				return nil, err
			}
		} else {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	c, err := h.Dial(dctx)
	cancel()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	p := &provision.Provisioner{R: Runner(c), Log: h.api.Log, Progress: progress}
	res, err := p.Upgrade(ctx)
	if err != nil || !res.Upgraded {
		return res, err
	}
	if progress != nil {
		progress("checking the engine over TLS")
	}
	return res, h.WaitEngine(ctx, h.EngineWait())
}

// Summary is the line the CLI prints for an upgrade.
func UpgradeSummary(r *UpgradeResult) string {
	if r == nil {
		return ""
	}
	if !r.Upgraded {
		return fmt.Sprintf("the engine is the newest its package source has (%s, package %s): nothing to upgrade", r.Before, r.Package)
	}
	return fmt.Sprintf("upgraded %s: %s -> %s; restarted with its TLS configuration", r.Package, r.Before, r.After)
}
