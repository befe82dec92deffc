package app

import (
	"context"
	"hash/fnv"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cecbridge/cecbridge/internal/lease"
)

// assigner spreads the tenants over the live instances: each takes at most
// its fair share (by weight, ceil(total weight / live instances)), keeps
// what it holds while that stays fair, and hands over what exceeds its
// share when an instance joins. Which tenants an instance keeps is decided
// by rendezvous hashing of tenant and instance names, so every instance
// agrees without talking, and a tenant moves only when it must.
//
// The lease still decides who polls: the assigner only tells an instance
// whether to campaign for a free tenant, and when to let one go.
type assigner struct {
	e       *lease.Elector
	self    string
	weights map[string]int // tenant -> weight
	total   int
	log     *slog.Logger

	mu    sync.Mutex
	live  []string        // instances present, self included
	held  map[string]bool // tenants this instance holds
	ready chan struct{}   // closed once the live set has been read once

	moves atomic.Uint64 // tenants handed over to another instance
}

func newAssigner(e *lease.Elector, self string, weights map[string]int, log *slog.Logger) *assigner {
	a := &assigner{e: e, self: self, weights: weights, held: map[string]bool{}, ready: make(chan struct{}), log: log.With("component", "assign")}
	for _, w := range weights {
		a.total += w
	}
	return a
}

// run announces this instance and follows the live set until ctx ends:
// every TTL/3, and sooner (with backoff) while NATS cannot be read.
func (a *assigner) run(ctx context.Context) error {
	go a.e.Announce(ctx)
	var once sync.Once
	retry := 100 * time.Millisecond
	for {
		lctx, cancel := context.WithTimeout(ctx, a.e.TTL()/3)
		live, err := a.e.Live(lctx)
		cancel()
		next := a.e.TTL() / 3
		if err != nil {
			next, retry = retry, min(2*retry, a.e.TTL()/3)
		} else {
			retry = 100 * time.Millisecond
			if !slices.Contains(live, a.self) {
				live = append(live, a.self) // announcing may not have landed yet
				slices.Sort(live)
			}
			a.mu.Lock()
			if !slices.Equal(live, a.live) {
				a.log.Info("live instances changed", "instances", len(live), "share", shareOf(a.total, len(live)))
			}
			a.live = live
			a.mu.Unlock()
			once.Do(func() { close(a.ready) })
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(next):
		}
	}
}

// wait blocks until the live set has been read once (or ctx ends): a
// campaign that started before would see only itself and take too much.
func (a *assigner) wait(ctx context.Context) {
	select {
	case <-a.ready:
	case <-ctx.Done():
	}
}

func shareOf(total, live int) int {
	return (total + max(live, 1) - 1) / max(live, 1)
}

// Take is the campaign gate (lease.Gate): take a free tenant while this
// instance is under its share, or holds nothing, or nobody has taken the
// tenant for two lease terms (a share miscounted must not strand a
// tenant). A yes counts the tenant as held at once, so that the campaigns
// of several free tenants cannot all pass on the same spare room; Taken
// gives it back if the key was not won.
func (a *assigner) Take(key string, freeFor time.Duration) bool {
	select {
	case <-a.ready:
	default:
		return false // the live set is not known yet
	}
	tenant := strings.TrimPrefix(key, tenantKeyPrefix)
	a.mu.Lock()
	defer a.mu.Unlock()
	ok := freeFor > 2*a.e.TTL() || len(a.held) == 0 ||
		a.heldWeightLocked()+a.weights[tenant] <= shareOf(a.total, len(a.live))
	if ok {
		a.held[tenant] = true
	}
	return ok
}

// Taken implements lease.Gate.
func (a *assigner) Taken(key string, won bool) {
	if !won {
		a.holding(strings.TrimPrefix(key, tenantKeyPrefix), false)
	}
}

// tenantKeyPrefix starts the lease key of a tenant.
const tenantKeyPrefix = "tenant."

func (a *assigner) heldWeightLocked() int {
	w := 0
	for t := range a.held {
		w += a.weights[t]
	}
	return w
}

// holding records that this instance holds tenant (or no longer does).
func (a *assigner) holding(tenant string, held bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if held {
		a.held[tenant] = true
	} else {
		delete(a.held, tenant)
	}
}

// shouldYield says whether this instance holds more than its share and
// tenant is one it should give up: its held tenants ranked by rendezvous
// score, those beyond the share by weight go.
func (a *assigner) shouldYield(tenant string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.held[tenant] || len(a.held) <= 1 {
		return false
	}
	share := shareOf(a.total, len(a.live))
	if a.heldWeightLocked() <= share {
		return false
	}
	held := make([]string, 0, len(a.held))
	for t := range a.held {
		held = append(held, t)
	}
	slices.SortFunc(held, func(x, y string) int {
		sx, sy := score(x, a.self), score(y, a.self)
		switch {
		case sx > sy:
			return -1
		case sx < sy:
			return 1
		}
		return 0
	})
	kept := 0
	for i, t := range held {
		fits := i == 0 || kept+a.weights[t] <= share
		if t == tenant {
			return !fits
		}
		if fits {
			kept += a.weights[t]
		}
	}
	return false
}

// score is the rendezvous weight of instance for tenant.
func score(tenant, instance string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(tenant))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(instance))
	return h.Sum64()
}

// assignment is what /readyz and the metrics say about the assignment.
type assignment struct {
	Live  int      `json:"live_instances"`
	Share int      `json:"share"`
	Held  []string `json:"held"`
	Moves uint64   `json:"moves"`
}

func (a *assigner) snapshot() assignment {
	a.mu.Lock()
	defer a.mu.Unlock()
	held := make([]string, 0, len(a.held))
	for t := range a.held {
		held = append(held, t)
	}
	slices.Sort(held)
	return assignment{Live: len(a.live), Share: shareOf(a.total, len(a.live)), Held: held, Moves: a.moves.Load()}
}
