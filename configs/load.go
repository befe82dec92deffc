package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cecbridge/cecbridge/schemas"
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("configs: invalid configuration")

// Problem is one configuration error at a key path such as
// "tenants[0].monitors[1].agent_id".
type Problem struct {
	Path string
	Msg  string
}

func (p Problem) Error() string { return p.Path + ": " + p.Msg }

// Problems is every problem found in one configuration.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return fmt.Sprintf("configs: %d problem(s):\n  %s", len(ps), strings.Join(lines, "\n  "))
}

// Is makes errors.Is(err, ErrConfig) hold.
func (ps Problems) Is(target error) bool { return target == ErrConfig }

// Env reads an environment variable; os.LookupEnv in production, a map in
// tests.
type Env func(key string) (string, bool)

// LoadFile reads, decodes and validates a configuration file, applying
// environment overrides from the process environment.
func LoadFile(path string) (Bridge, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Bridge{}, fmt.Errorf("configs: %w", err)
	}
	return Load(bytes.NewReader(data), os.LookupEnv)
}

// Load decodes and validates a configuration. Environment variables override
// endpoints and secrets: CECBRIDGE_NATS_URLS (comma-separated),
// CECBRIDGE_NATS_USER, CECBRIDGE_NATS_PASSWORD, CECBRIDGE_NATS_TOKEN, and per
// tenant (name upper-cased, '-' as '_') CECBRIDGE_<TENANT>_FABRIC_URL,
// _TOKEN_URL, _GATEWAY_URL, _APP_KEY, _APP_SECRET,
// CECBRIDGE_<TENANT>_MONITOR_<AGENTID>_PASSWORD, and for a tenant with a
// cms block _CMS_URL, _CMS_AK and _CMS_SK. Secrets may also come from
// files: every `password`, `token`, `app_secret`, `ak` and `sk` has a
// `…_file` twin.
func Load(r io.Reader, env Env) (Bridge, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(r)
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return Bridge{}, Problems{{Path: "(file)", Msg: "not valid YAML: " + err.Error()}}
	}
	var b Bridge
	var ps Problems
	if root.Kind != 0 {
		decodeStrict(&root, reflect.ValueOf(&b).Elem(), "", &ps)
	}
	if len(ps) > 0 {
		return Bridge{}, ps
	}
	b.applyEnv(env)
	ps = append(ps, b.readSecretFiles()...)
	b.setDefaults()
	ps = append(ps, b.validate()...)
	if len(ps) > 0 {
		return Bridge{}, ps
	}
	return b, nil
}

var durationType = reflect.TypeFor[time.Duration]()

// decodeStrict walks a YAML node and the Go value together, so that every
// problem names its key path and says what was expected.
func decodeStrict(n *yaml.Node, v reflect.Value, path string, ps *Problems) {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) > 0 {
			decodeStrict(n.Content[0], v, path, ps)
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		decodeStrict(n.Alias, v, path, ps)
		return
	}
	if n.Tag == "!!null" {
		return
	}
	if v.Kind() == reflect.Pointer {
		// An optional block: present in the file means present.
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		decodeStrict(n, v.Elem(), path, ps)
		return
	}
	where := func() string {
		if path == "" {
			return "(root)"
		}
		return path
	}
	switch {
	case v.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			*ps = append(*ps, Problem{where(), "expected a mapping of keys"})
			return
		}
		fields := map[string]int{}
		var known []string
		for i := range v.NumField() {
			tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
			if tag != "" && tag != "-" {
				fields[tag] = i
				known = append(known, tag)
			}
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			sub := join(path, key)
			idx, ok := fields[key]
			if !ok {
				*ps = append(*ps, Problem{sub, fmt.Sprintf("unknown key (expected one of: %s)", strings.Join(known, ", "))})
				continue
			}
			if seen[key] {
				*ps = append(*ps, Problem{sub, "key given twice"})
				continue
			}
			seen[key] = true
			decodeStrict(n.Content[i+1], v.Field(idx), sub, ps)
		}
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() != reflect.Uint8:
		if n.Kind != yaml.SequenceNode {
			*ps = append(*ps, Problem{where(), "expected a list"})
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			decodeStrict(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i), ps)
		}
		v.Set(s)
	default:
		if n.Kind != yaml.ScalarNode {
			*ps = append(*ps, Problem{where(), "expected a single value, " + describe(v.Type())})
			return
		}
		if v.Type() == durationType {
			d, err := time.ParseDuration(n.Value)
			if err != nil {
				*ps = append(*ps, Problem{where(), fmt.Sprintf("expected a duration such as 1s or 5m, got %q", n.Value)})
				return
			}
			v.SetInt(int64(d))
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			*ps = append(*ps, Problem{where(), fmt.Sprintf("expected %s, got %q", describe(v.Type()), n.Value)})
		}
	}
}

func describe(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "a whole number"
	case reflect.Float64, reflect.Float32:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return t.String()
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func envName(parts ...string) string {
	s := "CECBRIDGE_" + strings.Join(parts, "_")
	return strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
}

func (b *Bridge) applyEnv(env Env) {
	if env == nil {
		return
	}
	if v, ok := env("CECBRIDGE_NATS_URLS"); ok && v != "" {
		b.NATS.URLs = strings.Split(v, ",")
	}
	if v, ok := env("CECBRIDGE_NATS_USER"); ok {
		b.NATS.User = v
	}
	// A secret from the environment wins over the file the YAML names.
	if v, ok := env("CECBRIDGE_NATS_PASSWORD"); ok {
		b.NATS.Password, b.NATS.PasswordFile = Secret(v), ""
	}
	if v, ok := env("CECBRIDGE_NATS_TOKEN"); ok {
		b.NATS.Token, b.NATS.TokenFile = Secret(v), ""
	}
	for i := range b.Tenants {
		t := &b.Tenants[i]
		for suffix, dst := range map[string]*string{
			"FABRIC_URL": &t.FabricURL, "TOKEN_URL": &t.TokenURL,
			"GATEWAY_URL": &t.GatewayURL, "APP_KEY": &t.AppKey,
		} {
			if v, ok := env(envName(t.Name, suffix)); ok {
				*dst = v
			}
		}
		if v, ok := env(envName(t.Name, "APP_SECRET")); ok {
			t.AppSecret, t.AppSecretFile = Secret(v), ""
		}
		for j := range t.Monitors {
			m := &t.Monitors[j]
			if v, ok := env(envName(t.Name, "MONITOR", strconv.Itoa(m.AgentID), "PASSWORD")); ok {
				m.Password, m.PasswordFile = Secret(v), ""
			}
		}
		if t.CMS != nil {
			t.CMS.applyEnv(env, t.Name)
		}
	}
}

// readSecretFiles fills secrets from their _file twins.
func (b *Bridge) readSecretFiles() Problems {
	var ps Problems
	read := func(path string, dst *Secret, file string) {
		if file == "" {
			return
		}
		if *dst != "" {
			ps = append(ps, Problem{path, "give the secret or its _file, not both"})
			return
		}
		data, err := os.ReadFile(file)
		if err != nil {
			ps = append(ps, Problem{path + "_file", "cannot read: " + err.Error()})
			return
		}
		*dst = Secret(strings.TrimRight(string(data), "\r\n"))
	}
	read("nats.password", &b.NATS.Password, b.NATS.PasswordFile)
	read("nats.token", &b.NATS.Token, b.NATS.TokenFile)
	for i := range b.Tenants {
		t := &b.Tenants[i]
		read(fmt.Sprintf("tenants[%d].app_secret", i), &t.AppSecret, t.AppSecretFile)
		for j := range t.Monitors {
			m := &t.Monitors[j]
			read(fmt.Sprintf("tenants[%d].monitors[%d].password", i, j), &m.Password, m.PasswordFile)
		}
		if c := t.CMS; c != nil {
			read(fmt.Sprintf("tenants[%d].cms.ak", i), &c.AK, c.AKFile)
			read(fmt.Sprintf("tenants[%d].cms.sk", i), &c.SK, c.SKFile)
		}
	}
	return ps
}

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

// Print writes the effective configuration as YAML with secrets redacted,
// user info in URLs included.
func (b Bridge) Print(w io.Writer) error {
	b.NATS.URLs = RedactURLs(b.NATS.URLs)
	b.Tenants = slices.Clone(b.Tenants)
	for i := range b.Tenants {
		t := &b.Tenants[i]
		t.FabricURL, t.TokenURL, t.GatewayURL = RedactURL(t.FabricURL), RedactURL(t.TokenURL), RedactURL(t.GatewayURL)
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(b); err != nil {
		return fmt.Errorf("configs: print: %w", err)
	}
	return enc.Close()
}
