package probe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// redacted replaces every secret the probe records.
const redacted = "[redacted]"

// secretKey matches JSON members and headers that hold credentials;
// guidKey those that hold a GUID (stand-ins, not [redacted]).
var (
	secretKey = regexp.MustCompile(`(?i)pwd|password|secret|token|guid|app_?key|authorization`)
	guidKey   = regexp.MustCompile(`(?i)guid`)
)

// personalKeys are JSON members that hold personal data: customers' and
// agents' numbers as presented, names, free text.
var personalKeys = map[string]string{
	"caller": "", "called": "", "otherphone": "", "number": "", "orgicallednum": "",
	"callerpresent": "", "agentpresent": "",
	"accountcode": "account", "name": "name", "agentname": "name", "username": "name",
	"realname": "name", "remark": "text", "calldata": "text",
}

var (
	jsessionText = regexp.MustCompile(`(?i)JSESSIONID=[^;"\s,]*`)
	secretMember = regexp.MustCompile(`(?i)("[a-z_]*(?:pwd|password|secret|token|guid|app_?key|authorization)[a-z_]*"\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}\]\s]*)`)
	longDigits   = regexp.MustCompile(`\d{7,}`)
	uuidPrefix   = regexp.MustCompile(`(?i)^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	gatewayNode  = regexp.MustCompile(`^\.[A-Za-z]+[0-9]*$`)
)

// scrubber removes secrets from, and pseudonymises personal data in,
// everything the probe records or prints. Pseudonyms are stable for one
// probe run (the same number always becomes the same pseudonym, so a
// capture stays consistent) and nothing maps them back: they are counters,
// not hashes a phone number could be guessed from.
type scrubber struct {
	mu      sync.Mutex
	secrets []string          // known secret values, longest first
	guids   map[string]string // real GUID -> stand-in
	pseudo  map[string]string // real value -> pseudonym
}

func newScrubber() *scrubber {
	return &scrubber{guids: map[string]string{}, pseudo: map[string]string{}}
}

// addSecret remembers a value that must never be recorded.
func (s *scrubber) addSecret(v string) {
	if len(v) < 3 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Contains(s.secrets, v) {
		return
	}
	s.secrets = append(s.secrets, v)
	slices.SortFunc(s.secrets, func(a, b string) int { return len(b) - len(a) })
}

// text scrubs free text, where nothing says what a value is: secrets as
// in clean, and every long digit run as a phone number.
func (s *scrubber) text(t string) string {
	return longDigits.ReplaceAllStringFunc(s.clean(t), func(d string) string { return s.pseudonym("", d) })
}

// clean removes known secrets, GUIDs in Set-GUID form and credential
// members of JSON fragments from t; a GUID seen before becomes its
// stand-in.
func (s *scrubber) clean(t string) string {
	t = secretMember.ReplaceAllString(t, `${1}"`+redacted+`"`)
	t = jsessionText.ReplaceAllString(t, "JSESSIONID="+redacted)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.secrets {
		stand, ok := s.guids[v]
		if !ok {
			stand = redacted
		}
		t = strings.ReplaceAll(t, v, stand)
	}
	return t
}

// setGUID rewrites a Set-GUID header: the GUID becomes a stand-in of the
// same form, so the capture still shows what the gateway sends.
func (s *scrubber) setGUID(h string) string {
	prefix, v := "", strings.TrimSpace(h)
	if i := strings.Index(strings.ToUpper(v), "JSESSIONID="); i >= 0 {
		prefix, v = v[:i+len("JSESSIONID=")], v[i+len("JSESSIONID="):]
	}
	attrs := ""
	if i := strings.IndexAny(v, "; ,"); i >= 0 {
		v, attrs = v[:i], v[i:]
	}
	if v == "" {
		return h
	}
	s.addSecret(v)
	s.mu.Lock()
	stand, ok := s.guids[v]
	if !ok {
		stand = redacted
		if m := uuidPrefix.FindString(v); m != "" {
			stand = fmt.Sprintf("00000000-0000-4000-8000-%012d", len(s.guids)+1)
			if rest := v[len(m):]; gatewayNode.MatchString(rest) {
				stand += rest
			}
		}
		s.guids[v] = stand
	}
	s.mu.Unlock()
	return prefix + stand + s.clean(attrs)
}

// pseudonym returns the stand-in for a personal value: digits stay digits
// of the same length (a number stays a number), anything else becomes
// kind-N.
func (s *scrubber) pseudonym(kind, v string) string {
	if v == "" {
		return v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.pseudo[v]; ok {
		return p
	}
	n := len(s.pseudo) + 1
	var p string
	digits := strings.TrimPrefix(v, "+")
	if digits != "" && strings.Trim(digits, "0123456789") == "" {
		num := strconv.Itoa(n)
		p = "9" + strings.Repeat("0", max(0, len(digits)-1-len(num))) + num
		if len(v) > len(digits) {
			p = "+" + p
		}
	} else {
		if kind == "" {
			kind = "pseudonym"
		}
		p = kind + "-" + strconv.Itoa(n)
	}
	s.pseudo[v] = p
	return p
}

// body scrubs a body for the record: JSON stays JSON (members in their
// order, numbers as they were), anything else becomes a scrubbed string.
func (s *scrubber) body(b []byte) json.RawMessage {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if out, err := s.json(b); err == nil {
		return out
	}
	str, _ := json.Marshal(s.text(strings.ToValidUTF8(string(b), "\uFFFD")))
	return str
}

var errTrailing = errors.New("data after the JSON value")

// json rewrites a JSON document token by token: credential members
// become [redacted] (and their values known secrets), personal members
// pseudonyms, every other string is scrubbed as text.
func (s *scrubber) json(b []byte) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out bytes.Buffer
	if err := s.value(dec, "", &out); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errTrailing
	}
	return out.Bytes(), nil
}

func (s *scrubber) value(dec *json.Decoder, key string, out *bytes.Buffer) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		closing := byte('}')
		if t == '[' {
			closing = ']'
		}
		out.WriteByte(byte(t))
		for i := 0; dec.More(); i++ {
			if i > 0 {
				out.WriteByte(',')
			}
			member := key // array elements inherit their member's meaning
			if t == '{' {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				member, _ = kt.(string)
				writeJSON(out, member)
				out.WriteByte(':')
			}
			if err := s.value(dec, member, out); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return err
		}
		out.WriteByte(closing)
	case string:
		writeJSON(out, s.leaf(key, t))
	case json.Number:
		switch v := s.leaf(key, t.String()); {
		case v == t.String():
			out.WriteString(v)
		case strings.Trim(v, "0123456789") == "":
			out.WriteString(v) // a pseudonymised number stays a number
		default:
			writeJSON(out, v)
		}
	default: // bool or null
		writeJSON(out, t)
	}
	return nil
}

// leaf scrubs one scalar found under member key.
func (s *scrubber) leaf(key, v string) string {
	if key != "" && guidKey.MatchString(key) && v != "" {
		return s.setGUID(v)
	}
	if key != "" && secretKey.MatchString(key) {
		s.addSecret(v)
		if v == "" {
			return v
		}
		return redacted
	}
	if kind, ok := personalKeys[strings.ToLower(key)]; ok {
		return s.pseudonym(kind, v)
	}
	return s.clean(v)
}

func writeJSON(out *bytes.Buffer, v any) {
	b, _ := json.Marshal(v)
	out.Write(b)
}
