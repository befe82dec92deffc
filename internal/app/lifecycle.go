package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
)

// lifecycle is the bridge's start-up as a list of named steps, each with
// the way to undo it. Stop undoes them in reverse order under one
// deadline, logs each failure by name and returns them joined: the order
// of shutdown is written in one place, not spread over nested defers.
type lifecycle struct {
	log   *slog.Logger
	steps []lifecycleStep
}

type lifecycleStep struct {
	name string
	stop func(ctx context.Context) error
}

// started records that the step name is up and how to stop it.
func (l *lifecycle) started(name string, stop func(ctx context.Context) error) {
	l.steps = append(l.steps, lifecycleStep{name, stop})
}

// background runs fn in a goroutine until its context is cancelled; the
// step's stop cancels it and waits for it to return, and reports its
// error unless it is the cancellation itself.
func (l *lifecycle) background(parent context.Context, name string, fn func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(parent)
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	l.started(name, func(stopCtx context.Context) error {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		case <-stopCtx.Done():
			return fmt.Errorf("did not stop in time: %w", stopCtx.Err())
		}
	})
}

// stop undoes every started step, last first.
func (l *lifecycle) stop(ctx context.Context) error {
	var errs []error
	for _, s := range slices.Backward(l.steps) {
		if err := s.stop(ctx); err != nil {
			l.log.Error("shutdown step failed", "step", s.name, "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
		}
	}
	l.steps = nil
	return errors.Join(errs...)
}
