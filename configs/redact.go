package configs

import (
	"cmp"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// RedactURL returns raw with its user info replaced by [Redacted], for
// printing: "nats://bridge:pw@host:4222" becomes
// "nats://[redacted]@host:4222". NATS takes a lone user name as a token,
// so the whole user info goes, not only a password. It also works on text
// that does not parse as a URL, and on a comma-separated list of URLs as
// the NATS client accepts them.
func RedactURL(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		if start, end, ok := userInfo(p); ok {
			parts[i] = p[:start] + Redacted + p[end:]
		}
	}
	return strings.Join(parts, ",")
}

// RedactURLs applies RedactURL to each URL.
func RedactURLs(raws []string) []string {
	out := make([]string, len(raws))
	for i, r := range raws {
		out[i] = RedactURL(r)
	}
	return out
}

// RedactURLError returns err with the user info of the given URLs taken
// out of its text: a URL parse error, for one, quotes the URL whole.
// errors.Is and errors.As still see err.
func RedactURLError(err error, urls ...string) error {
	if err == nil {
		return nil
	}
	var secrets []string
	for _, raw := range urls {
		for _, p := range strings.Split(raw, ",") {
			start, end, ok := userInfo(p)
			if !ok {
				continue
			}
			info := p[start:end]
			secrets = append(secrets, info)
			// The password (or the token, a user without one) decoded too,
			// in case an error quotes it so.
			secret := info
			if _, pw, ok := strings.Cut(info, ":"); ok {
				secret = pw
			}
			if d, err := url.PathUnescape(secret); err == nil && d != "" {
				secrets = append(secrets, d)
			}
		}
	}
	// Longest first, so that the whole user info goes before a password
	// inside it.
	slices.SortFunc(secrets, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	msg := err.Error()
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, Redacted)
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

// userInfo finds the user info of one URL: after "scheme://" (or from the
// start, as NATS accepts "user:pw@host") up to the last '@', which ends it
// even when a password holds an unescaped '@', as url.Parse reads it.
func userInfo(raw string) (start, end int, ok bool) {
	if i := strings.Index(raw, "://"); i >= 0 {
		start = i + len("://")
	}
	at := strings.LastIndex(raw[start:], "@")
	if at <= 0 {
		return 0, 0, false
	}
	return start, start + at, true
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

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
