package machine_test

import (
	"strings"
	"testing"

	"github.com/machine-tools/machine/machine"
)

func TestFilters(t *testing.T) {
	f, err := machine.ParseFilter([]string{"driver=container", "state=running", "label=zone=a", "swarm=manager"})
	if err != nil {
		t.Fatal(err)
	}
	row := machine.Status{Name: "a", DriverName: "container", State: "Running", Swarm: "manager", Labels: []string{"zone=a"}}
	if !f.Match(row) || !f.NeedsState() {
		t.Error("row a should match")
	}
	row.Labels = []string{"zone=b"}
	if f.Match(row) {
		t.Error("a row with another label matched")
	}
	if _, err := machine.ParseFilter([]string{"colour=red"}); err == nil || !strings.Contains(err.Error(), "driver=NAME") {
		t.Errorf("bad filter: %v", err)
	}
	if q, _ := machine.ParseFilter([]string{"name=a"}); q.NeedsState() {
		t.Error("a name filter needs no state")
	}
}
