// Command fakeplugin stands for a docker-machine driver plug-in whose Create takes a while, for
// the fault tests that need a plug-in to be killed or interrupted in the middle of its Create
// (docker-machine's own generic and none drivers create at once). It speaks libmachine's
// protocol as docker-machine-driver binaries do; what it is asked to do is noted as files in
// FAKEPLUGIN_DIR: create-started, created, removed.
package main

import (
	"encoding/gob"
	"fmt"
	"net"
	"net/http"
	"net/rpc"
	"os"
	"path/filepath"
	"time"
)

// RPCFlags has the name and shape of libmachine's SetConfigFromFlags argument.
type RPCFlags struct{ Values map[string]any }

// RPCServerDriver is the service every plug-in serves.
type RPCServerDriver struct {
	config []byte
	beat   chan struct{}
}

func note(name string) {
	_ = os.WriteFile(filepath.Join(os.Getenv("FAKEPLUGIN_DIR"), name), nil, 0o644)
}

func (s *RPCServerDriver) GetVersion(_ *struct{}, reply *int) error { *reply = 1; return nil }
func (s *RPCServerDriver) Heartbeat(_ *struct{}, _ *struct{}) error { s.beat <- struct{}{}; return nil }
func (s *RPCServerDriver) Close(_ *struct{}, _ *struct{}) error {
	go func() { time.Sleep(50 * time.Millisecond); os.Exit(0) }()
	return nil
}
func (s *RPCServerDriver) SetConfigRaw(data []byte, _ *struct{}) error { s.config = data; return nil }
func (s *RPCServerDriver) GetConfigRaw(_ *struct{}, reply *[]byte) error {
	*reply = s.config
	return nil
}
func (s *RPCServerDriver) SetConfigFromFlags(_ *any, _ *struct{}) error   { return nil }
func (s *RPCServerDriver) PreCreateCheck(_ *struct{}, _ *struct{}) error  { return nil }
func (s *RPCServerDriver) GetCreateFlags(_ *struct{}, reply *[]any) error { *reply = nil; return nil }
func (s *RPCServerDriver) DriverName(_ *struct{}, reply *string) error    { *reply = "fake"; return nil }
func (s *RPCServerDriver) Remove(_ *struct{}, _ *struct{}) error          { note("removed"); return nil }
func (s *RPCServerDriver) GetState(_ *struct{}, reply *int) error         { *reply = 4; return nil }
func (s *RPCServerDriver) GetIP(_ *struct{}, reply *string) error         { *reply = "127.0.0.1"; return nil }
func (s *RPCServerDriver) GetSSHHostname(_ *struct{}, reply *string) error {
	*reply = "127.0.0.1"
	return nil
}
func (s *RPCServerDriver) GetSSHPort(_ *struct{}, reply *int) error { *reply = 1; return nil }
func (s *RPCServerDriver) GetSSHUsername(_ *struct{}, reply *string) error {
	*reply = "root"
	return nil
}
func (s *RPCServerDriver) GetSSHKeyPath(_ *struct{}, reply *string) error { *reply = ""; return nil }
func (s *RPCServerDriver) GetMachineName(_ *struct{}, reply *string) error {
	*reply = "fake"
	return nil
}

// Create takes FAKEPLUGIN_CREATE (a duration), then records an instance in its configuration.
func (s *RPCServerDriver) Create(_ *struct{}, _ *struct{}) error {
	note("create-started")
	d, _ := time.ParseDuration(os.Getenv("FAKEPLUGIN_CREATE"))
	time.Sleep(d)
	note("created")
	return nil
}

func main() {
	gob.RegisterName("*rpcdriver.RPCFlags", &RPCFlags{})
	s := &RPCServerDriver{beat: make(chan struct{}, 1)}
	if err := rpc.RegisterName("RPCServerDriver", s); err != nil {
		panic(err)
	}
	rpc.HandleHTTP()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(l.Addr())
	go func() { // as libmachine's server: gone after 10 s without a heartbeat
		for {
			select {
			case <-s.beat:
			case <-time.After(10 * time.Second):
				os.Exit(1)
			}
		}
	}()
	_ = http.Serve(l, nil)
}
