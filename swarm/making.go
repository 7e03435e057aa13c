package swarm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/machine-tools/machine/internal/fanout"
	"github.com/machine-tools/machine/swarm/cluster"
)

// making is the machines `up` makes, from the step "create" on, in the background: each is opened
// and read as soon as it is made, and the steps that need a machine wait for that one only. So the
// first manager starts the swarm as soon as its engine answers, and every later node joins as
// soon as it is ready, while the others are still being made ("machines made" waits for the
// last).
type making struct {
	names []string                 // in the order they are made: managers first
	done  map[string]chan struct{} // closed when the name's machine is made, or failed
	all   chan struct{}            // closed when every create ended

	mu     sync.Mutex
	nodes  map[string]*Node
	states map[string]State
	errs   map[string]error
	taken  map[string]bool // merged into the run's nodes
}

// pending says whether name is one of the machines being made and not yet merged into the run.
func (mk *making) pending(name string) bool {
	if mk == nil {
		return false
	}
	if _, ok := mk.done[name]; !ok {
		return false
	}
	mk.mu.Lock()
	defer mk.mu.Unlock()
	return !mk.taken[name]
}

// await waits for name's machine: open, its engine read; or why not.
func (mk *making) await(ctx context.Context, name string) (*Node, State, error) {
	select {
	case <-mk.done[name]:
	case <-ctx.Done():
		return nil, State{}, context.Cause(ctx)
	}
	mk.mu.Lock()
	defer mk.mu.Unlock()
	return mk.nodes[name], mk.states[name], mk.errs[name]
}

// startMaking starts making the missing machines, at most r.limit() at once, managers first.
func (r *run) startMaking(ctx context.Context, missing []cluster.Node) {
	rank := func(n cluster.Node) int {
		if n.Role == cluster.Manager {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(missing, func(a, b cluster.Node) int { return rank(a) - rank(b) })
	mk := &making{done: map[string]chan struct{}{}, all: make(chan struct{}), nodes: map[string]*Node{}, states: map[string]State{}, errs: map[string]error{}, taken: map[string]bool{}}
	for _, n := range missing {
		mk.names = append(mk.names, n.Name)
		mk.done[n.Name] = make(chan struct{})
	}
	r.making = mk
	go func() {
		defer close(mk.all)
		_ = fanout.Each(ctx, missing, r.limit(), nil, func(ctx context.Context, n cluster.Node) error {
			defer close(mk.done[n.Name])
			node, st, err := r.makeOne(ctx, n)
			mk.mu.Lock()
			mk.nodes[n.Name], mk.states[n.Name], mk.errs[n.Name] = node, st, err
			mk.mu.Unlock()
			return nil
		})
		for _, n := range missing { // not started: ctx ended first
			select {
			case <-mk.done[n.Name]:
			default:
				mk.mu.Lock()
				mk.errs[n.Name] = context.Cause(ctx)
				mk.mu.Unlock()
				close(mk.done[n.Name])
			}
		}
	}()
	// A run that stops early still waits for the creates under way (nothing is left half made)
	// and closes what it did not take.
	r.later = append(r.later, func() error {
		<-mk.all
		mk.mu.Lock()
		defer mk.mu.Unlock()
		for name, n := range mk.nodes {
			if n != nil && !mk.taken[name] {
				n.Close()
			}
		}
		return nil
	})
}

// makeOne makes n's machine, opens its engine and reads its swarm state.
func (r *run) makeOne(ctx context.Context, n cluster.Node) (*Node, State, error) {
	r.up.say(n.Name, "creating the machine")
	if err := createNode(ctx, r.api, r.c, n, r.up); err != nil {
		return nil, State{}, &StepError{n.Name, "create", err}
	}
	node, err := r.open(n.Name)
	if err != nil {
		return nil, State{}, &StepError{n.Name, "create", fmt.Errorf("opening its engine: %w", err)}
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	st, err := node.Inspect(pctx)
	if err != nil && (st.Pending || st.Failed) {
		// A machine made just now whose engine is in a swarm join (its /var/lib/docker held a
		// swarm's state: seen once in CI, in a recover interrupted three times): out of it, as
		// observe takes a node stuck so, then read again.
		r.up.say(n.Name, "its engine was made in a swarm join that cannot finish (pending, or in error): it leaves it, and joins afresh")
		if err = leavePending(ctx, node); err == nil {
			rctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			st, err = node.Inspect(rctx)
		}
	}
	if err != nil {
		node.Close()
		return nil, State{}, &StepError{n.Name, "create", fmt.Errorf("its engine does not answer after its create: %w", err)}
	}
	return node, st, nil
}

// takeMade waits for name's machine and makes it one of the run's nodes. Only the step's own
// goroutine calls it (the run's maps are not shared with work under way: see startImages).
func (r *run) takeMade(ctx context.Context, name string) error {
	mk := r.making
	n, st, err := mk.await(ctx, name)
	if err != nil {
		if ctx.Err() != nil {
			return r.makingStopped(ctx)
		}
		return fmt.Errorf("%w\nthe other machines were kept: run the same `machine swarm up` again to finish", err)
	}
	mk.mu.Lock()
	mk.taken[name] = true
	mk.mu.Unlock()
	r.nodes[name], r.alive[name] = n, st
	return nil
}

// machinesMade waits for the last create and takes every machine made; a failed create stops the
// run here, after the others joined.
func (r *run) machinesMade(ctx context.Context) error {
	mk := r.making
	if mk == nil {
		return nil
	}
	if ctx.Err() != nil {
		return r.makingStopped(ctx)
	}
	<-mk.all
	var errs []error
	for _, name := range mk.names {
		if !mk.pending(name) {
			continue
		}
		if err := r.takeMade(ctx, name); err != nil {
			if ctx.Err() != nil {
				return err
			}
			_, _, e := mk.await(ctx, name)
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w\nthe other machines were kept: run the same `machine swarm up` again to finish", errors.Join(errs...))
	}
	return nil
}

// makingStopped is the one line for an interrupted run while machines were being made (not one
// "context canceled" a node), once the creates under way are undone.
func (r *run) makingStopped(ctx context.Context) error {
	<-r.making.all
	made := 0
	for _, name := range r.making.names {
		if r.api.Exists(name) {
			made++
		}
	}
	return fmt.Errorf("interrupted while making the machines: %d of %d made, the rest not started or undone (run the same `machine swarm up` again to finish): %w", made, len(r.making.names), context.Cause(ctx))
}
