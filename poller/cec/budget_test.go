package cec_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec"
)

// With many ordinary requests waiting, a priority request goes within a
// couple of token intervals instead of behind all of them, and the rate
// still holds overall.
func TestBudgetPriorityOvertakesOrdinaryQueue(t *testing.T) {
	const perSecond = 200 // one token every 5 ms
	b := cec.NewBudget(perSecond, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	ordinary := 0
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if b.Wait(ctx) == nil {
					mu.Lock()
					ordinary++
					mu.Unlock()
				}
			}
		})
	}
	// Let the ordinary queue fill up.
	testwait.Poll(5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return ordinary >= 20
	})
	mu.Lock()
	before := ordinary
	mu.Unlock()
	for range 10 {
		if err := b.Wait(cec.WithPriority(ctx)); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	during := ordinary - before
	mu.Unlock()
	cancel()
	wg.Wait()
	// Behind 64 queued ordinary waiters, ten priority requests would have
	// let 64+ ordinary ones go first; with priority only a few slip in.
	if during > 20 {
		t.Fatalf("%d ordinary requests went while 10 priority requests waited; priority is not honoured", during)
	}
}

func TestBudgetHonoursContext(t *testing.T) {
	b := cec.NewBudget(1, 1)
	_ = b.Wait(context.Background()) // take the only token
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Wait(ctx); err == nil {
		t.Fatal("a cancelled wait succeeded")
	}
	if !cec.Priority(cec.WithPriority(context.Background())) || cec.Priority(context.Background()) {
		t.Fatal("priority marking is wrong")
	}
}
