package configs

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/cecbridge/cecbridge/schemas"
)

// Validation: every value checked, every problem reported with its key
// path.

func (b *Bridge) validate() Problems {
	var ps Problems
	bad := func(path, format string, args ...any) { ps = append(ps, Problem{path, fmt.Sprintf(format, args...)}) }
	positive := func(path string, d time.Duration) {
		if d <= 0 {
			bad(path, "must be a positive duration, got %s", d)
		}
	}
	if len(b.Instance) > 128 || strings.ContainsFunc(b.Instance, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		bad("instance", "must be at most 128 printable characters, got %q", b.Instance)
	}
	for i, u := range b.NATS.URLs {
		pu, err := url.Parse(strings.TrimSpace(u))
		if err != nil || pu.Host == "" || !slices.Contains([]string{"nats", "tls", "ws", "wss"}, pu.Scheme) {
			bad(fmt.Sprintf("nats.urls[%d]", i), "expected a URL like nats://host:4222, got %q", RedactURL(u))
		} else if pu.User != nil && (b.NATS.User != "" || b.NATS.Token != "") {
			// The client would take the URL's and ignore the others.
			bad(fmt.Sprintf("nats.urls[%d]", i), "holds credentials and nats.user or nats.token is set too; give them one way")
		}
	}
	if b.NATS.Token != "" && (b.NATS.User != "" || b.NATS.CredsFile != "" || b.NATS.NKeySeedFile != "") {
		bad("nats.token", "use one authentication method: token, user/password, creds_file or nkey_seed_file")
	}
	if b.NATS.CredsFile != "" && b.NATS.NKeySeedFile != "" {
		bad("nats.creds_file", "use either creds_file or nkey_seed_file")
	}
	if (b.NATS.TLS.CertFile == "") != (b.NATS.TLS.KeyFile == "") {
		bad("nats.tls", "cert_file and key_file go together")
	}
	positive("nats.reconnect_wait", b.NATS.ReconnectWait)
	positive("nats.connect_timeout", b.NATS.ConnectTimeout)
	for path, name := range map[string]string{"streams.events": b.Streams.Events, "streams.state": b.Streams.State} {
		if name == "" || strings.ContainsAny(name, " .*>/\\\t") {
			bad(path, "must be a stream name without spaces, '.', '*', '>', '/' or '\\', got %q", name)
		}
	}
	if b.Streams.Events == b.Streams.State {
		bad("streams.state", "must differ from streams.events")
	}
	if b.Streams.Replicas < 1 || b.Streams.Replicas > 5 {
		bad("streams.replicas", "must be 1 to 5, got %d", b.Streams.Replicas)
	}
	ps = append(ps, b.Streams.Placement.validate("streams.placement")...)
	positive("streams.max_age", b.Streams.MaxAge)
	positive("streams.duplicate_window", b.Streams.DuplicateWindow)
	if b.Streams.DuplicateWindow > b.Streams.MaxAge {
		bad("streams.duplicate_window", "must not exceed streams.max_age")
	}
	if b.Publisher.MaxInFlight <= 0 {
		bad("publisher.max_in_flight", "must be positive")
	}
	positive("publisher.ack_timeout", b.Publisher.AckTimeout)
	positive("publisher.flush_timeout", b.Publisher.FlushTimeout)
	if b.Publisher.BufferEvents <= 0 {
		bad("publisher.buffer_events", "must be positive")
	}
	if b.Publisher.SpoolMaxBytes <= 0 {
		bad("publisher.spool_max_bytes", "must be positive")
	}
	if b.Lease.TTL < time.Second {
		bad("lease.ttl", "must be at least 1s, got %s", b.Lease.TTL)
	}
	if b.Lease.Replicas < 1 || b.Lease.Replicas > 5 {
		bad("lease.replicas", "must be 1 to 5 (0 takes streams.replicas), got %d", b.Lease.Replicas)
	}
	if b.Lease.Bucket == "" || strings.ContainsAny(b.Lease.Bucket, " .*>/\\\t") {
		bad("lease.bucket", "must be a bucket name of A-Z a-z 0-9 _ -, got %q", b.Lease.Bucket)
	}
	if b.HTTP.Listen != "" {
		if _, _, err := net.SplitHostPort(b.HTTP.Listen); err != nil {
			bad("http.listen", "expected host:port such as :9090, got %q", b.HTTP.Listen)
		}
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, b.Log.Level) {
		bad("log.level", "must be debug, info, warn or error, got %q", b.Log.Level)
	}
	if !slices.Contains([]string{"auto", "text", "json"}, b.Log.Format) {
		bad("log.format", "must be auto, text or json, got %q", b.Log.Format)
	}
	if len(b.Tenants) == 0 {
		bad("tenants", "at least one tenant is required")
	}
	names := map[string]bool{}
	for i, t := range b.Tenants {
		p := fmt.Sprintf("tenants[%d]", i)
		if err := schemas.ValidTenant(t.Name); err != nil {
			bad(p+".name", "must be 1-64 characters of A-Z a-z 0-9 _ -, got %q", t.Name)
		} else if names[t.Name] {
			bad(p+".name", "tenant %q is configured twice", t.Name)
		}
		names[t.Name] = true
		for key, raw := range map[string]string{"fabric_url": t.FabricURL, "gateway_url": t.GatewayURL, "token_url": t.TokenURL} {
			if raw == "" && key == "token_url" {
				continue
			}
			u, err := url.Parse(raw)
			if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
				bad(p+"."+key, "expected an http(s) URL, got %q", RedactURL(raw))
			}
		}
		if t.AppKey == "" {
			bad(p+".app_key", "is required")
		}
		if t.AppSecret == "" {
			bad(p+".app_secret", "is required (or app_secret_file, or the environment)")
		}
		if t.TokenLifetime < time.Minute || t.TokenLifetime > time.Hour {
			bad(p+".token_lifetime", "must be between 1m and 1h, got %s", t.TokenLifetime)
		}
		positive(p+".request_timeout", t.Timeout)
		if t.Budget < 0 {
			bad(p+".budget", "must not be negative")
		}
		if t.Burst < 0 {
			bad(p+".burst", "must not be negative")
		}
		if t.Concurrency <= 0 {
			bad(p+".concurrency", "must be positive")
		}
		if t.Weight < 1 || t.Weight > 1_000_000 {
			bad(p+".weight", "must be 1-1000000, got %d", t.Weight)
		}
		iv := t.Intervals
		for key, d := range map[string]time.Duration{"sweep": iv.Sweep, "calls": iv.Calls, "idle": iv.Idle, "active_window": iv.ActiveWindow,
			"roster": iv.Roster, "phones": iv.Phones, "heartbeat": iv.Heartbeat} {
			positive(p+".intervals."+key, d)
		}
		if len(t.Monitors) == 0 {
			bad(p+".monitors", "at least one monitoring agent is required")
		}
		ids := map[int]bool{}
		for j, m := range t.Monitors {
			mp := fmt.Sprintf("%s.monitors[%d]", p, j)
			if err := schemas.ValidWorkNo(m.AgentID); err != nil {
				bad(mp+".agent_id", "must be %d-%d, got %d", schemas.MinWorkNo, schemas.MaxWorkNo, m.AgentID)
			} else if ids[m.AgentID] {
				bad(mp+".agent_id", "agent %d is configured twice", m.AgentID)
			}
			ids[m.AgentID] = true
			if m.Password == "" {
				bad(mp+".password", "is required (or password_file, or the environment)")
			}
			if _, err := m.Covers(); err != nil {
				bad(mp+".work_nos", "expected ranges such as 1001-2000,3000, got %q", m.WorkNos)
			}
		}
		if t.CMS != nil {
			t.CMS.validate(p+".cms", bad)
		}
	}
	return ps
}

// Covers parses WorkNos into a membership test; nil means every agent.
func (m Monitor) Covers() (func(int) bool, error) { return parseRanges(m.WorkNos) }

// parseRanges parses work-number ranges ("1001-2000,3000") into a
// membership test; nil for an empty list.
func parseRanges(list string) (func(int) bool, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	type span struct{ lo, hi int }
	var spans []span
	for part := range strings.SplitSeq(list, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("%w: work_nos %q", ErrConfig, list)
		}
		z := a
		if isRange {
			if z, err = strconv.Atoi(hi); err != nil || z < a {
				return nil, fmt.Errorf("%w: work_nos %q", ErrConfig, list)
			}
		}
		spans = append(spans, span{a, z})
	}
	return func(n int) bool {
		for _, s := range spans {
			if n >= s.lo && n <= s.hi {
				return true
			}
		}
		return false
	}, nil
}

// validate checks a placement: a cluster name and tags are single words of
// printable characters, each tag given once.
func (p Placement) validate(path string) Problems {
	var ps Problems
	word := func(v string) bool {
		if v == "" || len(v) > 128 {
			return false
		}
		for _, r := range v {
			if unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '*' || r == '>' {
				return false
			}
		}
		return true
	}
	if p.Cluster != "" && !word(p.Cluster) {
		ps = append(ps, Problem{path + ".cluster", fmt.Sprintf("must be a cluster name without spaces or wildcards, got %q", p.Cluster)})
	}
	seen := map[string]bool{}
	for i, tag := range p.Tags {
		at := fmt.Sprintf("%s.tags[%d]", path, i)
		switch {
		case !word(tag):
			ps = append(ps, Problem{at, fmt.Sprintf("must be a server tag without spaces or wildcards, got %q", tag)})
		case seen[strings.ToLower(tag)]:
			ps = append(ps, Problem{at, fmt.Sprintf("tag %q is given twice", tag)})
		}
		seen[strings.ToLower(tag)] = true
	}
	return ps
}
