package main

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// dockerMachine0162 is docker-machine 0.16.2's command line (commands/commands.go and the
// built-in drivers' GetCreateFlags): every command, and every flag with its aliases and
// environment variable, as its users' scripts pass them. "=!VAR": docker-machine read VAR for a
// flag machine refuses (classic swarm): machine must not read it, or a profile that still exports
// it would make every create fail.
var dockerMachine0162 = map[string][]string{
	"":       {"debug,D", "storage-path,s=MACHINE_STORAGE_PATH", "tls-ca-cert=MACHINE_TLS_CA_CERT", "tls-ca-key=MACHINE_TLS_CA_KEY", "tls-client-cert=MACHINE_TLS_CLIENT_CERT", "tls-client-key=MACHINE_TLS_CLIENT_KEY", "github-api-token=MACHINE_GITHUB_API_TOKEN", "native-ssh=MACHINE_NATIVE_SSH", "bugsnag-api-token=MACHINE_BUGSNAG_API_TOKEN", "version,v", "help,h"},
	"active": {"timeout,t"},
	"config": {"swarm"},
	"create": {"driver,d=MACHINE_DRIVER", "engine-install-url=MACHINE_DOCKER_INSTALL_URL", "engine-opt", "engine-insecure-registry", "engine-registry-mirror=ENGINE_REGISTRY_MIRROR", "engine-label", "engine-storage-driver", "engine-env",
		"swarm", "swarm-image=!MACHINE_SWARM_IMAGE", "swarm-master", "swarm-discovery", "swarm-strategy", "swarm-opt", "swarm-host", "swarm-addr", "swarm-experimental", "swarm-join-opt", "tls-san",
		"generic-engine-port=GENERIC_ENGINE_PORT", "generic-ip-address=GENERIC_IP_ADDRESS", "generic-ssh-key=GENERIC_SSH_KEY", "generic-ssh-user=GENERIC_SSH_USER", "generic-ssh-port=GENERIC_SSH_PORT",
		"virtualbox-memory=VIRTUALBOX_MEMORY_SIZE", "virtualbox-cpu-count=VIRTUALBOX_CPU_COUNT", "virtualbox-disk-size=VIRTUALBOX_DISK_SIZE", "virtualbox-boot2docker-url=VIRTUALBOX_BOOT2DOCKER_URL",
		"virtualbox-import-boot2docker-vm=VIRTUALBOX_BOOT2DOCKER_IMPORT_VM", "virtualbox-host-dns-resolver=VIRTUALBOX_HOST_DNS_RESOLVER", "virtualbox-nat-nictype=VIRTUALBOX_NAT_NICTYPE",
		"virtualbox-hostonly-cidr=VIRTUALBOX_HOSTONLY_CIDR", "virtualbox-hostonly-nictype=VIRTUALBOX_HOSTONLY_NIC_TYPE", "virtualbox-hostonly-nicpromisc=VIRTUALBOX_HOSTONLY_NIC_PROMISC",
		"virtualbox-ui-type=VIRTUALBOX_UI_TYPE", "virtualbox-hostonly-no-dhcp=VIRTUALBOX_HOSTONLY_NO_DHCP", "virtualbox-no-share=VIRTUALBOX_NO_SHARE", "virtualbox-no-dns-proxy=VIRTUALBOX_NO_DNS_PROXY",
		"virtualbox-no-vtx-check=VIRTUALBOX_NO_VTX_CHECK", "virtualbox-share-folder=VIRTUALBOX_SHARE_FOLDER"},
	"env":              {"swarm", "shell", "unset,u", "no-proxy"},
	"inspect":          {"format,f"},
	"ip":               nil,
	"kill":             nil,
	"ls":               {"quiet,q", "filter", "timeout,t", "format,f"},
	"mount":            {"unmount,u"},
	"provision":        nil,
	"regenerate-certs": {"force,f", "client-certs"},
	"restart":          nil,
	"rm":               {"force,f", "y"},
	"ssh":              nil,
	"scp":              {"recursive,r", "quiet,q", "delta,d"},
	"start":            nil,
	"status":           nil,
	"stop":             nil,
	"upgrade":          nil,
	"url":              nil,
	"version":          nil,
	"help":             nil,
}

// TestDockerMachineCommandLine: every command and flag of docker-machine 0.16.2 is machine's too
// (taken, or refused with the reason: hidden then), with its short names and environment variable.
func TestDockerMachineCommandLine(t *testing.T) {
	app := newApp("machine", strings.NewReader(""), io.Discard, io.Discard)
	app.Setup()
	for cmd, flags := range dockerMachine0162 {
		var have []cli.Flag
		switch cmd {
		case "":
			have = app.Flags
		default:
			c := app.Command(cmd)
			if c == nil {
				t.Errorf("docker-machine's command %q is missing", cmd)
				continue
			}
			have = c.Flags
		}
		for _, spec := range flags {
			names, env, _ := strings.Cut(spec, "=")
			want := strings.Split(names, ",")
			var f cli.Flag
			for _, h := range have {
				if h.Names()[0] == want[0] {
					f = h
				}
			}
			if f == nil {
				t.Errorf("%s: docker-machine's flag --%s is missing", cmd, want[0])
				continue
			}
			for _, alias := range want[1:] {
				if !slices.Contains(f.Names(), alias) {
					t.Errorf("%s --%s: the short name -%s is missing (has %v)", cmd, want[0], alias, f.Names())
				}
			}
			ev, _ := f.(interface{ GetEnvVars() []string })
			var read []string
			if ev != nil {
				read = ev.GetEnvVars()
			}
			if ignored, ok := strings.CutPrefix(env, "!"); ok {
				if slices.Contains(read, ignored) {
					t.Errorf("%s --%s is refused, yet %s is read: its value alone would refuse every create", cmd, want[0], ignored)
				}
			} else if env != "" && !slices.Contains(read, env) {
				t.Errorf("%s --%s: docker-machine's environment variable %s is not read", cmd, want[0], env)
			}
		}
	}
}

// TestDockerMachineDefaults: docker-machine 0.16.2's defaults, where machine keeps them (its
// deliberate differences, such as the default driver and NIC model, are in docs/migration.md).
func TestDockerMachineDefaults(t *testing.T) {
	app := newApp("machine", strings.NewReader(""), io.Discard, io.Discard)
	app.Setup()
	for cmd, defaults := range map[string]map[string]string{
		"ls":     {"timeout": "10"},
		"active": {"timeout": "10"},
		"create": {"generic-ssh-user": "root", "generic-ssh-port": "22", "generic-engine-port": "2376",
			"virtualbox-memory": "1024", "virtualbox-cpu-count": "1", "virtualbox-disk-size": "20000",
			"virtualbox-hostonly-cidr": "192.168.99.1/24"},
	} {
		for name, want := range defaults {
			var got string
			for _, f := range app.Command(cmd).Flags {
				if f.Names()[0] == name {
					got = f.(cli.DocGenerationFlag).GetValue()
				}
			}
			if strings.Trim(got, `"`) != want {
				t.Errorf("%s --%s defaults to %q, docker-machine's is %q", cmd, name, got, want)
			}
		}
	}
}
