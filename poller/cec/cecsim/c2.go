package cecsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// C2 verification, written from reference/cec-cms.md independently of the
// client's signer so that the two check each other rather than share a
// mistake.

var (
	errC2Malformed = errors.New("malformed Authorization")
	errC2AK        = errors.New("unknown AK")
	errC2Skew      = errors.New("timestamp outside the allowed clock skew")
	errC2Signature = errors.New("signature mismatch")
	errC2Variant   = errors.New("signed headers or timestamp precision other than the tenant's")
)

// verifyC2 checks a request's "auth-v2/AK/ts/signed/signature" header
// against the configured AK/SK, the clock and the exact body received.
func (s *Sim) verifyC2(r *http.Request, body []byte, now time.Time) error {
	parts := strings.Split(r.Header.Get("Authorization"), "/")
	if len(parts) != 5 || parts[0] != "auth-v2" {
		return errC2Malformed
	}
	ak, ts, signed, sig := parts[1], parts[2], parts[3], parts[4]
	if !hmac.Equal([]byte(ak), []byte(s.cfg.CMS.AK)) {
		return errC2AK
	}
	at, err := time.Parse("2006-01-02T15:04:05Z", ts)
	if err != nil {
		if at, err = time.Parse("2006-01-02T15:04:05.000Z", ts); err != nil {
			return errC2Malformed
		}
	}
	precision := C2Seconds // time.Parse takes a fraction the layout lacks: look
	if strings.Contains(ts, ".") {
		precision = C2Millis
	}
	if skew := now.Sub(at); skew > s.cfg.CMS.ClockSkew || -skew > s.cfg.CMS.ClockSkew {
		return errC2Skew
	}
	names := strings.Split(signed, ";")
	if !sort.StringsAreSorted(names) || !containsString(names, "host") {
		return errC2Malformed
	}
	if want := s.cfg.CMS.SignedHeaders; len(want) > 0 && signed != strings.Join(sorted(want), ";") {
		return errC2Variant
	}
	if want := s.cfg.CMS.Timestamp; want != "" && precision != want {
		return errC2Variant
	}
	if s.cfg.CMS.RefuseSignatures {
		return errC2Signature
	}
	var canon strings.Builder
	canon.WriteString(r.Method + "\n" + r.URL.EscapedPath() + "\n")
	if r.URL.RawQuery != "" {
		canon.WriteString(c2Query(r.URL.Query()) + "\n")
	}
	canon.WriteString(signed + "\n")
	for i, n := range names {
		var val string
		switch n {
		case "host":
			val = r.Host
		case "content-length":
			val = strconv.FormatInt(r.ContentLength, 10)
		default:
			val = r.Header.Get(n)
		}
		if i > 0 {
			canon.WriteByte('\n')
		}
		canon.WriteString(c2Escape(n) + ":" + c2Escape(val))
	}
	canon.WriteString("\n" + c2Escape(string(body)))
	prefix := strings.Join(parts[:4], "/")
	key := hexMAC([]byte(s.cfg.CMS.SK), prefix)
	if !hmac.Equal([]byte(sig), []byte(hexMAC([]byte(key), canon.String()))) {
		return errC2Signature
	}
	return nil
}

func sorted(names []string) []string {
	out := append([]string(nil), names...)
	sort.Strings(out)
	return out
}

func hexMAC(key []byte, msg string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

func containsString(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// c2Escape keeps RFC 3986 unreserved bytes and writes every other byte as
// %XX in upper case.
func c2Escape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', strings.IndexByte("-._~", c) >= 0:
			b.WriteByte(c)
		default:
			b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
		}
	}
	return b.String()
}

// c2Query orders parameters by name, then value.
func c2Query(q url.Values) string {
	type pair struct{ k, v string }
	var pairs []pair
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, pair{k, v})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	out := make([]string, len(pairs))
	for i, p := range pairs {
		out[i] = c2Escape(p.k) + "=" + c2Escape(p.v)
	}
	return strings.Join(out, "&")
}
