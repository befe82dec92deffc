package subscriber

import (
	"bytes"
	"math"

	"github.com/cecbridge/cecbridge/schemas"
)

// Point lookups (agent.calls, agent.softphone, agent.state, phone.state)
// are the hot path, and encoding/json's strict Decoder costs more than the
// rest of the answer. So their requests go through a small scanner first.
// It takes only what it can decode exactly as encoding/json would: one flat
// object of known keys (matched exactly), plain strings, integers without
// sign or fraction tricks, booleans. Anything else (escapes, non-ASCII,
// null, nesting, a key in other case, an unknown key, a malformed body)
// goes to decodeStrict, which decides and words the error. FuzzFastDecode
// holds the two to the same results.

// flatValue is one scalar of a flat JSON object.
type flatValue struct {
	kind byte   // '"' string, '0' integer, 't' true, 'f' false
	raw  []byte // the string's bytes (no escapes) or the integer's text
}

func (v flatValue) toInt(dst *int) bool {
	n, neg, ok := v.digits()
	switch {
	case !ok, !neg && n > math.MaxInt, neg && n > math.MaxInt+1:
		return false
	case neg:
		*dst = int(-int64(n)) // n = MaxInt+1 wraps to MinInt, which is right
	default:
		*dst = int(n)
	}
	return true
}

func (v flatValue) toUint64(dst *uint64) bool {
	n, neg, ok := v.digits()
	if !ok || neg {
		return false // encoding/json refuses even -0 for an unsigned field
	}
	*dst = n
	return true
}

func (v flatValue) toString(dst *string) bool {
	if v.kind != '"' {
		return false
	}
	*dst = string(v.raw)
	return true
}

func (v flatValue) toBool(dst *bool) bool {
	switch v.kind {
	case 't':
		*dst = true
	case 'f':
		*dst = false
	default:
		return false
	}
	return true
}

// digits reads an integer -?(0|[1-9][0-9]*) that fits in a uint64.
func (v flatValue) digits() (n uint64, neg, ok bool) {
	if v.kind != '0' {
		return 0, false, false
	}
	d := v.raw
	if len(d) > 0 && d[0] == '-' {
		neg, d = true, d[1:]
	}
	if len(d) == 0 || len(d) > 20 || (d[0] == '0' && len(d) > 1) {
		return 0, false, false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false, false
		}
		if n > (1<<64-1)/10 || n*10 > 1<<64-1-uint64(c-'0') {
			return 0, false, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, neg, true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// scanFlat calls set for every key of the flat JSON object in data, in
// order. It returns false when data is not something it decodes itself or
// set refuses a key or value; what set stored must then be discarded.
func scanFlat(data []byte, set func(key []byte, v flatValue) bool) bool {
	if len(bytes.TrimSpace(data)) == 0 {
		return true // decodeStrict reads an empty body as {}
	}
	i := 0
	skip := func() {
		for i < len(data) && isSpace(data[i]) {
			i++
		}
	}
	// plain reads a string's bytes up to the closing quote, refusing
	// escapes, control characters and non-ASCII bytes.
	plain := func() ([]byte, bool) {
		if i >= len(data) || data[i] != '"' {
			return nil, false
		}
		i++
		start := i
		for i < len(data) {
			c := data[i]
			switch {
			case c == '"':
				i++
				return data[start : i-1], true
			case c == '\\' || c < 0x20 || c >= 0x80:
				return nil, false
			}
			i++
		}
		return nil, false
	}
	skip()
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i++
	skip()
	if i < len(data) && data[i] == '}' {
		i++
	} else {
		for {
			skip()
			key, ok := plain()
			if !ok {
				return false
			}
			skip()
			if i >= len(data) || data[i] != ':' {
				return false
			}
			i++
			skip()
			if i >= len(data) {
				return false
			}
			var v flatValue
			switch c := data[i]; {
			case c == '"':
				s, ok := plain()
				if !ok {
					return false
				}
				v = flatValue{kind: '"', raw: s}
			case c == '-' || (c >= '0' && c <= '9'):
				start := i
				for i < len(data) && (data[i] == '-' || data[i] == '+' || data[i] == '.' ||
					data[i] == 'e' || data[i] == 'E' || (data[i] >= '0' && data[i] <= '9')) {
					i++
				}
				v = flatValue{kind: '0', raw: data[start:i]}
			case bytes.HasPrefix(data[i:], []byte("true")):
				i += 4
				v = flatValue{kind: 't'}
			case bytes.HasPrefix(data[i:], []byte("false")):
				i += 5
				v = flatValue{kind: 'f'}
			default:
				return false // null, an object, an array, or not JSON
			}
			if !set(key, v) {
				return false
			}
			skip()
			if i >= len(data) {
				return false
			}
			if data[i] == '}' {
				i++
				break
			}
			if data[i] != ',' {
				return false
			}
			i++
		}
	}
	skip()
	return i == len(data)
}

// setReadOptions takes the consistency keys every view-backed request has.
func setReadOptions(o *schemas.ReadOptions, key []byte, v flatValue) bool {
	switch string(key) {
	case "min_seq":
		return v.toUint64(&o.MinSeq)
	case "wait":
		return v.toString(&o.Wait)
	case "require_visible":
		return v.toBool(&o.RequireVisible)
	}
	return false
}

// decodeRequest decodes data into r with the scanner when it can, else
// with decodeStrict (from a zero r).
func decodeRequest[T any](data []byte, r *T, set func(key []byte, v flatValue) bool) error {
	if scanFlat(data, set) {
		return nil
	}
	var zero T
	*r = zero
	return decodeStrict(data, r)
}

func decodeAgentCalls(data []byte) (r schemas.AgentCallsRequest, err error) {
	err = decodeRequest(data, &r, agentCallsKeys(&r))
	return r, err
}

// agentCallsKeys takes the keys of an agent.calls request into r.
func agentCallsKeys(r *schemas.AgentCallsRequest) func(key []byte, v flatValue) bool {
	return func(key []byte, v flatValue) bool {
		switch string(key) {
		case "work_no":
			return v.toInt(&r.WorkNo)
		case "max_age":
			return v.toString(&r.MaxAge)
		}
		return setReadOptions(&r.ReadOptions, key, v)
	}
}

func decodeAgentSoftphone(data []byte) (r schemas.AgentSoftphoneRequest, err error) {
	err = decodeWorkNoRequest(data, &r, &r.WorkNo, &r.ReadOptions)
	return r, err
}

func decodeAgentState(data []byte) (r schemas.AgentStateRequest, err error) {
	err = decodeWorkNoRequest(data, &r, &r.WorkNo, &r.ReadOptions)
	return r, err
}

// decodeWorkNoRequest decodes a request of a work number and the read
// options, whose fields workNo and o point into r.
func decodeWorkNoRequest[T any](data []byte, r *T, workNo *int, o *schemas.ReadOptions) error {
	return decodeRequest(data, r, func(key []byte, v flatValue) bool {
		if string(key) == "work_no" {
			return v.toInt(workNo)
		}
		return setReadOptions(o, key, v)
	})
}

func decodePhoneState(data []byte) (r schemas.PhoneStateRequest, err error) {
	err = decodeRequest(data, &r, func(key []byte, v flatValue) bool {
		if string(key) == "phone_num" {
			return v.toString(&r.PhoneNum)
		}
		return setReadOptions(&r.ReadOptions, key, v)
	})
	return r, err
}
