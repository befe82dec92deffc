package cec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// CC-CMS interfaces and their documented limits.
const (
	cmsBasePath = "/rest/cmsapp/v1/openapi/"

	// MaxCallsAgents is the most agent IDs one queryagentcalls request may carry.
	MaxCallsAgents = 3000
	// MaxStatesAgents is the most agent IDs one agentstatusinfobyagentids
	// request may carry.
	MaxStatesAgents = 6000
)

// CMS endpoint names, as given to Observer and used by the simulator.
const (
	EndpointQueryAgentCalls  = "queryagentcalls"
	EndpointAgentStates      = "agentstatusinfobyagentids"
	EndpointTotalAgentStates = "totalagentstate"
)

var cmsPaths = map[string]string{
	EndpointQueryAgentCalls:  "agentgroup/queryagentcalls",
	EndpointAgentStates:      "agentgroup/agentstatusinfobyagentids",
	EndpointTotalAgentStates: "vdn/totalagentstate",
}

// CMSConfig configures a tenant's CC-CMS monitoring client.
type CMSConfig struct {
	// URL is the CMS base, e.g. https://cms.example.com:28443. Production
	// CMS is HTTPS only; plain http is accepted for the simulator, as for
	// the other endpoints.
	URL string
	AK  Secret
	SK  Secret
	// CCID is the call center ID every request names (1-65535).
	CCID int
	// VDNs says which VDN each agent belongs to; every request is for one
	// VDN. At most one VDN may have a nil Covers: it takes every agent no
	// other VDN covers.
	VDNs []VDN
	// SignedHeaders and Timestamp select the C2 signing variant; the zero
	// values are the vendor demo's (host only, seconds).
	SignedHeaders []string
	Timestamp     TimestampPrecision
	// Now is the clock signatures are dated by (default time.Now).
	Now func() time.Time
}

// VDN is one virtual call center of the tenant and the agents in it.
type VDN struct {
	ID     int            // 1-5000
	Covers func(int) bool // which work numbers belong to it; nil: every agent no other VDN covers
}

// CMS queries the CC-CMS monitoring interfaces for many agents per request.
// It shares its Client's HTTP transport, request budget (Limiter), Observer,
// logger and secret scrubbing. It is safe for concurrent use.
type CMS struct {
	c      *Client
	signer *C2Signer
	base   string            // URL without a trailing slash
	host   string            // the Host header Go sends, as signed
	paths  map[string]string // endpoint -> escaped path, as signed
	ccID   int
	vdns   []VDN // catch-all (nil Covers) last
	now    func() time.Time
}

// NewCMS validates cfg and returns a CMS client that shares c's transport,
// budget and observer. It does no I/O.
func (c *Client) NewCMS(cfg CMSConfig) (*CMS, error) {
	var errs []error
	u, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		errs = append(errs, errors.New("invalid CMS URL"))
	}
	headers, signerErrs := checkC2(cfg.AK, cfg.SK, cfg.SignedHeaders, cfg.Timestamp)
	errs = append(errs, signerErrs...)
	if cfg.CCID < 1 || cfg.CCID > 65535 {
		errs = append(errs, fmt.Errorf("CMS ccId must be 1-65535, got %d", cfg.CCID))
	}
	if len(cfg.VDNs) == 0 {
		errs = append(errs, errors.New("CMS needs at least one VDN"))
	}
	seen := map[int]bool{}
	var vdns, catchAll []VDN
	for _, v := range cfg.VDNs {
		if v.ID < 1 || v.ID > 5000 {
			errs = append(errs, fmt.Errorf("VDN must be 1-5000, got %d", v.ID))
		}
		if seen[v.ID] {
			errs = append(errs, fmt.Errorf("VDN %d given twice", v.ID))
		}
		seen[v.ID] = true
		if v.Covers == nil {
			catchAll = append(catchAll, v)
			continue
		}
		vdns = append(vdns, v)
	}
	if len(catchAll) > 1 {
		errs = append(errs, errors.New("only one CMS VDN may cover every other agent"))
	}
	if err := configError(errs); err != nil {
		return nil, err
	}
	m := &CMS{
		c: c, signer: newC2Signer(cfg.AK, cfg.SK, headers, cfg.Timestamp), base: u.String(), host: u.Host, ccID: cfg.CCID, now: cfg.Now,
		paths: make(map[string]string, len(cmsPaths)), vdns: append(vdns, catchAll...),
	}
	if m.now == nil {
		m.now = time.Now
	}
	for ep, p := range cmsPaths {
		m.paths[ep] = (&url.URL{Path: u.Path + cmsBasePath + p}).EscapedPath()
	}
	c.secrets.add(cfg.AK.Reveal())
	c.secrets.add(cfg.SK.Reveal())
	return m, nil
}

// VDNOf returns the VDN agent workNo belongs to; ok is false when no VDN
// covers it, so CMS cannot be asked about it.
func (m *CMS) VDNOf(workNo int) (vdn int, ok bool) {
	for _, v := range m.vdns {
		if v.Covers == nil || v.Covers(workNo) {
			return v.ID, true
		}
	}
	return 0, false
}

// Plan groups agents by VDN and splits each group into the fewest chunks of
// at most limit agents (MaxCallsAgents, MaxStatesAgents), of nearly equal
// size so they take about as long. Duplicates are dropped. Agents no VDN
// covers, or outside 101-999999, come back in unplanned: CMS cannot be
// asked about them.
func (m *CMS) Plan(agents []int, limit int) (chunks []Chunk, unplanned []int) {
	limit = max(limit, 1)
	sorted := slices.Clone(agents)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	byVDN := map[int][]int{}
	var order []int
	for _, wn := range sorted {
		vdn, ok := m.VDNOf(wn)
		if !ok || wn < 101 || wn > 999999 {
			unplanned = append(unplanned, wn)
			continue
		}
		if _, seen := byVDN[vdn]; !seen {
			order = append(order, vdn)
		}
		byVDN[vdn] = append(byVDN[vdn], wn)
	}
	slices.Sort(order)
	for _, vdn := range order {
		group := byVDN[vdn]
		n := (len(group) + limit - 1) / limit
		for i := range n {
			lo, hi := i*len(group)/n, (i+1)*len(group)/n
			chunks = append(chunks, Chunk{VDN: vdn, Agents: group[lo:hi:hi]})
		}
	}
	return chunks, unplanned
}

// ChunkResult is one chunk of a sweep: Answer when Err is nil. Either way
// Chunk says which agents it covered, so a failed chunk marks only its own
// agents as not observed.
type ChunkResult[A any] struct {
	Chunk  Chunk
	Answer A
	Err    error
}

// Sweep asks query about every chunk, at most parallel at a time, and
// returns one result per chunk in chunk order. Each request still waits for
// the client's budget; mark ctx with WithPriority so a sweep does not queue
// behind per-agent polls. A chunk that fails fails alone; when ctx ends, the
// chunks not yet asked report ctx's error.
func Sweep[A any](ctx context.Context, chunks []Chunk, parallel int, query func(context.Context, Chunk) (A, error)) []ChunkResult[A] {
	out := make([]ChunkResult[A], len(chunks))
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	for i, ch := range chunks {
		out[i].Chunk = ch
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			out[i].Err = fmt.Errorf("cec: sweep: %w", ctx.Err())
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i].Answer, out[i].Err = query(ctx, ch)
		})
	}
	wg.Wait()
	return out
}

type agentsRequest struct {
	CCID     int   `json:"ccId"`
	VDN      int   `json:"vdn"`
	AgentIDs []int `json:"agentIds"`
}

type vdnRequest struct {
	CCID int `json:"ccId"`
	VDN  int `json:"vdn"`
}

// QueryAgentCalls asks queryagentcalls for the calls of one chunk's agents
// (at most MaxCallsAgents), with each call's status and direction.
func (m *CMS) QueryAgentCalls(ctx context.Context, ch Chunk) (*CallsAnswer, error) {
	if err := m.checkChunk(EndpointQueryAgentCalls, ch, MaxCallsAgents); err != nil {
		return nil, err
	}
	return cmsQuery(ctx, m, EndpointQueryAgentCalls, m.agentsRequest(ch),
		func(b []byte) (*CallsAnswer, bool) { return fastAgentCalls(b, ch) },
		func(p json.RawMessage) (*CallsAnswer, error) { return decodeAgentCalls(p, ch) })
}

// QueryAgentStates asks agentstatusinfobyagentids for the state of one
// chunk's agents (at most MaxStatesAgents).
func (m *CMS) QueryAgentStates(ctx context.Context, ch Chunk) (*StatesAnswer, error) {
	if err := m.checkChunk(EndpointAgentStates, ch, MaxStatesAgents); err != nil {
		return nil, err
	}
	return cmsQuery(ctx, m, EndpointAgentStates, m.agentsRequest(ch),
		func(b []byte) (*StatesAnswer, bool) { return fastAgentStates(b, ch) },
		func(p json.RawMessage) (*StatesAnswer, error) { return decodeAgentStates(p, ch) })
}

// TotalAgentState asks totalagentstate for the state of every agent of a
// VDN in one request. CTI versions without it (3.6) give ErrNotSupported.
func (m *CMS) TotalAgentState(ctx context.Context, vdn int) (*VDNStates, error) {
	const ep = EndpointTotalAgentStates
	if vdn < 1 || vdn > 5000 {
		return nil, &Error{Endpoint: ep, Message: "VDN " + strconv.Itoa(vdn) + " outside 1-5000", Err: ErrInvalidRequest}
	}
	return cmsQuery(ctx, m, ep, vdnRequest{CCID: m.ccID, VDN: vdn}, nil,
		func(p json.RawMessage) (*VDNStates, error) { return decodeTotalAgentState(p, vdn) })
}

func (m *CMS) agentsRequest(ch Chunk) agentsRequest {
	return agentsRequest{CCID: m.ccID, VDN: ch.VDN, AgentIDs: ch.Agents}
}

// stamper is an answer that records its request's times.
type stamper interface {
	stamp(sent, received time.Time)
}

// cmsQuery sends one request, decodes a success answer (by fast, if given
// and able, else by decode on the envelope's payload) and stamps the
// answer with the request's times.
func cmsQuery[A stamper](ctx context.Context, m *CMS, ep string, body any,
	fast func([]byte) (A, bool), decode func(json.RawMessage) (A, error)) (A, error) {
	var out A
	sent, received, err := m.call(ctx, ep, body, cmsDecoder(&out, fast, decode))
	if err != nil {
		var zero A
		return zero, err
	}
	out.stamp(sent, received)
	return out, nil
}

// cmsDecoder reads a success answer's body into out: by fast, if given
// and able, else by decode on the envelope's payload.
func cmsDecoder[A any](out *A, fast func([]byte) (A, bool), decode func(json.RawMessage) (A, error)) func([]byte) error {
	return func(b []byte) error {
		if fast != nil {
			var ok bool
			if *out, ok = fast(b); ok {
				return nil
			}
		}
		p, err := decodeCMS(b)
		if err != nil {
			return err
		}
		*out, err = decode(p)
		return err
	}
}

func (m *CMS) checkChunk(ep string, ch Chunk, limit int) error {
	msg := ""
	switch {
	case len(ch.Agents) == 0:
		msg = "empty chunk"
	case len(ch.Agents) > limit:
		msg = "chunk of " + strconv.Itoa(len(ch.Agents)) + " agents exceeds the limit of " + strconv.Itoa(limit)
	case ch.VDN < 1 || ch.VDN > 5000:
		msg = "VDN " + strconv.Itoa(ch.VDN) + " outside 1-5000"
	case !slices.IsSorted(ch.Agents):
		msg = "chunk agents not sorted"
	}
	if msg == "" {
		return nil
	}
	return &Error{Endpoint: ep, Message: msg, Err: ErrInvalidRequest}
}

// call sends one signed CMS request and decodes an HTTP 200 answer's body.
// It returns when the request went out and when its answer was in.
func (m *CMS) call(ctx context.Context, ep string, body any, decode func([]byte) error) (sent, received time.Time, err error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return sent, received, &Error{Endpoint: ep, Message: "cannot encode request", Err: ErrInvalidRequest}
	}
	if err := m.c.waitBudget(ctx, ep); err != nil {
		return sent, received, err
	}
	path := m.paths[ep]
	auth := m.signer.Sign(http.MethodPost, path, "", map[string]string{
		"host": m.host, "content-type": contentTypeJSON, "content-length": strconv.Itoa(len(raw)),
	}, raw, m.now())
	sent = time.Now()
	resp, err := m.c.do(ctx, request{
		endpoint: ep, method: http.MethodPost, url: m.base + cmsBasePath + cmsPaths[ep], body: raw,
		header: map[string]string{"Authorization": auth},
	})
	received = time.Now()
	var d time.Duration
	status := 0
	if resp != nil {
		d, status = resp.elapsed, resp.status
		err = m.result(ep, resp, decode)
	}
	m.c.observe(ep, err, d)
	m.c.observeRefusal(ep, err)
	m.c.logResult(ctx, ep, status, d, err)
	return sent, received, err
}

// result classifies a CMS answer into the package's error vocabulary.
func (m *CMS) result(ep string, resp *response, decode func([]byte) error) error {
	c := m.c
	if resp.status != http.StatusOK {
		e := c.httpError(ep, resp)
		switch resp.status {
		case http.StatusUnauthorized:
			e.Err = ErrSignatureRefused
		case http.StatusForbidden:
			e.Message = "CMS refused this client: is this host on the tenant's IP whitelist?"
		case http.StatusNotFound:
			e.Message = "this CMS does not offer the interface"
			e.Err = ErrNotSupported
		}
		return e
	}
	err := decode(resp.body)
	if err == nil {
		return nil
	}
	var ce *codeError
	if !errors.As(err, &ce) {
		return c.badResponse(ep, resp, err)
	}
	e := &Error{Endpoint: ep, HTTPStatus: resp.status, Code: ce.code, Message: c.scrubMessage(ce.msg), Err: ErrVendor}
	switch ce.code {
	case cmsCallFailed:
		e.Err = ErrUpstream
	case cmsInvalidParam:
		e.Err = ErrInvalidRequest
	case cmsNeedsV3R8:
		e.Err = ErrNotSupported
		if e.Message == "" {
			e.Message = "needs CTI V3R8 and a CMS licence"
		}
	case cmsNoPermission:
		e.Err = ErrUnauthorized
		if e.Message == "" {
			e.Message = "the AK lacks permission for this interface"
		}
	}
	return e
}
