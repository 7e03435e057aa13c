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
	row.Labels = []string{"zone=A"} // docker-machine: the value ignoring case
	if !f.Match(row) {
		t.Error("a label's value is matched ignoring case")
	}
	if _, err := machine.ParseFilter([]string{"colour=red"}); err == nil || !strings.HasPrefix(err.Error(), "Unsupported filter key 'colour'") || !strings.Contains(err.Error(), "driver=NAME") {
		t.Errorf("bad filter: %v", err)
	}
	if _, err := machine.ParseFilter([]string{"running"}); err == nil || !strings.HasPrefix(err.Error(), "Unsupported filter syntax") {
		t.Errorf("no =: %v", err)
	}
	if _, err := machine.ParseFilter([]string{"name=("}); err == nil || !strings.Contains(err.Error(), "regular expression") {
		t.Errorf("a bad name pattern: %v", err)
	}
	// name= is a regular expression, unanchored, as in docker-machine.
	n, _ := machine.ParseFilter([]string{"name=^web[0-9]$", "name=db"})
	for name, want := range map[string]bool{"web1": true, "web12": false, "old-db-2": true, "cache": false} {
		if got := n.Match(machine.Status{Name: name}); got != want {
			t.Errorf("name filter on %q: %v", name, got)
		}
	}
	if q, _ := machine.ParseFilter([]string{"name=a"}); q.NeedsState() {
		t.Error("a name filter needs no state")
	}
}

func TestSortNatural(t *testing.T) {
	names := []string{"web10", "Web2", "db", "web1", "web02b", "a"}
	machine.SortNatural(names)
	if got := strings.Join(names, " "); got != "a db web1 Web2 web02b web10" {
		t.Errorf("natural order: %s", got)
	}
}
