package plugin

import (
	"encoding/gob"
	"fmt"
)

// The types docker-machine's plug-ins send and take over net/rpc, with the names gob gives them
// on the plug-in's side (libmachine's mcnflag and rpcdriver packages registered as pointers):
// gob matches a value's type by that name and its fields by theirs.

// StringFlag, StringSliceFlag, IntFlag and BoolFlag are a plug-in's create flags (GetCreateFlags).
type StringFlag struct {
	Name, Usage, EnvVar string
	Value               string
}

type StringSliceFlag struct {
	Name, Usage, EnvVar string
	Value               []string
}

type IntFlag struct {
	Name, Usage, EnvVar string
	Value               int
}

type BoolFlag struct {
	Name, Usage, EnvVar string
}

// Flag is any of them.
type Flag interface {
	flagName() string
}

func (f *StringFlag) flagName() string      { return f.Name }
func (f *StringSliceFlag) flagName() string { return f.Name }
func (f *IntFlag) flagName() string         { return f.Name }
func (f *BoolFlag) flagName() string        { return f.Name }

// rpcFlags carries SetConfigFromFlags' values, as libmachine 0.6 and later name it; rpcFlagsV0
// as plug-ins built against older libmachine do.
type rpcFlags struct{ Values map[string]any }
type rpcFlagsV0 struct{ Values map[string]any }

func init() {
	gob.RegisterName("*mcnflag.StringFlag", &StringFlag{})
	gob.RegisterName("*mcnflag.StringSliceFlag", &StringSliceFlag{})
	gob.RegisterName("*mcnflag.IntFlag", &IntFlag{})
	gob.RegisterName("*mcnflag.BoolFlag", &BoolFlag{})
	gob.RegisterName("*rpcdriver.RPCFlags", &rpcFlags{})
	gob.RegisterName("*rpcdriver.RpcFlags", &rpcFlagsV0{})
}

// State is libmachine's state.State.
type State int

// libmachine's states, in its order.
const (
	StateNone State = iota
	StateRunning
	StatePaused
	StateSaved
	StateStopped
	StateStopping
	StateStarting
	StateError
	StateTimeout
)

func (s State) String() string {
	names := []string{"", "Running", "Paused", "Saved", "Stopped", "Stopping", "Starting", "Error", "Timeout"}
	if int(s) >= 0 && int(s) < len(names) {
		return names[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// baseDriver is libmachine's BaseDriver as a new machine's first configuration (SetConfigRaw):
// its name and the store whose machines/NAME folder the plug-in keeps its files in.
type baseDriver struct {
	MachineName string
	StorePath   string
	SSHUser     string `json:",omitempty"`
	SSHPort     int    `json:",omitempty"`
}
