package cec_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/testbuf"
	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/poller/cec"
	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

func TestSecretFormatting(t *testing.T) {
	s := cec.Secret("hunter2")
	type wrap struct{ P cec.Secret }
	var out []string
	for _, f := range []string{"%v", "%s", "%q", "%x", "%X", "%d", "%+v", "%#v", "%10s"} {
		out = append(out, fmt.Sprintf(f, s), fmt.Sprintf(f, wrap{s}), fmt.Sprintf(f, &wrap{s}))
	}
	j, _ := json.Marshal(wrap{s})
	out = append(out, string(j), s.String(), s.GoString())
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "pw", s, "w", wrap{s})
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "pw", s)
	out = append(out, buf.String())
	for _, o := range out {
		if strings.Contains(o, "hunter2") {
			t.Fatalf("secret leaked: %s", o)
		}
	}
	if s.Reveal() != "hunter2" {
		t.Fatal("Reveal")
	}
}

func TestErrorClasses(t *testing.T) {
	e := &cec.Error{Endpoint: "allcallinfoEx", Code: "000-003", Err: cec.ErrSessionLost}
	if !errors.Is(e, cec.ErrSessionLost) || errors.Is(e, cec.ErrSessionNotReady) || !strings.HasPrefix(e.Error(), "cec: ") {
		t.Fatalf("%v", e)
	}
	nr := fmt.Errorf("wrapped: %w", &cec.Error{Endpoint: "x", Err: cec.ErrSessionNotReady})
	if !errors.Is(nr, cec.ErrSessionNotReady) || !errors.Is(nr, cec.ErrSessionLost) || !cec.Retryable(nr) {
		t.Fatal("ErrSessionNotReady must also match ErrSessionLost")
	}
	if cec.Retryable(&cec.Error{Err: cec.ErrNotFound}) || cec.Retryable(context.Canceled) || cec.Retryable(nil) {
		t.Fatal("Retryable too eager")
	}
}

// recordingTransport remembers every token, GUID and password that crossed
// the wire in either direction.
type recordingTransport struct {
	mu      sync.Mutex
	secrets map[string]bool
	c2      int // C2-signed requests seen
}

func (r *recordingTransport) add(v string) {
	if len(v) >= 4 {
		r.mu.Lock()
		r.secrets[v] = true
		r.mu.Unlock()
	}
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	auth := req.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(auth, "Bearer "); ok {
		r.add(tok)
	}
	if strings.HasPrefix(auth, "auth-v2/") {
		// A C2 header: the whole value, its AK and its signature.
		parts := strings.Split(auth, "/")
		r.add(auth)
		r.add(parts[1])
		r.add(parts[len(parts)-1])
		r.mu.Lock()
		r.c2++
		r.mu.Unlock()
	}
	r.add(req.Header.Get("Guid"))
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if g := resp.Header.Get("Set-GUID"); g != "" {
		r.add(strings.TrimPrefix(g, "JSESSIONID="))
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	var m map[string]any
	if json.Unmarshal(body, &m) == nil {
		if v, ok := m["AccessToken"].(string); ok {
			r.add(v)
		}
	}
	resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{rerr}))
	return resp, nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	return 0, io.EOF
}

func TestSecretsNeverLeak(t *testing.T) {
	sim := startSim(t, cecsim.Config{Agents: 5, GUIDInterval: 50 * time.Millisecond, GUIDTimeout: 100 * time.Millisecond, LongPollHold: 20 * time.Millisecond,
		CMS: cecsim.CMS{AK: "planted-cms-ak", SK: "planted-cms-sk", ClockSkew: time.Minute}})
	rec := &recordingTransport{secrets: map[string]bool{"app-secret": true, "agent-pass": true, "bad-agent-pass": true,
		"planted-cms-ak": true, "planted-cms-sk": true, "wrong-cms-sk": true}}
	var logs testbuf.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := newClient(t, sim, func(cfg *cec.Config) {
		cfg.HTTPClient = &http.Client{Transport: rec}
		cfg.Logger = logger
		cfg.RequestTimeout = 300 * time.Millisecond
	})
	ctx := context.Background()
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	info, err := c.QueryAgentInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range info.Agents {
		rec.add(a.SIPPassword.Reveal())
	}
	phones, err := c.QueryPhones(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range phones {
		rec.add(p.Password.Reveal())
	}
	s := runSession(t, c, cec.SessionConfig{Logger: logger})
	// Failing requests whose bodies hold secrets.
	for _, f := range []cecsim.Fault{
		{Endpoint: "queryAgentInfo", Kind: cecsim.FaultGarbled},
		{Endpoint: "queryAgentInfo", Kind: cecsim.FaultTruncated},
		{Endpoint: "queryPhone", Kind: cecsim.FaultGarbled},
		{Endpoint: "queryAgentInfo", Kind: cecsim.FaultHTTPStatus, Status: 500},
		{Endpoint: "allcallinfoEx", Kind: cecsim.FaultVendorCode, Code: "100-007"},
		{Endpoint: "allcallinfoEx", Kind: cecsim.FaultGarbled},
	} {
		f.Count = 1
		sim.Inject(f)
		_, e1 := c.QueryAgentInfo(ctx)
		_, e2 := c.QueryPhonePage(ctx, 0, 100)
		_, e3 := s.AllCallInfo(ctx, 1002)
		keep(e1)
		keep(e2)
		keep(e3)
	}
	sim.RevokeTokens()
	_, err = c.QueryAgentInfo(ctx)
	keep(err)
	sim.InvalidateGUID(1001)
	_, err = s.AllCallInfo(ctx, 1002)
	keep(err)
	testwait.For(t, 5*time.Second, "recovered", func() bool { return s.Ready() })
	// A wrong agent password and wrong app secret.
	bad := c.NewSession(cec.SessionConfig{AgentID: 1003, Password: "bad-agent-pass", Logger: logger})
	bctx, bcancel := context.WithCancel(ctx)
	bdone := make(chan error, 1)
	go func() { bdone <- bad.Run(bctx) }()
	testwait.For(t, 5*time.Second, "bad sign-in attempted", func() bool { return counter(sim, "login") >= 3 })
	bcancel()
	<-bdone
	wrong := newClient(t, sim, func(cfg *cec.Config) {
		cfg.AppSecret = "wrong-app-secret"
		cfg.Logger = logger
		cfg.HTTPClient = &http.Client{Transport: rec}
	})
	rec.add("wrong-app-secret")
	_, err = wrong.QueryAgentInfo(ctx)
	keep(err)

	// CMS: C2-signed requests under faults, a wrong SK and a skewed clock
	// (the simulator echoes a refused Authorization in its 401 body).
	planted := func(mod func(*cec.CMSConfig)) func(*cec.CMSConfig) {
		return func(cfg *cec.CMSConfig) {
			cfg.AK, cfg.SK = "planted-cms-ak", "planted-cms-sk"
			if mod != nil {
				mod(cfg)
			}
		}
	}
	cms := func(mod func(*cec.CMSConfig)) *cec.CMS { return newCMS(t, sim, c, planted(mod)) }
	good := cms(nil)
	chunk := cec.Chunk{VDN: 1, Agents: []int{1001, 1002}}
	if _, err := good.QueryAgentCalls(ctx, chunk); err != nil {
		t.Fatal(err)
	}
	for _, f := range []cecsim.Fault{
		{Endpoint: "queryagentcalls", Kind: cecsim.FaultGarbled},
		{Endpoint: "queryagentcalls", Kind: cecsim.FaultTruncated},
		{Endpoint: "agentstatusinfobyagentids", Kind: cecsim.FaultHTTPStatus, Status: 500},
		{Endpoint: "totalagentstate", Kind: cecsim.FaultVendorCode, Code: "0100999"},
	} {
		f.Count = 1
		sim.Inject(f)
		_, e1 := good.QueryAgentCalls(ctx, chunk)
		_, e2 := good.QueryAgentStates(ctx, chunk)
		_, e3 := good.TotalAgentState(ctx, 1)
		keep(e1)
		keep(e2)
		keep(e3)
	}
	for _, bad := range []*cec.CMS{
		cms(func(cfg *cec.CMSConfig) { cfg.SK = "wrong-cms-sk" }),
		cms(func(cfg *cec.CMSConfig) { cfg.Now = func() time.Time { return time.Now().Add(time.Hour) } }),
	} {
		_, err := bad.QueryAgentCalls(ctx, chunk)
		if !errors.Is(err, cec.ErrSignatureRefused) {
			t.Fatalf("want a refused signature, got %v", err)
		}
		keep(err)
	}

	if len(errs) < 13 {
		t.Fatalf("only %d failures collected", len(errs))
	}
	var texts []string
	for _, e := range errs {
		texts = append(texts, e.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e))
		var ce *cec.Error
		if errors.As(e, &ce) {
			texts = append(texts, ce.Excerpt, ce.Message)
		}
	}
	texts = append(texts, logs.String())
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.secrets) < 15 || rec.c2 < 12 {
		t.Fatalf("recorded only %d secrets, %d C2 headers", len(rec.secrets), rec.c2)
	}
	for _, txt := range texts {
		for sec := range rec.secrets {
			if strings.Contains(txt, sec) {
				t.Fatalf("secret %q leaked in %q", sec, txt)
			}
		}
	}
}
