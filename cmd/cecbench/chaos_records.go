package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cecbridge/cecbridge/publisher"
	"github.com/cecbridge/cecbridge/schemas"
)

// simFront serves the simulator to one bridge instance on a listener of
// its own and records when that instance asked for call IDs and signed
// in: blind time is measured where the vendor would see it.
type simFront struct {
	slot     string
	h        http.Handler
	srv      *http.Server
	url      string
	lastPoll atomic.Int64 // unix nanoseconds of the latest call-ID poll

	mu      sync.Mutex
	polls   []time.Time
	signIns []time.Time
}

func startFront(slot string, h http.Handler) (*simFront, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("simulator front %s: %w", slot, err)
	}
	f := &simFront{slot: slot, h: h, url: "http://" + ln.Addr().String()}
	f.srv = &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

func (f *simFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	p := r.URL.Path
	switch {
	case strings.Contains(p, "/allcallinfoEx/"):
		f.mu.Lock()
		f.polls = append(f.polls, now)
		f.mu.Unlock()
		f.lastPoll.Store(now.UnixNano())
	case r.Method == http.MethodPut && isSignIn(p):
		f.mu.Lock()
		f.signIns = append(f.signIns, now)
		f.mu.Unlock()
	}
	f.h.ServeHTTP(w, r)
}

// isSignIn matches the gateway's login and forcelogin paths.
func isSignIn(path string) bool {
	_, rest, ok := strings.Cut(path, "/onlineagent/")
	return ok && (!strings.Contains(rest, "/") || strings.HasSuffix(rest, "/forcelogin"))
}

// polledSince says whether this instance asked for call IDs after t.
func (f *simFront) polledSince(t time.Time) bool { return f.lastPoll.Load() > t.UnixNano() }

// records returns the call-ID poll and sign-in times, sorted.
func (f *simFront) records() (polls, signIns []time.Time) {
	f.mu.Lock()
	polls, signIns = slices.Clone(f.polls), slices.Clone(f.signIns)
	f.mu.Unlock()
	sortTimes(polls)
	sortTimes(signIns)
	return polls, signIns
}

func (f *simFront) close() { _ = f.srv.Close() }

func sortTimes(ts []time.Time) { slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) }) }

// heartbeatMsg is a stored heartbeat: who wrote it, under which message id.
type heartbeatMsg struct {
	Instance  string
	MsgID     string
	ID        string
	StreamSeq uint64
	Stored    time.Time
}

// history is the tenant's part of the events stream, decoded.
type history struct {
	Entity     []observed // entity events, in stream order
	Heartbeats []heartbeatMsg
	Other      int // visibility and anything else on bridge subjects
	Undecoded  int
}

// readHistory reads every message on the tenant's subjects in the events
// stream, in stream order.
func readHistory(ctx context.Context, js jetstream.JetStream, stream, tenant string) (*history, error) {
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{schemas.TenantEvents(tenant)},
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	h := &history{}
	for {
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		n, pending := 0, uint64(0)
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", stream, err)
			}
			pending = md.NumPending
			h.add(m.Subject(), m.Data(), m.Headers().Get(jetstream.MsgIDHeader), md.Sequence.Stream, md.Timestamp)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		if n == 0 || pending == 0 {
			return h, nil
		}
	}
}

func (h *history) add(subject string, data []byte, msgID string, seq uint64, stored time.Time) {
	o, ok, err := decodeEvent(subject, data, stored)
	switch {
	case err != nil:
		h.Undecoded++
	case ok:
		o.MsgID, o.StreamSeq, o.Digest = msgID, seq, digest(data)
		h.Entity = append(h.Entity, o)
	default:
		ps, err := schemas.ParseSubject(subject)
		if err == nil && ps.Aspect == schemas.BridgeHeartbeat {
			if hb, err := decodeHeartbeat(data); err == nil {
				h.Heartbeats = append(h.Heartbeats, heartbeatMsg{Instance: hb.Instance, MsgID: msgID, ID: o.ID, StreamSeq: seq, Stored: stored})
				return
			}
		}
		h.Other++
	}
}

func digest(b []byte) uint64 {
	f := fnv.New64a()
	_, _ = f.Write(b)
	return f.Sum64()
}

// spoolRecord is one record read back from a bridge's spool directory.
type spoolRecord struct {
	Subject, ID string
	Body        []byte
}

// readSpool reads what a bridge left in its spool directory, with the
// publisher's own reader; records cut short or failing their checksum
// count as torn.
func readSpool(dir string) ([]spoolRecord, int, error) {
	recs, torn, err := publisher.ReadSpool(dir)
	out := make([]spoolRecord, len(recs))
	for i, r := range recs {
		out[i] = spoolRecord{Subject: r.Subject, ID: r.ID, Body: r.Body}
	}
	return out, torn, err
}

// newestSegmentSize is the size of the spool segment written last (0 if
// there is none).
func newestSegmentSize(dir string) int64 {
	names, _ := filepath.Glob(filepath.Join(dir, "spool-*.log"))
	if len(names) == 0 {
		return 0
	}
	sort.Strings(names)
	fi, err := os.Stat(names[len(names)-1])
	if err != nil {
		return 0
	}
	return fi.Size()
}

// bridgeLog is what the drill reads from one bridge process's JSON log.
type bridgeLog struct {
	Acquired []time.Time          // lease acquisitions
	Terms    map[string]time.Time // every "term" attribute, first seen
	Counts   map[string]int       // warnings and errors by level and message
	NotJSON  int                  // lines that are not JSON (a panic, say)
}

// scanLog reads a bridge's JSON log. It knows only what every version of
// the bridge logs: levels, messages, and a "term" attribute where there is
// one.
func scanLog(path string) (bridgeLog, error) {
	l := bridgeLog{Terms: map[string]time.Time{}, Counts: map[string]int{}}
	f, err := os.Open(path)
	if err != nil {
		return l, fmt.Errorf("bridge log: %w", err)
	}
	defer func() { _ = f.Close() }() // read only
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			if len(bytes.TrimSpace(sc.Bytes())) > 0 {
				l.NotJSON++
			}
			continue
		}
		at, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(line["time"]))
		msg, level := fmt.Sprint(line["msg"]), fmt.Sprint(line["level"])
		if strings.Contains(msg, "lease term started") {
			l.Acquired = append(l.Acquired, at)
		}
		if t, ok := line["term"]; ok {
			key := fmt.Sprint(t)
			if _, seen := l.Terms[key]; !seen {
				l.Terms[key] = at
			}
		}
		if level == "WARN" || level == "ERROR" {
			l.Counts[level+" "+msg]++
		}
	}
	if err := sc.Err(); err != nil {
		return l, fmt.Errorf("bridge log %s: %w", path, err)
	}
	return l, nil
}
