package cec

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
)

// The vendor mixes up JSON types freely (ports and IDs as numbers or strings,
// booleans as "true"), so response structs use these tolerant field types.
// Each one decodes from its own token without building generic maps.

var errType = errors.New("unexpected JSON type")

// flexString accepts a string, a number or a boolean (kept as its literal
// text) or null (empty).
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return errType
	}
	switch b[0] {
	case '"':
		if len(b) >= 2 && b[len(b)-1] == '"' && bytes.IndexByte(b[1:len(b)-1], '\\') < 0 {
			*s = flexString(b[1 : len(b)-1])
			return nil
		}
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = flexString(v)
	case 'n':
		*s = ""
	case '{', '[':
		return errType
	default: // number or boolean
		*s = flexString(b)
	}
	return nil
}

// flexInt accepts a number, a numeric string, "" or null. Set reports whether
// a value was present: an empty string counts as absent, because the vendor
// uses "" where it means "no such thing".
type flexInt struct {
	V   int64
	Set bool
}

func (n *flexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return errType
	}
	var text string
	switch b[0] {
	case 'n':
		*n = flexInt{}
		return nil
	case '"':
		var fs flexString
		if err := fs.UnmarshalJSON(b); err != nil {
			return err
		}
		text = strings.TrimSpace(string(fs))
		if text == "" {
			*n = flexInt{}
			return nil
		}
	case '{', '[', 't', 'f':
		return errType
	default:
		text = string(b)
	}
	v, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		// Tolerate "5060.0" and 1e3, but not fractions that would silently
		// change an identifier.
		f, ferr := strconv.ParseFloat(text, 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return errType
		}
		v = int64(f)
	}
	*n = flexInt{V: v, Set: true}
	return nil
}

// Int returns the value as an int.
func (n flexInt) Int() int { return int(n.V) }

// flexBool accepts true/false, "true"/"false" (any case), 1/0 and "1"/"0";
// null and "" are false.
type flexBool bool

func (v *flexBool) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	s := string(b)
	if len(s) >= 2 && s[0] == '"' {
		s = s[1 : len(s)-1]
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1":
		*v = true
	case "false", "0", "", "null":
		*v = false
	default:
		return errType
	}
	return nil
}
