package subscriber

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/cecbridge/cecbridge/schemas"
)

// Live lookups: the requests the view cannot answer (agent.by_account) or
// answers too stale for the caller (max_age) go to the vendor, one call per
// key at a time however many requests want it.

// ErrNotFound is what a LiveFetcher wraps when the vendor says the entity
// does not exist; the service answers it with schemas.CodeNotFound.
var ErrNotFound = errors.New("subscriber: not found")

// Account is an agent as queryAgentInfoByAccount describes it.
type Account struct {
	WorkNo      int
	AgentType   int
	AgentStatus string
}

// LiveFetcher asks the vendor directly, for lookups the view cannot answer
// (agent.by_account) or answers too stale for the caller (max_age). An
// error wrapping ErrNotFound becomes 404, a deadline 504, anything else 503.
type LiveFetcher interface {
	AgentCalls(ctx context.Context, tenant string, workNo int) ([]string, error)
	AgentByAccount(ctx context.Context, tenant, account string) (Account, error)
}

type liveCallsResult struct {
	ids []string
	at  time.Time
}

// fetchCalls asks the vendor for an agent's calls.
func (s *Service) fetchCalls(ctx context.Context, tenant string, workNo int) (liveCallsResult, error) {
	key := "calls\x00" + tenant + "\x00" + strconv.Itoa(workNo)
	return liveFlight(ctx, s, key, func(fctx context.Context) (liveCallsResult, error) {
		ids, err := s.live.AgentCalls(fctx, tenant, workNo)
		if err != nil {
			return liveCallsResult{}, fmt.Errorf("subscriber: live calls: %w", err)
		}
		return liveCallsResult{ids: ids, at: time.Now().UTC()}, nil
	})
}

// fetchAccount asks the vendor which agent signs in with account, and
// caches the answer.
func (s *Service) fetchAccount(ctx context.Context, tenant, account string) (accountEntry, error) {
	key := "acct\x00" + tenant + "\x00" + account
	return liveFlight(ctx, s, key, func(fctx context.Context) (accountEntry, error) {
		acc, err := s.live.AgentByAccount(fctx, tenant, account)
		if err != nil {
			return accountEntry{}, fmt.Errorf("subscriber: live account: %w", err)
		}
		e := accountEntry{acc: acc, at: time.Now().UTC()}
		s.accounts.put(tenant, account, e)
		return e, nil
	})
}

// liveFlight runs fetch once per key at a time, however many requests
// wait for it, and waits for its answer as long as ctx and LiveTimeout
// allow.
func liveFlight[T any](ctx context.Context, s *Service, key string, fetch func(context.Context) (T, error)) (T, error) {
	if s.live == nil {
		var zero T
		return zero, fail(schemas.CodeUnavailable, "live lookups not configured")
	}
	ch := s.sf.DoChan(key, func() (any, error) {
		// The fetch runs on behalf of every waiter, so it is bounded by the
		// service's lifetime and LiveTimeout, not by one request.
		fctx, cancel := context.WithTimeout(s.ctx, s.cfg.LiveTimeout)
		defer cancel()
		return s.guard(func() (any, error) {
			s.liveCalls.Add(1)
			v, err := fetch(fctx)
			if err != nil {
				return nil, err
			}
			return v, nil
		})
	})
	s.liveWaiting.Add(1)
	defer s.liveWaiting.Add(-1)
	return awaitFlight[T](ctx, ch, s.cfg.LiveTimeout)
}

// guard runs a live fetch, turning its panic into errPanicked so that every
// single-flight waiter gets an error instead of a re-panic.
func (s *Service) guard(f func() (any, error)) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.panics.Add(1)
			s.log.Error("live fetcher panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			v, err = nil, errPanicked
		}
	}()
	return f()
}

func awaitFlight[T any](ctx context.Context, ch <-chan singleflight.Result, limit time.Duration) (T, error) {
	var zero T
	t := time.NewTimer(limit + time.Second) // the flight itself ends by LiveTimeout
	defer t.Stop()
	select {
	case r := <-ch:
		if r.Err != nil {
			return zero, r.Err
		}
		return r.Val.(T), nil
	case <-ctx.Done():
		return zero, fail(schemas.CodeUnavailable, "service stopping")
	case <-t.C:
		return zero, fail(schemas.CodeTimeout, "upstream timeout")
	}
}

// accountCache keeps agent.by_account answers for ttl.
type accountCache struct {
	mu   sync.Mutex
	ttl  time.Duration
	size int
	m    map[string]accountEntry
}

type accountEntry struct {
	acc Account
	at  time.Time
}

func (c *accountCache) get(tenant, account string, maxAge time.Duration) (accountEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[tenant+"\x00"+account]
	if !ok || time.Since(e.at) > min(c.ttl, maxAge) {
		return accountEntry{}, false
	}
	return e, true
}

func (c *accountCache) put(tenant, account string, e accountEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.size {
		for k, old := range c.m {
			if time.Since(old.at) > c.ttl {
				delete(c.m, k)
			}
		}
		// Still full: drop arbitrary entries; the cache only spares the vendor.
		for k := range c.m {
			if len(c.m) < c.size {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[tenant+"\x00"+account] = e
}
