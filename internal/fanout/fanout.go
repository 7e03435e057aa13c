// Package fanout runs one piece of work per item side by side, with a bound on how many run at
// once, and joins the failures, each named by its item.
package fanout

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
)

// ItemError is the failure of one item.
type ItemError struct {
	Item string
	Err  error
}

func (e *ItemError) Error() string { return e.Item + ": " + e.Err.Error() }
func (e *ItemError) Unwrap() error { return e.Err }

// Map runs f for every item, at most limit at once (limit <= 0: all at once), and returns the
// results and errors by index. Once ctx ends, items not yet started are not started: their error
// is ctx's.
func Map[T, R any](ctx context.Context, items []T, limit int, f func(context.Context, T) (R, error)) ([]R, []error) {
	res := make([]R, len(items))
	errs := make([]error, len(items))
	if limit <= 0 || limit > len(items) {
		limit = len(items)
	}
	sem := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for i, it := range items {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			errs[i] = ctx.Err()
			continue
		}
		if ctx.Err() != nil {
			<-sem
			errs[i] = ctx.Err()
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			res[i], errs[i] = f(ctx, it)
		})
	}
	wg.Wait()
	return res, errs
}

// Each runs f for every item as Map does and joins the failures; name(item), when name is not
// nil, names each failure (an *ItemError).
func Each[T any](ctx context.Context, items []T, limit int, name func(T) string, f func(context.Context, T) error) error {
	_, errs := Map(ctx, items, limit, func(ctx context.Context, it T) (struct{}, error) { return struct{}{}, f(ctx, it) })
	var out []error
	for i, err := range errs {
		if err == nil {
			continue
		}
		if name != nil {
			err = &ItemError{Item: name(items[i]), Err: err}
		}
		out = append(out, err)
	}
	return errors.Join(out...)
}

// EnvParallel is the environment variable that bounds parallel creates.
const EnvParallel = "MACHINE_PARALLEL"

// DefaultLimit is how many machines are made at once unless told otherwise: MACHINE_PARALLEL,
// or four per CPU core (a create is about one CPU-second, most of it the engines' and the
// kernel's; more at once only queues them), at most 32.
func DefaultLimit() int {
	if v, err := strconv.Atoi(os.Getenv(EnvParallel)); err == nil && v > 0 {
		return v
	}
	return min(4*runtime.NumCPU(), 32)
}

// ParseLimit checks a --parallel value.
func ParseLimit(n int) (int, error) {
	if n < 0 {
		return 0, fmt.Errorf("--parallel %d: give a positive number (0: the default, %d here)", n, DefaultLimit())
	}
	if n == 0 {
		return DefaultLimit(), nil
	}
	return n, nil
}
