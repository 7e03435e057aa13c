package swarm

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"

	"github.com/machine-tools/machine/internal/fsutil"
	"github.com/machine-tools/machine/internal/runner"
	"github.com/machine-tools/machine/internal/sshclient"
	"github.com/machine-tools/machine/machine"
	"github.com/machine-tools/machine/swarm/cluster"
)

// BackupFormat is the version of a backup file's layout.
const BackupFormat = 1

// BackupInfo is what a backup holds, written first in its file (backup.json): which swarm, from
// which node, what the swarm had, and the checksum of the state that follows (swarm.tar.gz: the
// manager's /var/lib/docker/swarm, with the swarm's CA key and its raft encryption key).
type BackupInfo struct {
	Format  int    `json:"format"`
	Cluster string `json:"cluster"`
	SwarmID string `json:"swarm_id"`
	Machine string `json:"machine"` // the manager copied
	NodeID  string `json:"node_id"`
	// Addr is that manager's raft address (host:port): the address the restored manager must
	// have, for other managers to join it (a lone manager's raft address does not change).
	Addr          string    `json:"addr"`
	Managers      []string  `json:"managers"`
	Workers       []string  `json:"workers"`
	Services      int       `json:"services"`
	Secrets       int       `json:"secrets"`
	Configs       int       `json:"configs"`
	Networks      int       `json:"networks"` // the swarm's overlay networks, ingress included
	EngineVersion string    `json:"engine_version"`
	Time          time.Time `json:"time"`
	Autolock      bool      `json:"autolock"`
	StateSHA256   string    `json:"state_sha256"`
	StateBytes    int64     `json:"state_bytes"`
	// Out is how long the manager's engine was stopped for the copy.
	Out time.Duration `json:"out_ns"`
}

// BackupOptions tune Backup.
type BackupOptions struct {
	// From names the manager to copy (default: one whose stop keeps the quorum, not the leader
	// when another will do).
	From     string
	Progress func(node, msg string)
	Warn     func(msg string)
}

func (o BackupOptions) say(node, msg string) {
	if o.Progress != nil {
		o.Progress(node, msg)
	}
}

// Backup copies the swarm's state from one manager into path: the manager's engine is stopped
// (the swarm keeps its quorum: the manager is chosen so), its /var/lib/docker/swarm streamed to
// this computer (nothing is left on the host), the engine started again and waited for until it
// is a reachable manager again. path is written whole or not at all, 0600. Ctrl-C at any moment
// leaves the engine running and no file.
func Backup(ctx context.Context, api *machine.API, c *cluster.Cluster, path string, o BackupOptions) (BackupInfo, error) {
	r := newRun(api, c)
	b := &backup{run: r, o: o, path: path}
	err := r.do(ctx, []step{
		{"observe", b.observe},
		{"choosing the manager", b.choose},
		{"reading the swarm", b.read},
		{"stopping the engine", b.stop},
		{"copying the swarm's state", b.copy},
		{"starting the engine", b.start},
		{"waiting for it to be a reachable manager", b.back},
		{"writing the file", b.write},
	})
	if b.started != nil && err != nil {
		// An interrupt or a failure after the stop: the engine was started again on the way
		// out; whether that worked is part of the answer.
		if serr := b.started(); serr != nil {
			err = errors.Join(err, fmt.Errorf("%s: %w", b.from.Name, serr))
		}
	}
	return b.info, err
}

// backup is one Backup under way.
type backup struct {
	*run
	o       BackupOptions
	path    string
	info    BackupInfo
	from    *Node
	via     *Node // another manager that answers while from is out (nil: from is the only one)
	ssh     *sshclient.Client
	state   *os.File // the copied state, beside path until the file is written
	stopped time.Time
	started func() error
}

func (b *backup) observe(r *run, ctx context.Context) error {
	ob, err := observe(ctx, r.api, r.c, r.open, true)
	if err != nil {
		return fmt.Errorf("reading the live cluster: %w", err)
	}
	r.ob, r.nodes, r.alive = ob, ob.nodes, ob.states
	if ob.via == nil {
		return fmt.Errorf("no machine of %s answers as a swarm manager: nothing to back up (`machine swarm plan -f %s` says what is there)", r.c.Name, r.c.File())
	}
	return nil
}

// choose picks the manager to copy: one whose engine can stop while the others keep a majority,
// not the leader when another will do, in the file's order.
func (b *backup) choose(r *run, ctx context.Context) error {
	total, reachable := 0, 0
	var down, candidates []string
	for _, name := range slices.Sorted(maps.Keys(r.ob.Nodes)) {
		n := r.ob.Nodes[name]
		if !n.Manager {
			continue
		}
		total++
		// Reachable as the swarm sees it, and answering now (the swarm takes a few seconds
		// to see a manager gone).
		if _, alive := r.alive[name]; !n.Reachable || !alive {
			down = append(down, name)
			continue
		}
		reachable++
	}
	for _, name := range append(order(r.c), slices.Sorted(maps.Keys(r.ob.Nodes))...) {
		n, ok := r.ob.Nodes[name]
		if ok && n.Manager && n.Reachable && r.nodes[name] != nil && !slices.Contains(candidates, name) {
			if _, alive := r.alive[name]; alive {
				candidates = append(candidates, name)
			}
		}
	}
	if b.o.From != "" {
		if !slices.Contains(candidates, b.o.From) {
			return fmt.Errorf("%s is not a reachable manager of %s's swarm: name one of %s", b.o.From, r.c.Name, strings.Join(candidates, ", "))
		}
		candidates = []string{b.o.From}
	}
	if total > 1 && reachable-1 < total/2+1 {
		return &QuorumError{fmt.Sprintf("%d managers, %d reachable: stopping one for the copy would leave %d of %d, fewer than the %d a majority needs: start %s first",
			total, reachable, reachable-1, total, total/2+1, strings.Join(down, ", "))}
	}
	if len(candidates) == 0 {
		return fmt.Errorf("no manager of %s answers: nothing to copy from", r.c.Name)
	}
	pick := candidates[0]
	for _, name := range candidates {
		if !r.ob.Nodes[name].Leader {
			pick = name
			break
		}
	}
	b.from = r.nodes[pick]
	for _, name := range candidates {
		if name != pick {
			b.via = r.nodes[name]
			break
		}
	}
	if total == 1 && b.o.Warn != nil {
		b.o.Warn(fmt.Sprintf("%s is the swarm's only manager: the swarm's control plane pauses while its engine is stopped for the copy (running tasks go on)", pick))
	}
	b.info = BackupInfo{Format: BackupFormat, Cluster: r.c.Name, Machine: pick, NodeID: r.ob.Nodes[pick].ID}
	for _, name := range slices.Sorted(maps.Keys(r.ob.Nodes)) {
		if r.ob.Nodes[name].Manager {
			b.info.Managers = append(b.info.Managers, name)
		} else {
			b.info.Workers = append(b.info.Workers, name)
		}
	}
	return nil
}

// read counts what the swarm holds, through the manager copied (before its engine stops).
func (b *backup) read(r *run, ctx context.Context) error {
	m := b.from
	sw, err := m.Docker.SwarmInspect(ctx)
	if err != nil {
		return r.fail(m.Name, err)
	}
	b.info.SwarmID, b.info.Autolock = sw.ID, sw.Spec.EncryptionConfig.AutoLockManagers
	node, _, err := m.Docker.NodeInspectWithRaw(ctx, b.info.NodeID)
	if err != nil {
		return r.fail(m.Name, err)
	}
	if node.ManagerStatus != nil {
		b.info.Addr = node.ManagerStatus.Addr
	}
	held, err := countHeld(ctx, m)
	if err != nil {
		return r.fail(m.Name, err)
	}
	v, err := m.Docker.ServerVersion(ctx)
	if err != nil {
		return r.fail(m.Name, err)
	}
	b.info.Services, b.info.Secrets, b.info.Configs, b.info.Networks, b.info.EngineVersion = held.Services, held.Secrets, held.Configs, held.Networks, v.Version
	if b.info.Autolock {
		// The unlock key in force, beside the backup and not in it: the key is what keeps the
		// raft keys in the state locked at rest, so whoever holds both holds the swarm; kept in
		// a file of its own, it can be stored apart.
		k, err := m.Docker.SwarmGetUnlockKey(ctx)
		if err != nil {
			return r.fail(m.Name, fmt.Errorf("reading the unlock key: %w", err))
		}
		if err := fsutil.WriteFileAtomic(UnlockKeyPath(b.path), []byte(k.UnlockKey+"\n"), 0o600); err != nil {
			return err
		}
	}
	if b.ssh, err = m.Dial(ctx); err != nil {
		return r.fail(m.Name, err)
	}
	r.later = append(r.later, func() error { return b.ssh.Close() })
	return nil
}

// held is what a swarm holds, counted: what a backup records and a restore checks.
type held struct{ Services, Secrets, Configs, Networks int }

func (h held) String() string {
	return fmt.Sprintf("%d services, %d secrets, %d configs, %d networks", h.Services, h.Secrets, h.Configs, h.Networks)
}

// countHeld counts, through manager m, the swarm's services, secrets, configs and swarm-scoped
// networks.
func countHeld(ctx context.Context, m *Node) (held, error) {
	services, err := m.Docker.ServiceList(ctx, swarm.ServiceListOptions{})
	if err != nil {
		return held{}, err
	}
	secrets, err := m.Docker.SecretList(ctx, swarm.SecretListOptions{})
	if err != nil {
		return held{}, err
	}
	configs, err := m.Docker.ConfigList(ctx, swarm.ConfigListOptions{})
	if err != nil {
		return held{}, err
	}
	nets, err := m.Docker.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("scope", "swarm"))})
	if err != nil {
		return held{}, err
	}
	return held{len(services), len(secrets), len(configs), len(nets)}, nil
}

// engineStop and engineStart stop and start the engine (and, with systemd, the socket that
// would start it again on the next request). Both hold engineLock: a stop whose SSH session was
// closed by an interrupt goes on on the host (its shell is not killed with the session) and
// would stop the engine again after the start that undoes it (measured: a backup interrupted
// while it stopped the engine left docker.service inactive); the start waits for it instead.
//
// engineLock takes /run/machine-engine.lock for the rest of the script (where flock exists).
const (
	engineLock = "exec 9>/run/machine-engine.lock; command -v flock >/dev/null && flock -w 300 9\n"
	engineStop = engineLock + `if [ -d /run/systemd/system ]; then
  for u in docker.socket docker.service; do
    [ "$(systemctl show -p LoadState --value "$u" 2>/dev/null)" = loaded ] || continue
    systemctl stop "$u"
  done
else rc-service docker stop; fi`
	engineStart = engineLock + `if [ -d /run/systemd/system ]; then
  systemctl reset-failed docker.service 2>/dev/null; systemctl start docker.service
  [ "$(systemctl show -p LoadState --value docker.socket 2>/dev/null)" != loaded ] || systemctl start docker.socket
else rc-service docker start; fi`
)

func (b *backup) stop(r *run, ctx context.Context) error {
	b.o.say(b.from.Name, "stopping its engine for the copy")
	root := machine.Runner(b.ssh)
	// From here on the engine is started again whatever happens: Ctrl-C included.
	var once sync.Once
	var startErr error
	b.started = func() error {
		once.Do(func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			defer cancel()
			if _, err := root.Run(sctx, nil, "sh", "-c", engineStart); err != nil {
				startErr = fmt.Errorf("starting its engine again: %w (start it with `machine ssh %s sudo systemctl start docker`)", err, b.from.Name)
			}
			b.info.Out = time.Since(b.stopped)
		})
		return startErr
	}
	b.stopped = time.Now()
	r.later = append(r.later, b.started)
	if _, err := root.Run(ctx, nil, "sh", "-c", engineStop); err != nil {
		return r.fail(b.from.Name, err)
	}
	return nil
}

// copy streams /var/lib/docker/swarm as a gzipped tar into a file beside path (0600).
func (b *backup) copy(r *run, ctx context.Context) error {
	b.o.say(b.from.Name, "copying /var/lib/docker/swarm")
	f, err := os.CreateTemp(filepath.Dir(b.path), "."+filepath.Base(b.path)+".state-*")
	if err != nil {
		return err
	}
	b.state = f
	r.later = append(r.later, func() error { f.Close(); return os.Remove(f.Name()) })
	h := sha256.New()
	var stderr strings.Builder
	cmd := runner.Quote("tar", "-C", "/var/lib/docker", "-czf", "-", "swarm")
	if b.ssh.Config().User != "root" {
		cmd = "sudo -n -- " + cmd
	}
	code, err := b.ssh.Exec(ctx, cmd, nil, io.MultiWriter(f, h), &stderr)
	if err == nil && code != 0 {
		err = fmt.Errorf("tar exited %d: %s", code, strings.TrimSpace(stderr.String()))
	}
	if err != nil {
		return r.fail(b.from.Name, err)
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	b.info.StateSHA256, b.info.StateBytes = hex.EncodeToString(h.Sum(nil)), st.Size()
	return nil
}

func (b *backup) start(r *run, ctx context.Context) error {
	b.o.say(b.from.Name, "starting its engine again")
	if err := b.started(); err != nil {
		return r.fail(b.from.Name, err)
	}
	return nil
}

// back waits until the manager copied is a reachable manager again, as another manager sees it
// (or as it sees itself, when it is the only one).
func (b *backup) back(r *run, ctx context.Context) error {
	via := b.via
	if via == nil {
		via = b.from
	}
	if err := waitBack(ctx, via, b.from.Name, b.info.NodeID); err != nil {
		return r.fail(b.from.Name, err)
	}
	b.o.say(b.from.Name, fmt.Sprintf("a reachable manager again: out for %s", b.info.Out.Round(100*time.Millisecond)))
	return nil
}

// write puts backup.json and the state into path, whole or not at all.
func (b *backup) write(r *run, ctx context.Context) error {
	b.info.Time = time.Now().UTC()
	meta, err := json.MarshalIndent(b.info, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(b.path), "."+filepath.Base(b.path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // gone once renamed
	defer tmp.Close()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	tw := tar.NewWriter(tmp)
	if err := tw.WriteHeader(&tar.Header{Name: "backup.json", Mode: 0o600, Size: int64(len(meta)), ModTime: b.info.Time}); err != nil {
		return err
	}
	if _, err := tw.Write(meta); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "swarm.tar.gz", Mode: 0o600, Size: b.info.StateBytes, ModTime: b.info.Time}); err != nil {
		return err
	}
	if _, err := b.state.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := io.Copy(tw, b.state); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), b.path)
}

// UnlockKeyPath is where Backup keeps the unlock key of a swarm with autolock: beside the backup.
func UnlockKeyPath(backup string) string { return backup + ".unlock-key" }

// ReadBackup reads a backup file's description, and checks its state against the checksum.
func ReadBackup(path string) (BackupInfo, error) {
	var info BackupInfo
	f, err := os.Open(path)
	if err != nil {
		return info, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != "backup.json" || hdr.Size > 1<<20 {
		return info, fmt.Errorf("%s is not a swarm backup of machine's (it begins with no backup.json)", path)
	}
	if err := json.NewDecoder(tr).Decode(&info); err != nil {
		return info, fmt.Errorf("%s: backup.json: %w", path, err)
	}
	if info.Format != BackupFormat {
		return info, fmt.Errorf("%s: backup format %d: this machine reads format %d", path, info.Format, BackupFormat)
	}
	if hdr, err = tr.Next(); err != nil || hdr.Name != "swarm.tar.gz" {
		return info, fmt.Errorf("%s: the swarm's state is missing (the file is cut short?)", path)
	}
	h := sha256.New()
	n, err := io.Copy(h, tr)
	if err != nil {
		return info, fmt.Errorf("%s: %w", path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != info.StateSHA256 || n != info.StateBytes {
		return info, errors.New(path + ": the swarm's state does not match its checksum: the file is damaged")
	}
	return info, nil
}
