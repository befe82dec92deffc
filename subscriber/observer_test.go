package subscriber

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/internal/testwait"
	"github.com/cecbridge/cecbridge/schemas"
)

// recorder is an Observer that keeps every observation.
type recorder struct {
	mu  sync.Mutex
	obs []observation
}

type observation struct {
	tenant, endpoint, code string
	d                      time.Duration
}

func (r *recorder) ObserveLookup(tenant, endpoint, code string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.obs = append(r.obs, observation{tenant, endpoint, code, d})
}

func (r *recorder) all() []observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.obs)
}

// Every answered request is observed exactly once, with the code the
// caller received, whichever path answered it: inline, a worker (min_seq
// wait, live fetch), the saturation refusal, a recovered panic, a bad
// request.
func TestObserverOncePerAnswer(t *testing.T) {
	v := &fakeVendor{}
	rec := &recorder{}
	e := newEnv(t, v, Config{LiveTimeout: time.Second, Observer: rec})
	e.settle(t, e.br.calls(1001, []string{"c"}, time.Now()))

	v.accErr = errors.New("vendor down")
	cases := []struct {
		name     string
		endpoint string
		req      any
		code     string // "" is success
	}{
		{"success inline", schemas.LookupAgentCalls, map[string]any{"work_no": 1001}, ""},
		{"not found inline", schemas.LookupAgentCalls, map[string]any{"work_no": 4242}, "404"},
		{"bad request", schemas.LookupAgentCalls, `{"work_no":`, "400"},
		{"min_seq not reached (worker)", schemas.LookupAgentCalls, map[string]any{"work_no": 1001, "min_seq": 1 << 40, "wait": "20ms"}, "504"},
		{"live fetch failure (worker)", schemas.LookupAgentByAccount, map[string]any{"account": "bob"}, "503"},
		{"success on a worker", schemas.LookupAgentCalls, map[string]any{"work_no": 1001, "max_age": "0s"}, ""},
	}
	for _, tc := range cases {
		before := len(rec.all())
		_, code := ask(t, e.nc, "dev", tc.endpoint, tc.req)
		if code != tc.code {
			t.Fatalf("%s: answered %q, want %q", tc.name, code, tc.code)
		}
		want := tc.code
		if want == "" {
			want = "ok"
		}
		// The observation follows the reply: give it a moment to land, then
		// require exactly one.
		testwait.Until(t, tc.name+" observed", func() bool { return len(rec.all()) > before })
		got := rec.all()[before:]
		if len(got) != 1 || got[0].tenant != "dev" || got[0].endpoint != tc.endpoint || got[0].code != want || got[0].d <= 0 {
			t.Fatalf("%s: observed %+v, want one {dev %s %s}", tc.name, got, tc.endpoint, want)
		}
	}

	// A panicking fetcher is answered 500 and observed once.
	v.accErr, v.panics = nil, true
	if _, code := ask(t, e.nc, "dev", schemas.LookupAgentByAccount, map[string]any{"account": "carol"}); code != "500" {
		t.Fatalf("panicking fetcher: %q", code)
	}
	testwait.Until(t, "the panic observed", func() bool { return len(rec.all()) == len(cases)+1 })
	if last := rec.all()[len(cases)]; last.code != "500" || last.endpoint != schemas.LookupAgentByAccount {
		t.Fatalf("panic observed as %+v", last)
	}
	// Nothing is observed twice: the total equals the answers sent.
	if n := len(rec.all()); n != len(cases)+1 {
		t.Fatalf("%d observations for %d answers", n, len(cases)+1)
	}
}

// A panic in the Observer itself neither re-answers the request nor
// double-counts it.
func TestObserverPanicAnswersOnce(t *testing.T) {
	obs := &panicky{}
	e := newEnv(t, nil, Config{Observer: obs})
	e.settle(t, e.br.calls(1001, []string{"c"}, time.Now()))
	inbox := e.nc.NewRespInbox()
	sub, err := e.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.PublishRequest(schemas.LookupSubject("dev", schemas.LookupAgentCalls), inbox, []byte(`{"work_no":1001}`)); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code := msg.Header.Get("Nats-Service-Error-Code"); code != "" {
		t.Fatalf("answered %q", code)
	}
	// A second request is answered too, so the first one's handling is
	// complete; the first must have had exactly one reply.
	if _, code := ask(t, e.nc, "dev", schemas.LookupAgentCalls, map[string]any{"work_no": 1001}); code != "" {
		t.Fatalf("second request: %q", code)
	}
	if extra, err := sub.NextMsg(50 * time.Millisecond); err == nil {
		t.Fatalf("second reply to one request: %q %s", extra.Header.Get("Nats-Service-Error-Code"), extra.Data)
	}
	if got := obs.calls(); got != 2 {
		t.Fatalf("observer called %d times for 2 requests", got)
	}
}

type panicky struct {
	mu sync.Mutex
	n  int
}

func (p *panicky) ObserveLookup(_, _, _ string, _ time.Duration) {
	p.mu.Lock()
	p.n++
	p.mu.Unlock()
	panic("observer bug")
}

func (p *panicky) calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}
