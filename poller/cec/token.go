package cec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
)

const tokenPath = "/apigovernance/api/oauth/tokenByAkSk"

// tokenSource caches the API Fabric bearer token. It renews at ~80 % of the
// token's life in the background while the old token keeps serving, and
// funnels every concurrent demand for a new token into a single request.
type tokenSource struct {
	c *Client

	mu      sync.Mutex
	tok     string
	exp     time.Time
	renewAt time.Time
	call    *tokenCall // in-flight fetch, nil if none
}

type tokenCall struct {
	done chan struct{}
	tok  string
	err  error
	last error // the latest failed attempt so far; guarded by tokenSource.mu
}

func newTokenSource(c *Client) *tokenSource { return &tokenSource{c: c} }

func (t *tokenSource) expiry() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.exp
}

// get returns a valid token, fetching one if needed. Only the caller's ctx
// bounds the wait; the fetch itself is detached so one impatient caller
// cannot abort it for everybody else.
func (t *tokenSource) get(ctx context.Context) (string, error) {
	t.mu.Lock()
	now := time.Now()
	if t.tok != "" && now.Before(t.exp) {
		tok := t.tok
		if !now.Before(t.renewAt) && t.call == nil {
			t.startLocked()
		}
		t.mu.Unlock()
		return tok, nil
	}
	call := t.call
	if call == nil {
		call = t.startLocked()
	}
	t.mu.Unlock()
	select {
	case <-call.done:
		return call.tok, call.err
	case <-ctx.Done():
		// Say why no token came (a TLS or network failure the fetch keeps
		// retrying), not only that the caller stopped waiting.
		t.mu.Lock()
		last := call.last
		t.mu.Unlock()
		if last != nil {
			// Text only: the caller's context ending stays the class
			// (not Retryable), as for every other canceled request.
			why := strings.TrimPrefix(last.Error(), "cec: tokenByAkSk: ")
			return "", fmt.Errorf("cec: tokenByAkSk: %w (last attempt: %s)", ctx.Err(), why)
		}
		return "", fmt.Errorf("cec: tokenByAkSk: %w", ctx.Err())
	}
}

// invalidate drops tok if it is still the current token, so the next get
// fetches a new one. A token that was already replaced is left alone: many
// callers failing with the same stale token cause one renewal, not many.
func (t *tokenSource) invalidate(tok string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tok == tok {
		t.tok, t.exp, t.renewAt = "", time.Time{}, time.Time{}
	}
}

func (t *tokenSource) startLocked() *tokenCall {
	call := &tokenCall{done: make(chan struct{})}
	t.call = call
	go t.run(call)
	return call
}

func (t *tokenSource) run(call *tokenCall) {
	budget := 3*t.c.cfg.RequestTimeout + 5*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	bo := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(100*time.Millisecond),
		backoff.WithMaxInterval(5*time.Second),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMaxElapsedTime(0), // bounded by ctx instead
	)
	var (
		tok     string
		life    time.Duration
		start   time.Time
		lastErr error
	)
	op := func() error {
		start = time.Now()
		var err error
		tok, life, err = t.c.fetchToken(ctx)
		if err != nil {
			if ctx.Err() != nil {
				// Our own budget ran out mid-attempt: the previous
				// attempt's failure says more than "deadline exceeded".
				if lastErr == nil {
					lastErr = err
				}
				return backoff.Permanent(err)
			}
			lastErr = err
			t.mu.Lock()
			call.last = err
			t.mu.Unlock()
			if errors.Is(err, ErrUnauthorized) {
				return backoff.Permanent(err)
			}
		}
		return err
	}
	_ = backoff.Retry(op, backoff.WithContext(bo, ctx))

	t.mu.Lock()
	if lastErr == nil || tok != "" {
		lastErr = nil
		t.tok = tok
		t.exp = start.Add(life)
		t.renewAt = start.Add(life * 8 / 10)
	}
	t.call = nil
	t.mu.Unlock()
	call.tok, call.err = tok, lastErr
	if lastErr != nil {
		call.tok = ""
		t.c.log.LogAttrs(ctx, slogWarn, "cec token renewal failed", errAttr(lastErr))
	}
	close(call.done)
}

type tokenRequest struct {
	AppKey    string `json:"app_key"`
	AppSecret string `json:"app_secret"`
}

// fetchToken performs one tokenByAkSk request for the configured lifetime
// and returns the token with the lifetime to trust: what was granted, but
// never longer than what was asked.
func (c *Client) fetchToken(ctx context.Context) (string, time.Duration, error) {
	tok, g, err := c.requestToken(ctx, c.cfg.TokenLifetime)
	if err != nil {
		return "", 0, err
	}
	if f := c.facts(); f != nil {
		f.ObserveToken(g)
	}
	life := g.Granted
	if life <= 0 || life > g.Requested {
		life = g.Requested
	}
	return tok, life, nil
}

// requestToken performs one tokenByAkSk request asking for lifetime.
func (c *Client) requestToken(ctx context.Context, lifetime time.Duration) (string, TokenGrant, error) {
	const ep = "tokenByAkSk"
	body, err := json.Marshal(tokenRequest{AppKey: c.cfg.AppKey, AppSecret: c.cfg.AppSecret.Reveal()})
	if err != nil {
		return "", TokenGrant{}, &Error{Endpoint: ep, Message: "cannot encode request", Err: ErrBadResponse}
	}
	resp, err := c.do(ctx, request{
		endpoint: ep, method: http.MethodPost, url: c.tokenURL + tokenPath, body: body,
		header: map[string]string{"X-Token-Expire": strconv.Itoa(int(lifetime / time.Second))},
	})
	tok, granted, err := c.finishToken(ctx, ep, resp, err)
	if err != nil {
		return "", TokenGrant{}, err
	}
	return tok, tokenGrant(resp.body, lifetime, granted, time.Now()), nil
}

func (c *Client) finishToken(ctx context.Context, ep string, resp *response, err error) (tok string, life time.Duration, _ error) {
	var elapsed time.Duration
	status := 0
	defer func() {
		c.observe(ep, err, elapsed)
		c.logResult(ctx, ep, status, elapsed, err)
	}()
	if err != nil {
		return "", 0, err
	}
	elapsed, status = resp.elapsed, resp.status
	if resp.status != http.StatusOK {
		err = c.httpError(ep, resp)
		return "", 0, err
	}
	tok, life, derr := decodeToken(resp.body)
	if derr != nil {
		err = c.badResponse(ep, resp, derr)
		return "", 0, err
	}
	c.secrets.addRotating(tok)
	return tok, life, nil
}
