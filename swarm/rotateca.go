package swarm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/machine-tools/machine/internal/wait"
)

// rotateCALimit bounds the wait for every node to hold a certificate of the new root CA.
var rotateCALimit = 10 * time.Minute

// RotateCA gives the swarm a new root CA through manager m and waits until the rotation is
// over: every node holds a certificate issued by the new CA and the swarm trusts only it.
// progress hears how many of the nodes have one. A node that stays Down keeps the rotation
// from ending: the error after rotateCALimit names the nodes still waited for (the rotation
// goes on in the swarm; `swarm rotate-ca` again waits for it without starting another).
func RotateCA(ctx context.Context, m *Node, progress func(done, total int)) error {
	return rotateCA(ctx, m, 0, progress)
}

// rotateCA rotates the root CA; with expiry, the nodes' certificates of the new CA are valid
// that long (swarm applies a new validity only with a new root: its signer is made again only
// when the root changes).
func rotateCA(ctx context.Context, m *Node, expiry time.Duration, progress func(done, total int)) error {
	if _, _, err := managerAddr(ctx, m); err != nil {
		return err
	}
	sw, err := m.Docker.SwarmInspect(ctx)
	if err != nil {
		return err
	}
	if !sw.RootRotationInProgress || (expiry > 0 && sw.Spec.CAConfig.NodeCertExpiry != expiry) {
		spec := sw.Spec
		if expiry > 0 {
			spec.CAConfig.NodeCertExpiry = expiry
		}
		spec.CAConfig.ForceRotate++
		if err := m.Docker.SwarmUpdate(ctx, sw.Version, spec, swarm.UpdateFlags{}); err != nil {
			return fmt.Errorf("%s: rotating the root CA: %w", m.Name, err)
		}
	}
	var waiting []string
	last := -1
	err = wait.Until(ctx, rotateCALimit, time.Second, func(ctx context.Context) (bool, string, error) {
		sw, err := m.Docker.SwarmInspect(ctx)
		if err != nil {
			return false, err.Error(), nil
		}
		nodes, err := m.Docker.NodeList(ctx, swarm.NodeListOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		waiting = waiting[:0]
		for _, n := range nodes {
			if !sameIssuer(n.Description.TLSInfo, sw.TLSInfo) {
				waiting = append(waiting, n.Description.Hostname+" ("+string(n.Status.State)+")")
			}
		}
		slices.Sort(waiting)
		if done := len(nodes) - len(waiting); done != last && progress != nil {
			progress(done, len(nodes))
			last = done
		}
		return !sw.RootRotationInProgress && len(waiting) == 0, fmt.Sprintf("%d node(s) without a certificate of the new CA", len(waiting)), nil
	})
	var te *wait.TimeoutError
	if errors.As(err, &te) {
		return fmt.Errorf("the root CA rotation did not end within %s: %s still hold certificates of the old CA (a node that is down gets one when it is back; run `machine swarm rotate-ca` again to wait for it)", te.After, strings.Join(waiting, ", "))
	}
	return err
}

// sameIssuer says whether a node's certificate was issued by the root the swarm has now.
func sameIssuer(node, root swarm.TLSInfo) bool {
	return node.TrustRoot == root.TrustRoot && slices.Equal(node.CertIssuerPublicKey, root.CertIssuerPublicKey) && slices.Equal(node.CertIssuerSubject, root.CertIssuerSubject)
}
