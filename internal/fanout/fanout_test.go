package fanout

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestEachBoundsConcurrency(t *testing.T) {
	var now, peak atomic.Int32
	items := make([]int, 20)
	err := Each(t.Context(), items, 3, nil, func(ctx context.Context, _ int) error {
		n := now.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		now.Add(-1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if peak.Load() != 3 {
		t.Fatalf("peak concurrency %d, want 3", peak.Load())
	}
}

func TestEachNamesFailures(t *testing.T) {
	err := Each(t.Context(), []string{"a", "b", "c"}, 0, func(s string) string { return s }, func(ctx context.Context, s string) error {
		if s == "b" {
			return errors.New("boom")
		}
		return nil
	})
	var ie *ItemError
	if !errors.As(err, &ie) || ie.Item != "b" || err.Error() != "b: boom" {
		t.Fatalf("err %v", err)
	}
}

func TestEachStopsStartingOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var started atomic.Int32
	items := make([]int, 10)
	start := time.Now()
	err := Each(ctx, items, 1, nil, func(ctx context.Context, _ int) error {
		if started.Add(1) == 1 {
			return nil
		}
		cancel()
		<-ctx.Done()
		return ctx.Err()
	})
	if time.Since(start) > time.Second || started.Load() > 3 || !errors.Is(err, context.Canceled) {
		t.Fatalf("started %d in %s: %v", started.Load(), time.Since(start), err)
	}
}

func TestDefaultLimit(t *testing.T) {
	t.Setenv(EnvParallel, "7")
	if DefaultLimit() != 7 {
		t.Fatal(DefaultLimit())
	}
	t.Setenv(EnvParallel, "x")
	if d := DefaultLimit(); d < 4 || d > 32 {
		t.Fatal(d)
	}
	if _, err := ParseLimit(-1); err == nil || !strings.Contains(err.Error(), "--parallel") {
		t.Fatal(err)
	}
}
