package cec

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// capturedExchange is the part of a capture file (cecbridge probe
// --capture) that the decoders need.
type capturedExchange struct {
	Endpoint string `json:"endpoint"`
	Outcome  string `json:"outcome"`
	Request  struct {
		Body json.RawMessage `json:"body"`
	} `json:"request"`
	Response *struct {
		Status  int               `json:"status"`
		Headers map[string]string `json:"headers"`
		Body    json.RawMessage   `json:"body"`
	} `json:"response"`
}

// body is the answer as it came: JSON as is, anything else was stored as
// a JSON string.
func (x capturedExchange) body() []byte {
	var s string
	if json.Unmarshal(x.Response.Body, &s) == nil {
		return []byte(s)
	}
	return x.Response.Body
}

// Every body in every capture under testdata/captures is put through the
// client's own classification and decoders, which must come to what the
// client made of it when it was captured: a tenant's real answers stay
// understood as the client changes.
func TestDecodersAgreeWithEveryCapturedAnswer(t *testing.T) {
	files, err := filepath.Glob("testdata/captures/*/exchanges/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Skip("no capture in testdata/captures")
	}
	c, err := New(Config{FabricURL: "http://fabric.invalid", GatewayURL: "http://gateway.invalid", AppKey: "k", AppSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	s := c.NewSession(SessionConfig{AgentID: 1001})
	m, err := c.NewCMS(CMSConfig{URL: "http://cms.invalid", AK: "ak", SK: "sk", CCID: 1, VDNs: []VDN{{ID: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	checked := map[string]int{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var x capturedExchange
		if err := json.Unmarshal(data, &x); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if x.Response == nil {
			continue // no answer arrived
		}
		if x.Endpoint == "" || x.Outcome == "" {
			t.Errorf("%s: an answer without the endpoint (%q) or what the client made of it (%q)", f, x.Endpoint, x.Outcome)
			continue
		}
		hdr := http.Header{}
		for k, v := range x.Response.Headers {
			hdr.Set(k, v)
		}
		resp := &response{status: x.Response.Status, header: hdr, body: x.body()}
		var got string
		if _, isCMS := cmsPaths[x.Endpoint]; isCMS {
			got = outcome(judgeCMS(t, m, x.Endpoint, x.Request.Body, resp))
		} else {
			got = outcome(judge(c, s, x.Endpoint, resp))
		}
		if got != x.Outcome {
			t.Errorf("%s (%s): the client now makes %q of the answer, it made %q when captured", f, x.Endpoint, got, x.Outcome)
		}
		checked[x.Endpoint]++
	}
	t.Logf("captured answers decoded: %v", checked)
	for _, ep := range []string{"tokenByAkSk", "queryAgentInfo", "queryPhone", "allcallinfoEx", "agentevent", EndpointQueryAgentCalls, EndpointAgentStates} {
		if checked[ep] == 0 {
			t.Errorf("no %s answer in the captures: the committed capture should hold one", ep)
		}
	}
}

// judgeCMS runs the client's handling of one CMS answer, for the agents
// its captured request asked about.
func judgeCMS(t *testing.T, m *CMS, endpoint string, request json.RawMessage, resp *response) error {
	t.Helper()
	var req struct {
		VDN      int   `json:"vdn"`
		AgentIDs []int `json:"agentIds"`
	}
	if err := json.Unmarshal(request, &req); err != nil {
		t.Fatalf("%s: captured request: %v", endpoint, err)
	}
	ch := Chunk{VDN: req.VDN, Agents: slices.Sorted(slices.Values(req.AgentIDs))}
	switch endpoint {
	case EndpointQueryAgentCalls:
		var out *CallsAnswer
		return m.result(endpoint, resp, cmsDecoder(&out, func(b []byte) (*CallsAnswer, bool) { return fastAgentCalls(b, ch) },
			func(p json.RawMessage) (*CallsAnswer, error) { return decodeAgentCalls(p, ch) }))
	case EndpointAgentStates:
		var out *StatesAnswer
		return m.result(endpoint, resp, cmsDecoder(&out, func(b []byte) (*StatesAnswer, bool) { return fastAgentStates(b, ch) },
			func(p json.RawMessage) (*StatesAnswer, error) { return decodeAgentStates(p, ch) }))
	default:
		var out *VDNStates
		return m.result(endpoint, resp, cmsDecoder(&out, nil,
			func(p json.RawMessage) (*VDNStates, error) { return decodeTotalAgentState(p, req.VDN) }))
	}
}

// judge runs the client's handling of one answer from endpoint.
func judge(c *Client, s *Session, endpoint string, resp *response) error {
	decoders := map[string]func([]byte) error{
		"queryAgentInfo":          func(b []byte) error { _, err := decodeAgentInfo(b); return err },
		"queryPhone":              func(b []byte) error { _, err := decodePhonePage(b); return err },
		"queryAgentInfoByAccount": func(b []byte) error { _, err := decodeAgentAccount(b); return err },
	}
	if d, ok := decoders[endpoint]; ok {
		return c.fabricResult(endpoint, resp, nil, d)
	}
	if endpoint == "tokenByAkSk" {
		_, _, err := c.finishToken(context.Background(), endpoint, resp, nil)
		return err
	}
	env, err := s.classify(endpoint, resp)
	if err != nil {
		return err
	}
	var derr error
	switch endpoint {
	case "allcallinfoEx":
		_, derr = decodeCallIDs(env.Result)
	case "agentevent":
		_, _, derr = decodeEvent(env.Event)
	case "agentstatus":
		_, derr = decodeAgentStatus(env.Result)
	case "callinfobycallid":
		_, derr = decodeCallInfo(env.Result)
	}
	if derr != nil {
		return c.badResponse(endpoint, resp, derr)
	}
	return nil
}
