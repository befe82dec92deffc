package cec

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

const (
	pathAgentInfo    = "/apiaccess/CC-Management/v1/queryAgentInfo"
	pathQueryPhone   = "/apiaccess/CC-Management/v2/mobileAgent/queryPhone"
	pathAgentAccount = "/apiaccess/rest/CC-Management/v1/queryAgentInfoByAccount"
	phonePageLimit   = 100
)

// fabricCall performs one API Fabric query with the bearer token. On 401/403
// it drops that token, fetches a new one and tries exactly once more: the
// vendor does not document how an expired token is reported, and a second
// refusal with a fresh token means the credentials themselves are refused.
func (c *Client) fabricCall(ctx context.Context, ep, method, path string, body any, decode func([]byte) error) error {
	if c.fabric == "" {
		return &Error{Endpoint: ep, Message: "no FabricURL configured", Err: ErrBadResponse}
	}
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return &Error{Endpoint: ep, Message: "cannot encode request", Err: ErrBadResponse}
		}
	}
	for attempt := 0; ; attempt++ {
		if err := c.waitBudget(ctx, ep); err != nil {
			return err
		}
		tok, err := c.tokens.get(ctx)
		if err != nil {
			return err
		}
		resp, err := c.do(ctx, request{
			endpoint: ep, method: method, url: c.fabric + path, body: raw,
			header: map[string]string{"Authorization": "Bearer " + tok, "X-APP-Key": c.cfg.AppKey},
		})
		err = c.fabricResult(ep, resp, err, decode)
		c.account(ctx, ep, resp, err)
		if errors.Is(err, ErrUnauthorized) && attempt == 0 {
			c.tokens.invalidate(tok)
			continue
		}
		return err
	}
}

func (c *Client) fabricResult(ep string, resp *response, err error, decode func([]byte) error) error {
	if err != nil {
		return err
	}
	if resp.status != http.StatusOK {
		return c.httpError(ep, resp)
	}
	if derr := decode(resp.body); derr != nil {
		var ce *codeError
		if errors.As(derr, &ce) {
			e := &Error{Endpoint: ep, HTTPStatus: resp.status, Code: ce.code,
				Message: c.scrubMessage(ce.msg), Excerpt: c.excerpt(resp.body), Err: ErrVendor}
			if ce.notFound {
				e.Err = ErrNotFound
			}
			return e
		}
		return c.badResponse(ep, resp, derr)
	}
	return nil
}

// QueryAgentInfo returns every agent's softphone binding and the SIP server.
func (c *Client) QueryAgentInfo(ctx context.Context) (*AgentInfo, error) {
	var out *AgentInfo
	err := c.fabricCall(ctx, "queryAgentInfo", http.MethodGet, pathAgentInfo, nil, func(b []byte) error {
		v, err := decodeAgentInfo(b)
		out = v
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

type phonePageRequest struct {
	Offset int `json:"offset"`
	Limit  int `json:"limit"`
}

// QueryPhonePage returns one queryPhone page. The vendor clamps limit to
// 1..100.
func (c *Client) QueryPhonePage(ctx context.Context, offset, limit int) (*PhonePage, error) {
	var out *PhonePage
	err := c.fabricCall(ctx, "queryPhone", http.MethodPost, pathQueryPhone, phonePageRequest{Offset: offset, Limit: limit},
		func(b []byte) error {
			v, err := decodePhonePage(b)
			out = v
			return err
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// QueryPhones walks every queryPhone page and returns the complete list, or
// an error and nothing. The vendor's offset pagination is not a snapshot, so
// the walk fails with ErrPageDrift when the total moves, a page comes back
// short before the total is reached, or a phone appears twice.
func (c *Client) QueryPhones(ctx context.Context) ([]Phone, error) {
	var (
		all   []Phone
		total = -1
		seen  = map[string]struct{}{}
	)
	for offset := 0; ; {
		p, err := c.QueryPhonePage(ctx, offset, phonePageLimit)
		if err != nil {
			return nil, err
		}
		if total < 0 {
			total = p.Total
			all = make([]Phone, 0, total)
		} else if p.Total != total {
			return nil, drift("total changed from " + strconv.Itoa(total) + " to " + strconv.Itoa(p.Total))
		}
		for _, ph := range p.Phones {
			// Not every answer carries the configuration id; the number is
			// then the only identity.
			key := "n:" + ph.PhoneNum
			if ph.ID != 0 {
				key = "i:" + strconv.FormatInt(ph.ID, 10)
			}
			if _, dup := seen[key]; dup {
				return nil, drift("phone seen twice")
			}
			seen[key] = struct{}{}
			all = append(all, ph)
		}
		offset += len(p.Phones)
		switch {
		case len(all) > total:
			return nil, drift("more phones than the total")
		case len(all) == total:
			return all, nil
		case len(p.Phones) < phonePageLimit:
			return nil, drift("short page before the total was reached")
		}
	}
}

func drift(msg string) error {
	return &Error{Endpoint: "queryPhone", Message: msg, Err: ErrPageDrift}
}

type agentAccountRequest struct {
	AccountCode string `json:"accountCode"`
}

// QueryAgentByAccount finds the agent bound to a sign-in account; an unknown
// account yields ErrNotFound.
func (c *Client) QueryAgentByAccount(ctx context.Context, account string) (*AgentAccount, error) {
	var out *AgentAccount
	err := c.fabricCall(ctx, "queryAgentInfoByAccount", http.MethodPost, pathAgentAccount,
		agentAccountRequest{AccountCode: account}, func(b []byte) error {
			v, err := decodeAgentAccount(b)
			out = v
			return err
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}
