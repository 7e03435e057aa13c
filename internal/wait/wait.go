// Package wait has the one way this project pauses: for a while, or until the context ends.
package wait

import (
	"context"
	"time"
)

// Sleep waits d, or returns ctx's error as soon as ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Until checks cond every interval until it says done, returns an error, the timeout passes
// or ctx ends. On a timeout the error carries cond's last reason ("the engine lists [] as its
// mirrors"); when ctx ends first, ctx's error.
func Until(ctx context.Context, timeout, interval time.Duration, cond func(ctx context.Context) (done bool, reason string, err error)) error {
	deadline := time.Now().Add(timeout)
	for {
		done, reason, err := cond(ctx)
		if err != nil || done {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return &TimeoutError{After: timeout, Last: reason}
		}
		if err := Sleep(ctx, interval); err != nil {
			return err
		}
	}
}

// TimeoutError is a wait that ran out, with the last reason it was still waiting.
type TimeoutError struct {
	After time.Duration
	Last  string
}

func (e *TimeoutError) Error() string {
	if e.Last == "" {
		return "not within " + e.After.String()
	}
	return e.Last + " (still after " + e.After.String() + ")"
}
