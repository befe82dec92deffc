package cec

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// capturedExchange is the part of a capture file (cecbridge probe
// --capture) that the decoders need.
type capturedExchange struct {
	Endpoint string `json:"endpoint"`
	Outcome  string `json:"outcome"`
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
	checked := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var x capturedExchange
		if err := json.Unmarshal(data, &x); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if x.Response == nil || x.Outcome == "" {
			continue // no answer arrived, or the client never judged it
		}
		hdr := http.Header{}
		for k, v := range x.Response.Headers {
			hdr.Set(k, v)
		}
		resp := &response{status: x.Response.Status, header: hdr, body: x.body()}
		got := outcome(judge(c, s, x.Endpoint, resp))
		if got != x.Outcome {
			t.Errorf("%s (%s): the client now makes %q of the answer, it made %q when captured", f, x.Endpoint, got, x.Outcome)
		}
		checked++
	}
	t.Logf("%d captured answers decoded", checked)
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
