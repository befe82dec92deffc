package cec

import (
	"bytes"
	"strconv"
	"strings"
)

// The fast path for the hot CMS answers (a sweep decodes thousands of
// agents a second). It reads a success envelope and its resultDesc list in
// one pass, fills the same wire structs encoding/json would, and reports
// !ok on anything outside the usual shape: an error code, escapes in a
// value it keeps, fractions, nesting where a scalar belongs, a key that
// matches a known one only without regard to case. The caller then takes
// the encoding/json path, so the two agree wherever the fast one answers
// (see the fuzz tests).

// jscan is a strict reader over one JSON document.
type jscan struct {
	b   []byte
	i   int
	bad bool
}

const maxSkipDepth = 64

func (s *jscan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jscan) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		s.bad = true
		return 0
	}
	return s.b[s.i]
}

func (s *jscan) eat(c byte) bool {
	if !s.bad && s.peek() == c {
		s.i++
		return true
	}
	return false
}

// each walks a JSON object ('{' already next) or array ('[' next), calling
// fn for every member or element; fn must consume the value.
func (s *jscan) each(open, close byte, fn func(key []byte)) {
	if !s.eat(open) {
		s.bad = true
		return
	}
	if s.eat(close) {
		return
	}
	for !s.bad {
		var key []byte
		if open == '{' {
			var esc bool
			key, esc = s.str()
			if esc || !s.eat(':') {
				s.bad = true
				return
			}
		}
		fn(key)
		if s.eat(',') {
			continue
		}
		if !s.eat(close) {
			s.bad = true
		}
		return
	}
}

// str reads a string and returns its raw content, a view into the
// document, and whether it held an escape (the raw content is then not its
// value).
func (s *jscan) str() ([]byte, bool) {
	if s.peek() != '"' {
		s.bad = true
		return nil, false
	}
	start := s.i + 1
	esc := false
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return s.b[start:j], esc
		case c < 0x20:
			s.bad = true
			return nil, false
		case c == '\\':
			esc = true
			if j+1 >= len(s.b) {
				s.bad = true
				return nil, false
			}
			switch s.b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j++
			case 'u':
				if j+5 >= len(s.b) || !isHex4(s.b[j+2:j+6]) {
					s.bad = true
					return nil, false
				}
				j += 5
			default:
				s.bad = true
				return nil, false
			}
		}
	}
	s.bad = true
	return nil, false
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// literal reads a number, true, false or null and returns its text; whole
// reports whether a number had no fraction or exponent.
func (s *jscan) literal() (text string, whole bool) {
	s.ws()
	for _, w := range [...]string{"true", "false", "null"} {
		if len(s.b)-s.i >= len(w) && string(s.b[s.i:s.i+len(w)]) == w {
			s.i += len(w)
			return w, false
		}
	}
	return s.number()
}

// number reads -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?.
func (s *jscan) number() (string, bool) {
	b, start := s.b, s.i
	digits := func() int {
		n := 0
		for s.i < len(b) && '0' <= b[s.i] && b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.i < len(b) && b[s.i] == '-' {
		s.i++
	}
	intStart := s.i
	if n := digits(); n == 0 || (n > 1 && b[intStart] == '0') {
		s.bad = true
		return "", false
	}
	whole := true
	if s.i < len(b) && b[s.i] == '.' {
		s.i++
		whole = false
		if digits() == 0 {
			s.bad = true
			return "", false
		}
	}
	if s.i < len(b) && (b[s.i] == 'e' || b[s.i] == 'E') {
		s.i++
		whole = false
		if s.i < len(b) && (b[s.i] == '+' || b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			s.bad = true
			return "", false
		}
	}
	return string(b[start:s.i]), whole
}

// skip consumes any value, checking its syntax.
func (s *jscan) skip(depth int) {
	switch s.peek() {
	case '"':
		s.str()
	case '{', '[':
		if depth >= maxSkipDepth {
			s.bad = true
			return
		}
		open, close := s.b[s.i], byte('}')
		if open == '[' {
			close = ']'
		}
		s.each(open, close, func([]byte) { s.skip(depth + 1) })
	default:
		s.literal()
	}
}

// flexInt reads what flexInt.UnmarshalJSON would accept, in its plain
// forms: an integer, a string of digits, "", null.
func (s *jscan) flexInt(dst *flexInt) {
	if s.peek() == '"' {
		raw, esc := s.str()
		v := strings.TrimSpace(string(raw))
		if esc {
			s.bad = true
			return
		}
		if v == "" {
			*dst = flexInt{}
			return
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || !onlyDigits(v) {
			s.bad = true
			return
		}
		*dst = flexInt{V: n, Set: true}
		return
	}
	if c := s.peek(); c == '{' || c == '[' || c == 't' || c == 'f' {
		s.bad = true
		return
	}
	text, whole := s.literal()
	if text == "null" {
		*dst = flexInt{}
		return
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if !whole || err != nil {
		s.bad = true
		return
	}
	*dst = flexInt{V: n, Set: true}
}

func onlyDigits(v string) bool {
	v = strings.TrimPrefix(v, "-")
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return v != ""
}

// flexString reads what flexString.UnmarshalJSON would accept, in its
// plain forms: a string without escapes, a number or boolean (as its
// text), null.
func (s *jscan) flexString(dst *flexString) {
	switch s.peek() {
	case '"':
		v, esc := s.str()
		if esc {
			s.bad = true
			return
		}
		*dst = flexString(v)
	case '{', '[':
		s.bad = true
	default:
		text, _ := s.literal()
		if text == "null" {
			text = ""
		}
		*dst = flexString(text)
	}
}

// field matches a key: exactly, or not at all. A key equal to a known one
// only without regard to case is left to encoding/json, which matches it.
func (s *jscan) field(key []byte, known ...string) string {
	for _, k := range known {
		if string(key) == k {
			return k
		}
	}
	for _, k := range known {
		if bytes.EqualFold(key, []byte(k)) {
			s.bad = true
		}
	}
	return ""
}

// fastCMSList reads a success envelope whose resultDesc is a list of
// objects, calling entry for each element (which must consume it).
func fastCMSList(body []byte, entry func(s *jscan)) bool {
	s := &jscan{b: body}
	code, codes, lists := "", 0, 0
	s.each('{', '}', func(key []byte) {
		switch s.field(key, "resultCode", "resultDesc", "result", "resultDatas") {
		case "resultCode":
			raw, esc := s.str()
			code = string(raw)
			codes++
			s.bad = s.bad || esc
		case "result":
			var legacy flexString // typed as encoding/json reads it: an object here fails there too
			s.flexString(&legacy)
		case "resultDesc":
			lists++
			s.each('[', ']', func([]byte) {
				if s.peek() != '{' {
					s.bad = true
					return
				}
				entry(s)
			})
		default:
			s.skip(0)
		}
	})
	s.ws()
	return !s.bad && s.i == len(s.b) && code == cmsSuccess && codes == 1 && lists == 1
}

// scalar is one member a fast decoder keeps: a flexInt (i) or a
// flexString (str).
type scalar struct {
	name string
	i    *flexInt
	str  *flexString
}

// object reads an object, filling the members named in keep; nested may
// consume a member keep does not name (reporting whether it did); the rest
// are skipped.
func (s *jscan) object(keep []scalar, nested func(key []byte) bool) {
	s.each('{', '}', func(key []byte) {
		for _, m := range keep {
			switch {
			case string(key) != m.name:
			case m.i != nil:
				s.flexInt(m.i)
				return
			default:
				s.flexString(m.str)
				return
			}
		}
		for _, m := range keep {
			if bytes.EqualFold(key, []byte(m.name)) {
				s.bad = true // encoding/json would take it; leave it to it
				return
			}
		}
		if nested == nil || !nested(key) {
			s.skip(0)
		}
	})
}

func fastAgentCalls(body []byte, ch Chunk) (*CallsAnswer, bool) {
	var wire []agentCallsWire
	ok := fastCMSList(body, func(s *jscan) {
		var w agentCallsWire
		s.object([]scalar{{name: "agentId", i: &w.AgentID}}, func(key []byte) bool {
			if s.field(key, "callList") == "" {
				return false
			}
			if s.peek() == 'n' {
				s.literal() // null: absent
				w.CallList = nil
				return true
			}
			list := make([]callWire, 0, 1)
			s.each('[', ']', func([]byte) {
				var c callWire
				s.object([]scalar{
					{name: "callId", str: &c.CallID}, {name: "callStatus", i: &c.CallStatus},
					{name: "callInOut", i: &c.CallInOut}, {name: "mediaType", i: &c.MediaType},
				}, nil)
				list = append(list, c)
			})
			w.CallList = &list
			return true
		})
		wire = append(wire, w)
	})
	if !ok {
		return nil, false
	}
	agents, missing, ignored := keyed(ch, wire, agentCallsWire.entry, sameCalls)
	return &CallsAnswer{Observation: Observation{Chunk: ch, NotObserved: missing, Ignored: ignored}, Agents: agents}, true
}

func fastAgentStates(body []byte, ch Chunk) (*StatesAnswer, bool) {
	var wire []agentStateWire
	ok := fastCMSList(body, func(s *jscan) {
		var w agentStateWire
		s.object([]scalar{
			{name: "agentId", i: &w.AgentID}, {name: "currentState", i: &w.CurrentState},
			{name: "currentStateTime", i: &w.CurrentStateTime}, {name: "prevState", i: &w.PrevState},
			{name: "prevStateTime", i: &w.PrevStateTime}, {name: "currentStateReason", i: &w.CurrentStateReason},
			{name: "logonTime", i: &w.LogonTime}, {name: "currentPrivateCallNum", i: &w.CurrentPrivateCallNum},
			{name: "locationId", str: &w.LocationID}, {name: "agentRelease", str: &w.AgentRelease},
		}, nil)
		wire = append(wire, w)
	})
	if !ok {
		return nil, false
	}
	agents, missing, ignored := keyed(ch, wire, agentStateWire.entry, sameState)
	return &StatesAnswer{Observation: Observation{Chunk: ch, NotObserved: missing, Ignored: ignored}, Agents: agents}, true
}
