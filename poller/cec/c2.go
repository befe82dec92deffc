package cec

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

// TimestampPrecision is the precision of the C2 signing timestamp. The
// vendor's Java demo signs to the second; some public ports sign to the
// millisecond, and the vendor does not say which its servers accept.
type TimestampPrecision int

// The timestamp precisions.
const (
	TimestampSeconds TimestampPrecision = iota // 2025-01-02T03:04:05Z (the demo's)
	TimestampMillis                            // 2025-01-02T03:04:05.678Z
)

const (
	c2Scheme      = "auth-v2"
	c2LayoutSec   = "2006-01-02T15:04:05Z"
	c2LayoutMilli = "2006-01-02T15:04:05.000Z"
)

// C2Headers are the request headers a C2 signature may cover. The demo signs
// only host; other public ports sign all three.
var C2Headers = []string{"content-length", "content-type", "host"}

// C2Signer computes the CC-CMS "auth-v2" Authorization header (C2 AK/SK
// signing, see reference/cec-cms.md). It holds the AK and SK as secrets and
// is safe for concurrent use.
type C2Signer struct {
	ak, sk    Secret
	headers   []string // lower-case, sorted, unique
	signed    string   // headers joined by ";"
	precision TimestampPrecision
}

// NewC2Signer checks its arguments and returns a signer. signedHeaders
// defaults to ["host"]; names are case-insensitive, must be among C2Headers
// and must include host, which every known variant signs.
func NewC2Signer(ak, sk Secret, signedHeaders []string, p TimestampPrecision) (*C2Signer, error) {
	hs, errs := checkC2(ak, sk, signedHeaders, p)
	if err := configError(errs); err != nil {
		return nil, err
	}
	return newC2Signer(ak, sk, hs, p), nil
}

func newC2Signer(ak, sk Secret, headers []string, p TimestampPrecision) *C2Signer {
	return &C2Signer{ak: ak, sk: sk, headers: headers, signed: strings.Join(headers, ";"), precision: p}
}

// checkC2 returns the signed headers, normalised, and every problem with
// the signer's arguments.
func checkC2(ak, sk Secret, signedHeaders []string, p TimestampPrecision) ([]string, []error) {
	var errs []error
	if ak == "" || sk == "" {
		errs = append(errs, errors.New("CMS AK and SK are required"))
	}
	if strings.ContainsAny(ak.Reveal(), "/ \t\r\n") {
		// The AK is a path element of the Authorization value.
		errs = append(errs, errors.New("CMS AK must not contain '/' or spaces"))
	}
	if p != TimestampSeconds && p != TimestampMillis {
		errs = append(errs, fmt.Errorf("unknown timestamp precision %d", p))
	}
	if len(signedHeaders) == 0 {
		signedHeaders = []string{"host"}
	}
	hs := make([]string, 0, len(signedHeaders))
	for _, h := range signedHeaders {
		h = strings.ToLower(strings.TrimSpace(h))
		if !slices.Contains(C2Headers, h) {
			errs = append(errs, fmt.Errorf("cannot sign header %q (one of %s)", h, strings.Join(C2Headers, ", ")))
			continue
		}
		hs = append(hs, h)
	}
	sort.Strings(hs)
	hs = slices.Compact(hs)
	if !slices.Contains(hs, "host") {
		errs = append(errs, errors.New("the signed headers must include host"))
	}
	return hs, errs
}

// SignedHeaders returns the lower-case names the signer covers, sorted.
func (s *C2Signer) SignedHeaders() []string { return slices.Clone(s.headers) }

// Timestamp formats t as the signature's timestamp (UTC).
func (s *C2Signer) Timestamp(t time.Time) string {
	if s.precision == TimestampMillis {
		return t.UTC().Format(c2LayoutMilli)
	}
	return t.UTC().Format(c2LayoutSec)
}

// prefix is "auth-v2/AK/timestamp/signed-headers".
func (s *C2Signer) prefix(ts string) string {
	return c2Scheme + "/" + s.ak.Reveal() + "/" + ts + "/" + s.signed
}

// signingKey is the lower-case hex HMAC-SHA256 of the prefix under the SK.
func (s *C2Signer) signingKey(prefix string) string {
	m := hmac.New(sha256.New, []byte(s.sk.Reveal()))
	m.Write([]byte(prefix))
	return hex.EncodeToString(m.Sum(nil))
}

// Sign returns the Authorization value for one request: method, the
// escaped path, the raw query ("" for none), the values of the signed
// headers by lower-case name (a missing one signs as empty), and the exact
// body bytes that will be sent.
func (s *C2Signer) Sign(method, path, rawQuery string, headers map[string]string, body []byte, at time.Time) string {
	prefix := s.prefix(s.Timestamp(at))
	m := hmac.New(sha256.New, []byte(s.signingKey(prefix)))
	writeCanonical(m, method, path, rawQuery, s.headers, headers, body)
	return prefix + "/" + hex.EncodeToString(m.Sum(nil))
}

// writeCanonical streams the canonical request into the MAC, so a large
// body is encoded piecewise rather than copied whole.
func writeCanonical(h hash.Hash, method, path, rawQuery string, names []string, values map[string]string, body []byte) {
	buf := make([]byte, 0, 512)
	buf = append(buf, method...)
	buf = append(buf, '\n')
	buf = append(buf, path...)
	buf = append(buf, '\n')
	if rawQuery != "" {
		buf = append(buf, canonicalQuery(rawQuery)...)
		buf = append(buf, '\n')
	}
	for i, n := range names {
		if i > 0 {
			buf = append(buf, ';')
		}
		buf = append(buf, n...)
	}
	buf = append(buf, '\n')
	for i, n := range names {
		if i > 0 {
			buf = append(buf, '\n')
		}
		buf = appendEnc(buf, n)
		buf = append(buf, ':')
		buf = appendEnc(buf, values[n])
	}
	buf = append(buf, '\n')
	h.Write(buf)
	const piece = 1024
	for len(body) > 0 {
		n := min(piece, len(body))
		buf = appendEnc(buf[:0], body[:n])
		h.Write(buf)
		body = body[n:]
	}
}

// canonicalQuery sorts the query's parameters by name, then value, and
// encodes each as enc(name)=enc(value), joined by '&'.
func canonicalQuery(raw string) string {
	q, _ := url.ParseQuery(raw)
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b []byte
	for _, k := range keys {
		vs := slices.Clone(q[k])
		sort.Strings(vs)
		for _, v := range vs {
			if len(b) > 0 {
				b = append(b, '&')
			}
			b = appendEnc(b, k)
			b = append(b, '=')
			b = appendEnc(b, v)
		}
	}
	return string(b)
}

// appendEnc percent-encodes every byte of s except A-Z a-z 0-9 - . _ ~,
// with upper-case hex.
func appendEnc[T string | []byte](dst []byte, s T) []byte {
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', hexDigits[c>>4], hexDigits[c&15])
	}
	return dst
}
