package swarm

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/machine-tools/machine/internal/fanout"
	"github.com/machine-tools/machine/machine"
)

// Quorum is the managers' arithmetic.
type Quorum struct {
	Total     int  `json:"total"`
	Reachable int  `json:"reachable"`
	Needed    int  `json:"needed"` // a majority of Total
	OK        bool `json:"ok"`
}

// Report is `swarm status --format json`: quorum, leader, the nodes, and engine version skew.
type Report struct {
	Managers Quorum    `json:"managers"`
	Leader   string    `json:"leader"`
	Versions []string  `json:"engineVersions"`
	Skew     bool      `json:"versionSkew"` // the nodes run more than one engine version
	Nodes    []NodeRow `json:"nodes"`
	// RootCAExpiry is when the swarm's root CA certificate expires (RFC 3339), with certs.
	RootCAExpiry string `json:"rootCAExpiry,omitempty"`
}

// newReport sums up the rows of Status.
func newReport(rows []NodeRow) Report {
	r := Report{Nodes: rows}
	versions := map[string]bool{}
	for _, n := range rows {
		versions[n.EngineVersion] = true
		switch n.ManagerStatus {
		case "":
			continue
		case "leader":
			r.Leader = n.Hostname
			r.Managers.Reachable++
		case string(swarm.ReachabilityReachable):
			r.Managers.Reachable++
		}
		r.Managers.Total++
	}
	r.Managers.Needed = r.Managers.Total/2 + 1
	r.Managers.OK = r.Managers.Reachable >= r.Managers.Needed
	r.Versions = slices.Sorted(maps.Keys(versions))
	r.Skew = len(r.Versions) > 1
	return r
}

// nodeCertPath is where an engine keeps its swarm node certificate.
const nodeCertPath = "/var/lib/docker/swarm/certificates/swarm-node.crt"

// certReadLimit bounds reading one node's certificate over SSH: the handshake on a loaded host
// (CI's: many container hosts on two cores) took more than five seconds.
const certReadLimit = 20 * time.Second

// readCertExpiry reads each node's swarm TLS certificate (machines of the store only): as the
// store keeps it, or over SSH at most certReadLimit a node (a down node's downReadLimit), all at
// once; and sets the rows' CertExpiry.
func readCertExpiry(ctx context.Context, a *machine.API, rows []NodeRow) {
	machineOf, err := machineFinder(a)
	if err != nil {
		return
	}
	exp, _ := fanout.Map(ctx, rows, 0, func(ctx context.Context, r NodeRow) (string, error) {
		name := machineOf(r.Addr, r.Hostname)
		if name == "" {
			return "", nil
		}
		h, err := a.Load(name)
		if err != nil {
			return "", nil
		}
		k, ok := nodeCertValidity(ctx, h, r.issuer, r.Status == string(swarm.NodeStateDown), time.Now())
		if !ok {
			return "", nil
		}
		return k.NotAfter.UTC().Format(time.RFC3339), nil
	})
	for i := range rows {
		rows[i].CertExpiry = exp[i]
	}
}

// readNodeCert reads a machine's swarm node certificate over SSH, within certReadLimit.
func readNodeCert(ctx context.Context, h *machine.Host) (*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, certReadLimit)
	defer cancel()
	c, err := h.Dial(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	out, err := machine.Runner(c).Run(ctx, nil, "cat", nodeCertPath)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(out)
	if block == nil {
		return nil, fmt.Errorf("%s: no certificate in %s", h.Name, nodeCertPath)
	}
	return x509.ParseCertificate(block.Bytes)
}

// managerCert says whether a swarm node certificate is a manager's (its OU: swarm-manager).
func managerCert(c *x509.Certificate) bool {
	return slices.Contains(c.Subject.OrganizationalUnit, "swarm-manager")
}

// RotateTokens gives the swarm new worker and manager join tokens; the old ones stop working.
func RotateTokens(ctx context.Context, m *Node) error {
	if _, _, err := managerAddr(ctx, m); err != nil {
		return err
	}
	sw, err := m.Docker.SwarmInspect(ctx)
	if err != nil {
		return err
	}
	if err := m.Docker.SwarmUpdate(ctx, sw.Version, sw.Spec, swarm.UpdateFlags{RotateWorkerToken: true, RotateManagerToken: true}); err != nil {
		return fmt.Errorf("%s: rotating the join tokens: %w", m.Name, err)
	}
	return nil
}

// StatusReport is a swarm's nodes as manager sees them, sorted by hostname, summed up; with
// certs, each node's swarm certificate expiry too (read over SSH).
func StatusReport(ctx context.Context, a *machine.API, manager string, certs bool) (Report, error) {
	nodes, done, err := OpenNodes(a, []string{manager})
	if err != nil {
		return Report{}, err
	}
	defer done()
	rows, err := Status(ctx, nodes[0])
	if err != nil {
		return Report{}, err
	}
	slices.SortFunc(rows, func(x, y NodeRow) int { return strings.Compare(x.Hostname, y.Hostname) })
	rep := newReport(rows)
	if certs {
		readCertExpiry(ctx, a, rep.Nodes)
		if sw, err := nodes[0].Docker.SwarmInspect(ctx); err == nil {
			if b, _ := pem.Decode([]byte(sw.TLSInfo.TrustRoot)); b != nil {
				if c, err := x509.ParseCertificate(b.Bytes); err == nil {
					rep.RootCAExpiry = c.NotAfter.UTC().Format(time.RFC3339)
				}
			}
		}
	}
	return rep, nil
}

// WriteTable prints the report as `docker node ls` does, with a line on quorum and skew after.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "ID\tHOSTNAME\tROLE\tSTATUS\tAVAILABILITY\tMANAGER STATUS\tADDRESS\tENGINE\tCERTIFICATE EXPIRES")
	for _, n := range r.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, n.Hostname, n.Role, n.Status, n.Availability, n.ManagerStatus, n.Addr, n.EngineVersion, certCell(n.CertExpiry, time.Now()))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "managers: %d (%d answering, %d needed for quorum)", r.Managers.Total, r.Managers.Reachable, r.Managers.Needed)
	if r.Skew {
		fmt.Fprintf(w, "; engine versions differ: %s", strings.Join(r.Versions, ", "))
	}
	if r.RootCAExpiry != "" {
		fmt.Fprintf(w, "; root CA expires %s", r.RootCAExpiry)
	}
	_, err := fmt.Fprintln(w)
	return err
}

// certCell is a node's certificate expiry in the status table: to the minute, UTC; "expired"
// before it when it has; "-" when it could not be read (not a machine of the store, host down).
func certCell(expiry string, now time.Time) string {
	t, err := time.Parse(time.RFC3339, expiry)
	if err != nil {
		return "-"
	}
	s := t.UTC().Format("2006-01-02 15:04")
	if !t.After(now) {
		s = "expired " + s
	}
	return s
}

// NodeRow is one node of `machine swarm status`.
type NodeRow struct {
	ID            string
	Hostname      string
	Role          string
	Status        string
	Availability  string
	ManagerStatus string
	Addr          string
	EngineVersion string
	Labels        map[string]string
	CertExpiry    string `json:",omitempty"` // the node's swarm TLS certificate's expiry (RFC 3339)
	issuer        string // the CA that issued its certificate (issuerID)
}

// Status lists the swarm's nodes as the manager sees them.
func Status(ctx context.Context, m *Node) ([]NodeRow, error) {
	if _, _, err := managerAddr(ctx, m); err != nil {
		return nil, err
	}
	nodes, err := m.Docker.NodeList(ctx, swarm.NodeListOptions{})
	if noLeader(err) {
		st, _ := m.Inspect(ctx)
		return nil, &QuorumLostError{Total: len(st.Managers), Reachable: []string{m.Name}}
	}
	if err != nil {
		return nil, err
	}
	var rows []NodeRow
	for _, x := range nodes {
		r := NodeRow{ID: short(x.ID), Hostname: x.Description.Hostname, Role: string(x.Spec.Role), Status: string(x.Status.State),
			Availability: string(x.Spec.Availability), Addr: x.Status.Addr, EngineVersion: x.Description.Engine.EngineVersion, Labels: x.Spec.Labels,
			issuer: issuerID(x.Description.TLSInfo.CertIssuerPublicKey)}
		if x.ManagerStatus != nil {
			r.ManagerStatus = string(x.ManagerStatus.Reachability)
			if x.ManagerStatus.Leader {
				r.ManagerStatus = "leader"
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}
