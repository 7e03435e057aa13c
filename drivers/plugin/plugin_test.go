package plugin

import (
	"context"
	"encoding/json"
	"net"
	"net/rpc"
	"slices"
	"testing"

	"github.com/machine-tools/machine/drivers"
)

// RPCServerDriver stands for a plug-in's server in this process: what libmachine's server does
// with each call, recorded.
type RPCServerDriver struct {
	flags  []Flag
	values map[string]any
	config []byte
}

func (s *RPCServerDriver) GetVersion(_ struct{}, reply *int) error { *reply = 1; return nil }
func (s *RPCServerDriver) GetCreateFlags(_ struct{}, reply *[]Flag) error {
	*reply = s.flags
	return nil
}
func (s *RPCServerDriver) SetConfigFromFlags(opts *any, _ *struct{}) error {
	s.values = (*opts).(*rpcFlags).Values
	return nil
}
func (s *RPCServerDriver) SetConfigRaw(data []byte, _ *struct{}) error { s.config = data; return nil }
func (s *RPCServerDriver) GetConfigRaw(_ struct{}, reply *[]byte) error {
	*reply = s.config
	return nil
}

func serve(t *testing.T, s *RPCServerDriver) *client {
	srv := rpc.NewServer()
	if err := srv.Register(s); err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	go srv.ServeConn(a)
	t.Cleanup(func() { a.Close(); b.Close() })
	return &client{driver: "fake", rpc: rpc.NewClient(b), service: "RPCServerDriver", exited: make(chan struct{}), lastLines: &lines{}, stopBeat: make(chan struct{})}
}

// TestFlagsBothWays: each kind of libmachine flag becomes an option of machine's table (name,
// environment variable, default, usage) and its value goes back in SetConfigFromFlags as
// docker-machine sends it: given values, defaults for the rest, false for booleans, and the
// classic swarm flags drivers read.
func TestFlagsBothWays(t *testing.T) {
	s := &RPCServerDriver{flags: []Flag{
		&StringFlag{Name: "cloud-region", Usage: "the region", EnvVar: "CLOUD_REGION", Value: "eu-1"},
		&StringSliceFlag{Name: "cloud-tag", Usage: "tags"},
		&IntFlag{Name: "cloud-disk", Usage: "disk GB", Value: 20},
		&BoolFlag{Name: "cloud-ipv6", Usage: "IPv6"},
		&StringFlag{Name: "cloud-token", Usage: "API token", EnvVar: "CLOUD_TOKEN"},
	}}
	c := serve(t, s)
	var flags []Flag
	if err := c.call(t.Context(), "GetCreateFlags", struct{}{}, &flags); err != nil {
		t.Fatal(err)
	}
	var opts []drivers.Option
	for _, f := range flags {
		opts = append(opts, option(f))
	}
	o, _ := drivers.Find(opts, "cloud-region")
	if o.EnvVar != "CLOUD_REGION" || o.Default != "eu-1" || o.Usage != "the region" {
		t.Errorf("string flag as an option: %+v", o)
	}
	if o, _ := drivers.Find(opts, "cloud-disk"); o.Default != 20 {
		t.Errorf("int flag: %+v", o)
	}
	if o, _ := drivers.Find(opts, "cloud-ipv6"); o.Default != false {
		t.Errorf("bool flag: %+v", o)
	}
	d := &Driver{Name: "fake", flags: flags}
	set := drivers.Settings{Driver: d}
	if err := drivers.Apply(opts, &set, map[string]any{"cloud-tag": []string{"a", "b"}, "cloud-disk": 40, "cloud-token": "s3cret"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.setFlags(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"cloud-region": "eu-1", "cloud-tag": []string{"a", "b"}, "cloud-disk": 40, "cloud-ipv6": false, "cloud-token": "s3cret",
		"swarm-master": false, "swarm-host": "", "swarm-discovery": ""}
	for k, v := range want {
		got := s.values[k]
		if sl, ok := v.([]string); ok {
			if g, _ := got.([]string); !slices.Equal(g, sl) {
				t.Errorf("%s: %#v, want %#v", k, got, v)
			}
			continue
		}
		if got != v {
			t.Errorf("%s: %#v, want %#v", k, got, v)
		}
	}
}

// TestConfigRoundTrip: the plug-in's configuration goes into the machine's record and back to
// the plug-in as it was.
func TestConfigRoundTrip(t *testing.T) {
	s := &RPCServerDriver{config: []byte(`{"MachineName":"m1","StorePath":"/s","InstanceID":"i-123"}`)}
	c := serve(t, s)
	var raw []byte
	if err := c.call(context.Background(), "GetConfigRaw", struct{}{}, &raw); err != nil {
		t.Fatal(err)
	}
	rec, err := json.Marshal(&Driver{Name: "fake", Config: raw})
	if err != nil {
		t.Fatal(err)
	}
	var back Driver
	if err := json.Unmarshal(rec, &back); err != nil {
		t.Fatal(err)
	}
	s.config = nil
	if err := c.call(context.Background(), "SetConfigRaw", []byte(back.Config), nil); err != nil {
		t.Fatal(err)
	}
	if string(s.config) != string(raw) || back.Name != "fake" {
		t.Errorf("record %s gave back %s", rec, s.config)
	}
}

// TestCanonical: a cluster file may name a plug-in's option without the driver's name in front.
func TestCanonical(t *testing.T) {
	reg := drivers.Registration{Name: "hetzner", Plugin: true, Options: []drivers.Option{{Name: "hetzner-server-type"}, {Name: "engine-port"}}}
	got := Canonical(reg, map[string]any{"server-type": "cx22", "engine-port": 1, "nosuch": 2})
	if got["hetzner-server-type"] != "cx22" || got["engine-port"] != 1 || got["nosuch"] != 2 || len(got) != 3 {
		t.Errorf("%v", got)
	}
}
