package subscriber

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/cecbridge/cecbridge/schemas"
)

// Answers: every request is answered exactly once, with its response or
// with one of the documented codes, and reported to the Observer.

// call is one request being answered. It is owned by one goroutine at a
// time (the endpoint callback, then possibly a worker), so answered needs
// no lock.
type call struct {
	req      micro.Request
	tenant   string
	endpoint string
	start    time.Time
	answered bool
	// async marks a request answered from a worker, after the endpoint's
	// callback returned: micro's Request is not safe to touch then (its
	// handler reads the error it records), so errors go out directly.
	async bool
}

// runFunc answers one parsed request. inline is true on the endpoint's
// callback goroutine: then it must not block and returns errWouldBlock
// instead, and the request is retried on a worker.
type runFunc func(ctx context.Context, inline bool) (any, error)

var (
	errWouldBlock = errors.New("subscriber: would block")
	errPanicked   = errors.New("subscriber: handler panicked")
)

// lookupError is an answer with a code from the documented set.
type lookupError struct {
	code int
	desc string
}

func (e *lookupError) Error() string { return "subscriber: " + strconv.Itoa(e.code) + " " + e.desc }

func fail(code int, desc string) error { return &lookupError{code: code, desc: desc} }

// recoverReq turns a panic while answering c into a counted 500, unless
// the answer had already been sent (a panicking Observer).
func (s *Service) recoverReq(c *call) {
	if r := recover(); r != nil {
		s.panics.Add(1)
		s.log.Error("lookup handler panicked", "subject", c.req.Subject(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		s.reply(c, nil, errPanicked)
	}
}

// reply answers c once, with resp or with err's code, and reports it to
// the Observer. A second reply for the same request is dropped.
func (s *Service) reply(c *call, resp any, err error) {
	if c.answered {
		return
	}
	req := c.req
	if err == nil {
		bp := bufPool.Get().(*[]byte)
		var b []byte
		if b, err = encodeAnswer((*bp)[:0], resp); err == nil {
			var rerr error
			if c.async {
				rerr = s.nc.Publish(req.Reply(), b)
			} else {
				rerr = req.Respond(b)
			}
			if rerr != nil {
				s.log.Debug("lookup reply failed", "subject", req.Subject(), "err", rerr)
			}
			s.observe(c, "ok")
		}
		if cap(b) <= maxPooled {
			*bp = b[:0]
			bufPool.Put(bp)
		}
		if err == nil {
			return
		}
	}
	code, desc := classify(err)
	if code >= 500 && !errors.Is(err, errPanicked) {
		s.log.Warn("lookup failed", "subject", req.Subject(), "code", code, "err", err)
	}
	var rerr error
	if c.async {
		msg := nats.NewMsg(req.Reply())
		msg.Header.Set(micro.ErrorCodeHeader, strconv.Itoa(code))
		msg.Header.Set(micro.ErrorHeader, desc)
		rerr = s.nc.PublishMsg(msg)
	} else {
		rerr = req.Error(strconv.Itoa(code), desc, nil)
	}
	if rerr != nil {
		s.log.Debug("lookup error reply failed", "subject", req.Subject(), "err", rerr)
	}
	s.observe(c, strconv.Itoa(code))
}

// observe marks c answered and reports it. Marking first means a panicking
// Observer, recovered by recoverReq, neither re-answers nor re-counts.
func (s *Service) observe(c *call, code string) {
	c.answered = true
	if s.cfg.Observer != nil {
		s.cfg.Observer.ObserveLookup(c.tenant, c.endpoint, code, time.Since(c.start))
	}
}

// classify maps an error to a documented code and a fixed description; no
// request data or vendor text reaches the reply.
func classify(err error) (int, string) {
	var le *lookupError
	switch {
	case errors.As(err, &le):
		return le.code, le.desc
	case errors.Is(err, errPanicked):
		return schemas.CodeInternal, "internal error"
	case errors.Is(err, ErrNotFound):
		return schemas.CodeNotFound, "not found"
	case errors.Is(err, context.DeadlineExceeded):
		return schemas.CodeTimeout, "upstream timeout"
	case errors.Is(err, context.Canceled):
		return schemas.CodeUnavailable, "service stopping"
	default:
		return schemas.CodeUnavailable, "upstream unavailable"
	}
}

// awaitSeq makes sure the view is ready and has applied minSeq, waiting at
// most wait when not inline.
func (s *Service) awaitSeq(ctx context.Context, minSeq uint64, wait time.Duration, inline bool) error {
	if s.view.isReady() && (minSeq == 0 || s.view.Applied() >= minSeq) {
		return nil
	}
	if inline {
		return errWouldBlock
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	err := s.view.WaitApplied(wctx, minSeq)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrViewNotReady):
		return fail(schemas.CodeUnavailable, "state view not ready")
	case ctx.Err() != nil:
		return fail(schemas.CodeUnavailable, "service stopping")
	default:
		return fail(schemas.CodeTimeout, "min_seq not reached within wait")
	}
}
