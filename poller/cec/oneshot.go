package cec

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// One-shot operations for tools (cecbridge probe) that must see how a
// tenant behaves without the retries, renewals and take-overs with which
// the bridge smooths it over. The bridge itself does not use them.

// FetchToken asks tokenByAkSk once for a token of the given lifetime,
// outside the client's token cache.
func (c *Client) FetchToken(ctx context.Context, lifetime time.Duration) (Secret, TokenGrant, error) {
	tok, g, err := c.requestToken(ctx, lifetime)
	return Secret(tok), g, err
}

// TryToken performs one queryAgentInfo with token and no renewal. It
// returns nil when the vendor accepted the token, else the *Error that
// says how it refused (HTTPStatus, scrubbed Excerpt, class).
func (c *Client) TryToken(ctx context.Context, token Secret) error {
	const ep = "queryAgentInfo"
	c.secrets.addRotating(token.Reveal())
	resp, err := c.do(ctx, request{
		endpoint: ep, method: http.MethodGet, url: c.fabric + pathAgentInfo,
		header: map[string]string{"Authorization": "Bearer " + token.Reveal(), "X-APP-Key": c.cfg.AppKey},
	})
	err = c.fabricResult(ep, resp, err, func(b []byte) error { _, err := decodeAgentInfo(b); return err })
	c.account(ctx, ep, resp, err)
	return err
}

// SignIn is the outcome of [Session.SignInOnce].
type SignIn struct {
	Endpoint string // "login" or "loginex"
	// SetGUIDForm is the shape of the Set-GUID header with the GUID itself
	// replaced, e.g. "JSESSIONID=<uuid>.AgentGateway0".
	SetGUIDForm string
}

var errRunning = errors.New("cec: session: Run is active")

// SignInOnce signs the session in once (loginex when SessionConfig.LoginEx
// is set), without retrying and without taking over a sign-in that exists
// already: that answer (100-002) is returned as the error. On success the
// session is Ready for queries until SignOut; nobody polls it meanwhile,
// so the caller must call PollOnce within two minutes at a time.
func (s *Session) SignInOnce(ctx context.Context) (SignIn, error) {
	if s.running.Load() {
		return SignIn{}, errRunning
	}
	s.setState(SigningIn)
	guid, setGUID, err := s.signInOnce(ctx, false)
	if err != nil {
		s.setState(SignedOut)
		return SignIn{}, err
	}
	s.mu.Lock()
	s.gen++
	s.guid, s.prevGUID = guid, ""
	s.setStateLocked(Ready)
	s.mu.Unlock()
	s.notify(Ready)
	ep := "login"
	if s.cfg.LoginEx {
		ep = "loginex"
	}
	return SignIn{Endpoint: ep, SetGUIDForm: guidForm(setGUID)}, nil
}

// Poll is the outcome of [Session.PollOnce].
type Poll struct {
	Event *AgentEvent // nil when the poll ended without an event
	// Empty says how an empty poll looked: "absent" (no event member),
	// "null" or "{}" (an object without an eventType).
	Empty   string
	Held    time.Duration // how long the gateway held the request
	Rotated bool          // the answer carried a new GUID (dynamic authentication)
}

// PollOnce long-polls the agent's event queue once.
func (s *Session) PollOnce(ctx context.Context) (Poll, error) {
	if s.running.Load() {
		return Poll{}, errRunning
	}
	guid, gen, st := s.current()
	if st != Ready {
		return Poll{}, &Error{Endpoint: "agentevent", Message: "session is " + st.String(), Err: ErrSessionNotReady}
	}
	env, resp, err := s.gwCall(ctx, "agentevent", http.MethodGet, "/agentevent/"+s.idStr, guid, gen, nil, s.c.cfg.LongPollTimeout)
	if err != nil {
		return Poll{}, err
	}
	now, _, _ := s.current()
	p := Poll{Held: resp.elapsed, Rotated: now != guid}
	ev, ok, derr := decodeEvent(env.Event)
	switch {
	case derr != nil:
		return p, s.c.badResponse("agentevent", resp, derr)
	case ok:
		p.Event = &ev
	case len(env.Event) == 0:
		p.Empty = "absent"
	case isNull(env.Event):
		p.Empty = "null"
	default:
		p.Empty = "{}"
	}
	return p, nil
}

// SignOut signs a session that SignInOnce signed in out again.
func (s *Session) SignOut(ctx context.Context) error {
	if s.running.Load() {
		return errRunning
	}
	guid, _, _ := s.current()
	var err error
	if guid != "" {
		_, _, err = s.gwCall(ctx, "logout", http.MethodDelete, "/onlineagent/"+s.idStr+"/logout", guid, 0, nil, 0)
	}
	s.mu.Lock()
	s.gen++
	s.guid, s.prevGUID = "", ""
	changed := s.setStateLocked(SignedOut)
	s.mu.Unlock()
	if changed {
		s.notify(SignedOut)
	}
	return err
}

var (
	uuidRE    = regexp.MustCompile(`(?i)^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	guidNodRE = regexp.MustCompile(`^\.[A-Za-z]+[0-9]*$`)
)

// guidForm describes a Set-GUID header value without the GUID in it.
func guidForm(h string) string {
	h = strings.TrimSpace(h)
	if h == "" {
		return "(none)"
	}
	prefix, v := "", h
	if i := strings.Index(strings.ToUpper(h), "JSESSIONID="); i >= 0 {
		prefix, v = h[:i+len("JSESSIONID=")], h[i+len("JSESSIONID="):]
	}
	attrs := ""
	if i := strings.IndexAny(v, "; ,"); i >= 0 {
		v, attrs = v[:i], v[i:]
		var names []string
		for a := range strings.SplitSeq(attrs, ";") {
			if k, _, _ := strings.Cut(strings.TrimSpace(a), "="); k != "" {
				names = append(names, k)
			}
		}
		attrs = ""
		if len(names) > 0 {
			attrs = "; " + strings.Join(names, "; ")
		}
	}
	form := "<opaque, " + strconv.Itoa(len(v)) + " characters>"
	if m := uuidRE.FindString(v); m != "" {
		form = "<uuid>"
		if rest := v[len(m):]; rest != "" {
			if guidNodRE.MatchString(rest) {
				form += rest
			} else {
				form += "<" + strconv.Itoa(len(rest)) + " more characters>"
			}
		}
	}
	return prefix + form + attrs
}

// EndpointOf names the vendor interface a request goes to, as the client
// names it in errors and to its Observer ("" for a path it does not use).
func EndpointOf(method, path string) string {
	switch {
	case strings.HasSuffix(path, tokenPath):
		return "tokenByAkSk"
	case strings.HasSuffix(path, pathAgentInfo):
		return "queryAgentInfo"
	case strings.HasSuffix(path, pathQueryPhone):
		return "queryPhone"
	case strings.HasSuffix(path, pathAgentAccount):
		return "queryAgentInfoByAccount"
	}
	if _, rest, ok := strings.Cut(path, cmsBasePath); ok && method == http.MethodPost {
		for ep, p := range cmsPaths {
			if rest == p {
				return ep
			}
		}
		return ""
	}
	_, rest, ok := strings.Cut(path, gwBase+"/")
	if !ok {
		return ""
	}
	seg := strings.Split(rest, "/")
	switch {
	case len(seg) == 2 && seg[0] == "agentevent":
		return "agentevent"
	case len(seg) == 2 && seg[0] == "onlineagent" && method == http.MethodPut:
		return "login"
	case len(seg) == 3 && seg[0] == "onlineagent":
		return seg[2] // loginex, forcelogin, logout, updateGuid, agentstatus
	case len(seg) == 4 && seg[0] == "calldata":
		return seg[2] // allcallinfoEx, callinfobycallid
	}
	return ""
}
