package cec

import (
	"encoding/json"
	"errors"
	"slices"
	"time"
)

// FactObserver is an optional extension of [Observer]: a Config.Observer
// that also implements it is told the facts about the vendor that the
// bridge's assumptions rest on, so that a contradiction (a token shorter
// than asked, a clock far off, a return code nobody knows) can be named
// while the bridge runs. Implementations must be cheap and safe for
// concurrent use; values never include secrets.
type FactObserver interface {
	// ObserveCode records a vendor return code the client has no meaning
	// for (class ErrVendor), answered on endpoint.
	ObserveCode(endpoint, code string)
	// ObserveToken records one token the vendor granted.
	ObserveToken(TokenGrant)
}

// RefusalObserver is another optional extension of [Observer]: a
// Config.Observer that implements it is told each time CC-CMS refuses the
// client for a reason no retry mends. err matches ErrSignatureRefused when
// CMS refused the C2 signature (AK/SK, clock or signing variant), else
// ErrUnauthorized (this host is not on the IP whitelist, or the AK may not
// use the interface). The same rules apply as for FactObserver; a
// successful CMS answer is an ObserveRequest with outcome "ok".
type RefusalObserver interface {
	ObserveRefusal(endpoint string, err error)
}

// observeRefusal tells the RefusalObserver of a CMS refusal.
func (c *Client) observeRefusal(endpoint string, err error) {
	if f, ok := c.cfg.Observer.(RefusalObserver); ok && errors.Is(err, ErrUnauthorized) {
		f.ObserveRefusal(endpoint, err)
	}
}

// TokenGrant describes a tokenByAkSk answer, without the token.
type TokenGrant struct {
	Requested time.Duration // X-Token-Expire sent
	Granted   time.Duration // Expires answered; 0 when absent or unreadable
	// ServerTime is the vendor's CreateTime (second precision); zero when
	// absent. Received is our clock when the answer arrived, so that
	// ServerTime-Received is the clock skew give or take the latency.
	ServerTime time.Time
	Received   time.Time
	Fields     []string // the answer's member names, sorted
}

// Skew is how far the vendor's clock is ahead of ours (negative: behind),
// and false when the answer carried no CreateTime.
func (g TokenGrant) Skew() (time.Duration, bool) {
	if g.ServerTime.IsZero() {
		return 0, false
	}
	return g.ServerTime.Sub(g.Received.Truncate(time.Second)), true
}

// tokenGrant reads the facts of a token answer body that decodeToken
// already accepted.
func tokenGrant(body []byte, requested, granted time.Duration, received time.Time) TokenGrant {
	g := TokenGrant{Requested: requested, Granted: granted, Received: received}
	var members map[string]json.RawMessage
	if json.Unmarshal(body, &members) == nil {
		for k := range members {
			g.Fields = append(g.Fields, k)
		}
		slices.Sort(g.Fields)
		var created flexInt
		if raw, ok := members["CreateTime"]; ok && json.Unmarshal(raw, &created) == nil && created.Set && created.V > 0 {
			g.ServerTime = epochTime(created.V)
		}
	}
	return g
}

// epochTime reads an epoch timestamp in seconds, or in milliseconds when
// it is too large to be seconds.
func epochTime(v int64) time.Time {
	if v > 1e11 {
		return time.UnixMilli(v)
	}
	return time.Unix(v, 0)
}

func (c *Client) facts() FactObserver {
	f, _ := c.cfg.Observer.(FactObserver)
	return f
}

// observeCode passes an unexplained vendor code to the FactObserver.
func (c *Client) observeCode(endpoint string, err error) {
	f := c.facts()
	if f == nil || err == nil {
		return
	}
	var e *Error
	if errors.As(err, &e) && e.Code != "" && errors.Is(e.Err, ErrVendor) {
		f.ObserveCode(endpoint, e.Code)
	}
}
