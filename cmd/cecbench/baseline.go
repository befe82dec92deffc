package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/publisher"
	"github.com/cecbridge/cecbridge/schemas"
)

// bareGateway is a minimal CC-Gateway client: sign in with raw HTTP, then
// query allcallinfoEx with the GUID, nothing else.
type bareGateway struct {
	base  string
	agent int
	guid  string
	hc    *http.Client
}

func newBareGateway(base string, agent, conns int) *bareGateway {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: time.Minute}
	return &bareGateway{base: base, agent: agent, hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

type gwAnswer struct {
	Retcode string          `json:"retcode"`
	Result  json.RawMessage `json:"result"`
}

func (g *bareGateway) do(ctx context.Context, method, path string, body []byte) (*gwAnswer, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, method, g.base+"/agentgateway/resource"+path, bytes.NewReader(body))
	if err != nil {
		return nil, nil, fmt.Errorf("bare gateway: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if g.guid != "" {
		req.Header.Set("Guid", g.guid)
	}
	resp, err := g.hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("bare gateway %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("bare gateway %s: read: %w", path, err)
	}
	var a gwAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, nil, fmt.Errorf("bare gateway %s: decode: %w", path, err)
	}
	return &a, resp.Header, nil
}

func (g *bareGateway) signIn(ctx context.Context, password string) error {
	body, _ := json.Marshal(map[string]any{
		"password": password, "autoanswer": true, "autoenteridle": true,
		"releasephone": true, "agenttype": 4, "status": 3,
	})
	path := "/onlineagent/" + strconv.Itoa(g.agent)
	a, h, err := g.do(ctx, http.MethodPut, path, body)
	if err == nil && a.Retcode == "100-002" {
		a, h, err = g.do(ctx, http.MethodPut, path+"/forcelogin", body)
	}
	if err != nil {
		return err
	}
	if a.Retcode != "0" {
		return fmt.Errorf("bare gateway: sign in: retcode %s", a.Retcode)
	}
	g.guid = strings.TrimPrefix(h.Get("Set-GUID"), "JSESSIONID=")
	if g.guid == "" {
		return errors.New("bare gateway: sign in: no Set-GUID")
	}
	return nil
}

func (g *bareGateway) signOut(ctx context.Context) {
	_, _, _ = g.do(ctx, http.MethodDelete, "/onlineagent/"+strconv.Itoa(g.agent)+"/logout", nil)
	g.hc.CloseIdleConnections()
}

// PollResult is what the bare poller achieved.
type PollResult struct {
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	Seconds  float64 `json:"seconds"`
	PerSec   float64 `json:"per_sec"`
	CPUSec   float64 `json:"cpu_seconds"`
	CPUPer1k float64 `json:"cpu_seconds_per_1k_requests"`
}

// barePoll queries allcallinfoEx for the agents round robin with conc
// workers as fast as the simulator answers, for d.
func barePoll(ctx context.Context, g *bareGateway, agents []int, conc int, d time.Duration) PollResult {
	var next, n, bad atomic.Int64
	cpu0 := cpuSeconds()
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				wn := agents[int(next.Add(1))%len(agents)]
				a, _, err := g.do(ctx, http.MethodGet, "/calldata/"+strconv.Itoa(g.agent)+"/allcallinfoEx/"+strconv.Itoa(wn), nil)
				n.Add(1)
				if err != nil || a.Retcode != "0" {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	cpu := cpuSeconds() - cpu0
	r := PollResult{Requests: n.Load(), Errors: bad.Load(), Seconds: el, CPUSec: cpu}
	r.PerSec = float64(r.Requests) / el
	r.CPUPer1k = div(cpu*1000, float64(r.Requests))
	return r
}

// PublishResult compares the bridge's publisher with bare async publish.
type PublishResult struct {
	Records       int     `json:"records"`
	Subjects      int     `json:"subjects"`
	BodyBytes     int     `json:"body_bytes"`
	PublisherRate float64 `json:"publisher_per_sec"`
	BareRate      float64 `json:"bare_async_per_sec"`
	Ratio         float64 `json:"ratio"`
	PublisherErr  string  `json:"publisher_error,omitempty"`
}

// benchPublish emits n records of body over subjects entity subjects through
// a publisher.Publisher, as the bridge does, and publishes the same bodies
// with bare PublishAsync and unique Msg-Ids; both into the events stream.
func benchPublish(ctx context.Context, nc *nats.Conn, cfg publisher.Config, runID string, n, subjects int, body []byte, maxPending int) (PublishResult, error) {
	res := PublishResult{Records: n, Subjects: subjects, BodyBytes: len(body)}
	recs := func(tenant string) []schemas.Record {
		out := make([]schemas.Record, n)
		for i := range n {
			subj := schemas.AgentCallsSubject(tenant, 1001+i%subjects)
			seq := uint64(i/subjects + 1)
			out[i] = schemas.Record{Subject: subj, ID: schemas.EventID(subj, seq), Seq: seq, Body: body}
		}
		return out
	}

	// The bridge's way.
	js, err := jetstream.New(nc)
	if err != nil {
		return res, fmt.Errorf("publish bench: %w", err)
	}
	pub, err := publisher.New(js, cfg)
	if err != nil {
		return res, fmt.Errorf("publish bench: %w", err)
	}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- pub.Run(pctx) }()
	w := pub.NewWriter(publisher.WriterConfig{Term: "bench"})
	rs := recs("bp" + runID)
	start := time.Now()
	for _, r := range rs {
		for {
			err := w.Emit(ctx, r)
			if err == nil {
				break
			}
			if !errors.Is(err, publisher.ErrBufferFull) {
				stop()
				err = fmt.Errorf("publish bench: emit: %w", err)
				return res, errors.Join(err, <-done)
			}
			time.Sleep(time.Millisecond) // back-pressure, as the poller would see it
		}
	}
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	ferr := pub.Flush(fctx)
	cancel()
	el := time.Since(start).Seconds()
	st := pub.Stats()
	stop()
	ferr = errors.Join(ferr, <-done)
	if ferr != nil {
		res.PublisherErr = ferr.Error()
	}
	res.PublisherRate = float64(st.Published) / el

	// Bare async publish of the same bodies.
	bjs, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(maxPending))
	if err != nil {
		return res, fmt.Errorf("publish bench: %w", err)
	}
	rs = recs("bb" + runID)
	var failed atomic.Int64
	start = time.Now()
	for _, r := range rs {
		f, err := bjs.PublishAsync(r.Subject, r.Body, jetstream.WithMsgID(r.ID))
		if err != nil {
			return res, fmt.Errorf("publish bench: bare: %w", err)
		}
		_ = f
	}
	select {
	case <-bjs.PublishAsyncComplete():
	case <-time.After(time.Minute):
		return res, errors.New("publish bench: bare async publish did not complete")
	}
	el = time.Since(start).Seconds()
	res.BareRate = float64(int64(n)-failed.Load()) / el
	res.Ratio = div(res.PublisherRate, res.BareRate)
	return res, nil
}

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
