package cecsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/poller/cec/cecsim"
)

const gwBase = "/agentgateway/resource/"

// start builds and starts a simulator with short timers unless cfg says otherwise.
func start(t testing.TB, cfg cecsim.Config) *cecsim.Sim {
	t.Helper()
	if cfg.LongPollHold == 0 {
		cfg.LongPollHold = 50 * time.Millisecond
	}
	if cfg.Agents == 0 {
		cfg.Agents = 50
	}
	sim, err := cecsim.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := sim.Start(ctx); err != nil {
		cancel()
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := sim.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return sim
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

func do(t testing.TB, method, url string, hdr map[string]string, body any) reply {
	t.Helper()
	r, err := tryDo(method, url, hdr, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

func tryDo(method, url string, hdr map[string]string, body any) (reply, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return reply{}, err
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{status: resp.StatusCode, header: resp.Header}, err
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

func token(t testing.TB, sim *cecsim.Sim, expire string) string {
	t.Helper()
	hdr := map[string]string{}
	if expire != "" {
		hdr["X-Token-Expire"] = expire
	}
	r := do(t, "POST", sim.URL()+"/apigovernance/api/oauth/tokenByAkSk", hdr,
		map[string]string{"app_key": "app-key", "app_secret": "app-secret"})
	if r.status != 200 {
		t.Fatalf("token: status %d body %s", r.status, r.body)
	}
	tok, _ := r.json(t)["AccessToken"].(string)
	if tok == "" {
		t.Fatalf("token: no AccessToken in %s", r.body)
	}
	return tok
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

// login signs agent id in over the gateway and returns the bare GUID.
func login(t testing.TB, sim *cecsim.Sim, id string, force bool) (string, map[string]any) {
	t.Helper()
	path := gwBase + "onlineagent/" + id
	if force {
		path += "/forcelogin"
	}
	r := do(t, "PUT", sim.URL()+path, nil, map[string]any{"password": "agent-pass", "phonenum": "88881001", "status": "4", "releasephone": "false", "agenttype": 4})
	m := r.json(t)
	if m["retcode"] != "0" {
		return "", m
	}
	sg := r.header.Get("Set-GUID")
	g, ok := strings.CutPrefix(sg, "JSESSIONID=")
	if !ok || !strings.HasSuffix(g, ".AgentGateway0") {
		t.Fatalf("login: Set-GUID %q", sg)
	}
	return g, m
}

func gw(t testing.TB, sim *cecsim.Sim, method, path, guid string) reply {
	t.Helper()
	return do(t, method, sim.URL()+gwBase+path, map[string]string{"Guid": guid}, nil)
}

func retcode(t testing.TB, r reply) string {
	t.Helper()
	c, _ := r.json(t)["retcode"].(string)
	return c
}
