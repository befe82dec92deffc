package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cecbridge/cecbridge/poller"
)

// What the sweep runs watch besides the stream: the requests the bridge
// made (at the simulator's door) and the sweep's state as the bridge's
// metrics report it.

// requestLog serves the simulator on a listener of its own and records
// when the bridge polled an agent one by one (allcallinfoEx, with the
// agent) and when each queryagentcalls request began and ended.
type requestLog struct {
	h   http.Handler
	srv *http.Server
	url string

	mu     sync.Mutex
	polls  []pollRecord
	sweeps []span
}

type pollRecord struct {
	at     time.Time
	workNo int
}

func startRequestLog(h http.Handler) (*requestLog, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("request log: %w", err)
	}
	l := &requestLog{h: h, url: "http://" + ln.Addr().String()}
	l.srv = &http.Server{Handler: l, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = l.srv.Serve(ln) }()
	return l, nil
}

const allCallInfoPath = "/allcallinfoEx/"

func (l *requestLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	p := r.URL.Path
	if i := strings.Index(p, allCallInfoPath); i >= 0 {
		wn, _ := strconv.Atoi(p[i+len(allCallInfoPath):]) // a malformed path is the simulator's to refuse
		l.mu.Lock()
		l.polls = append(l.polls, pollRecord{at: start, workNo: wn})
		l.mu.Unlock()
	}
	l.h.ServeHTTP(w, r)
	if strings.HasSuffix(p, "/agentgroup/queryagentcalls") {
		end := time.Now()
		l.mu.Lock()
		l.sweeps = append(l.sweeps, span{From: start, To: end})
		l.mu.Unlock()
	}
}

// records returns the polls and the queryagentcalls requests, each in
// the order they began.
func (l *requestLog) records() ([]pollRecord, []span) {
	l.mu.Lock()
	polls, sweeps := append([]pollRecord(nil), l.polls...), append([]span(nil), l.sweeps...)
	l.mu.Unlock()
	sortBy(polls, func(p pollRecord) time.Time { return p.at })
	sortBy(sweeps, func(s span) time.Time { return s.From })
	return polls, sweeps
}

func (l *requestLog) close() { _ = l.srv.Close() }

// sortBy sorts s by the instant at gives for each element.
func sortBy[T any](s []T, at func(T) time.Time) {
	slices.SortFunc(s, func(a, b T) int { return at(a).Compare(at(b)) })
}

// sweepSample is the sweep as the bridge's metrics showed it at one moment.
type sweepSample struct {
	at      time.Time
	swept   int    // cecbridge_sweep_agents (-1 without CMS)
	state   string // the cecbridge_sweep_state that is 1 ("" if none yet)
	refused int    // cecbridge_publish_refused_events_total
}

// sweepSampler scrapes the bridge's /metrics every so often: finely in the
// outage runs, which time the hand-over, once a second in the others, whose
// figures come from the event log and need no more.
type sweepSampler struct {
	url, tenant string
	every       time.Duration
	client      *http.Client

	mu      sync.Mutex
	samples []sweepSample
}

func newSweepSampler(url, tenant string, every time.Duration) *sweepSampler {
	return &sweepSampler{url: url, tenant: tenant, every: every, client: &http.Client{Timeout: time.Second}}
}

func (s *sweepSampler) run(ctx context.Context) {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if sm, err := s.scrape(ctx); err == nil {
			s.mu.Lock()
			s.samples = append(s.samples, sm)
			s.mu.Unlock()
		}
	}
}

func (s *sweepSampler) scrape(ctx context.Context) (sweepSample, error) {
	sm := sweepSample{at: time.Now(), swept: -1}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return sm, fmt.Errorf("metrics request: %w", err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return sm, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	tenant := `tenant="` + s.tenant + `"`
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "cecbridge_publish_refused_events_total "); ok {
			if n, err := strconv.ParseFloat(v, 64); err == nil {
				sm.refused = int(n)
			}
		}
		if !strings.Contains(line, tenant) {
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		_, value, _ := strings.Cut(line, "} ")
		switch name {
		case "cecbridge_sweep_agents":
			if v, err := strconv.ParseFloat(value, 64); err == nil {
				sm.swept = int(v)
			}
		case "cecbridge_sweep_state":
			if value == "1" {
				sm.state = labelValue(line, "state")
			}
		}
	}
	if err := sc.Err(); err != nil {
		return sm, fmt.Errorf("metrics: %w", err)
	}
	return sm, nil
}

// labelValue is the value of label name in a metrics line.
func labelValue(line, name string) string {
	_, rest, ok := strings.Cut(line, name+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// latest is the last sample (swept -1 when there is none, or no sampler).
func (s *sweepSampler) latest() sweepSample {
	if s == nil {
		return sweepSample{swept: -1}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) == 0 {
		return sweepSample{swept: -1}
	}
	return s.samples[len(s.samples)-1]
}

// all returns every sample so far.
func (s *sweepSampler) all() []sweepSample {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sweepSample(nil), s.samples...)
}

// sweptString is the progress line's view of the sweep.
func (s *sweepSampler) sweptString() string {
	sm := s.latest()
	if sm.swept < 0 {
		return "-"
	}
	return fmt.Sprintf("%d (%s)", sm.swept, sm.state)
}

// waitSweep waits until the latest sample satisfies ok; false if the
// deadline or ctx came first.
func waitSweep(ctx context.Context, s *sweepSampler, deadline time.Time, ok func(sweepSample) bool) bool {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if ok(s.latest()) {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// sweepHolds says whether a sample shows the sweep up and reporting at
// least want agents.
func sweepHolds(want int) func(sweepSample) bool {
	return func(s sweepSample) bool { return s.state == poller.SweepOK && s.swept >= want }
}
