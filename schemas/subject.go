package schemas

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Subject prefixes.
const (
	EventPrefix  = "cec.evt"
	LookupPrefix = "cec.lookup"
)

// Bridge event kinds (the last token of a bridge subject).
const (
	BridgeVisibility       = "visibility"
	BridgeHeartbeat        = "heartbeat"
	BridgeStatesVisibility = "states_visibility"
)

// ErrBadToken is returned for a tenant or other name that cannot be a NATS
// subject token.
var ErrBadToken = errors.New("schemas: invalid subject token")

var tenantRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidTenant reports an error unless tenant is 1 to 64 characters of
// A-Z, a-z, 0-9, '_' and '-': a safe subject token and stream-name part.
func ValidTenant(tenant string) error {
	if !tenantRE.MatchString(tenant) {
		return fmt.Errorf("%w: tenant %q must match %s", ErrBadToken, tenant, tenantRE)
	}
	return nil
}

// MinWorkNo and MaxWorkNo bound agent work numbers (the newer vendor range).
const (
	MinWorkNo = 101
	MaxWorkNo = 999999
)

// ValidWorkNo reports an error unless n is a vendor agent ID.
func ValidWorkNo(n int) error {
	if n < MinWorkNo || n > MaxWorkNo {
		return fmt.Errorf("%w: work number %d outside %d-%d", ErrBadToken, n, MinWorkNo, MaxWorkNo)
	}
	return nil
}

// EscapeToken turns an arbitrary vendor value (a phone number) into one safe
// subject token: bytes outside A-Z a-z 0-9 '_' '-' '+' become %XX, so no
// value can add a token or a wildcard. The empty string becomes "%", which
// ParseSubject rejects; the poller never publishes an empty number.
func EscapeToken(s string) string {
	if s == "" {
		return "%"
	}
	clean := true
	for i := 0; i < len(s); i++ {
		if !safeByte(s[i]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if safeByte(c) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func safeByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '+'
}

// AgentCallsSubject is the subject of an agent's call events.
func AgentCallsSubject(tenant string, workNo int) string {
	return agentSubject(tenant, workNo, AspectCalls)
}

// AgentSoftphoneSubject is the subject of an agent's softphone events.
func AgentSoftphoneSubject(tenant string, workNo int) string {
	return agentSubject(tenant, workNo, AspectSoftphone)
}

// PhoneStateSubject is the subject of a softphone number's state events.
func PhoneStateSubject(tenant, phoneNum string) string {
	return EventPrefix + "." + tenant + ".phone." + EscapeToken(phoneNum) + ".state"
}

// BridgeSubject is the subject of the bridge's own events of one kind.
func BridgeSubject(tenant, kind string) string {
	return EventPrefix + "." + tenant + ".bridge." + kind
}

// TenantEvents is the filter for every event of one tenant.
func TenantEvents(tenant string) string { return EventPrefix + "." + tenant + ".>" }

// AllEvents is the filter for every event of every tenant.
const AllEvents = EventPrefix + ".>"

// ParsedSubject is an event subject taken apart.
type ParsedSubject struct {
	Tenant   string
	Entity   string // "agent", "phone" or "bridge"
	WorkNo   int    // agent subjects
	PhoneNum string // phone subjects, unescaped
	Aspect   string // an Aspect… constant ("calls", "calls_v2", "softphone", "state") or the bridge kind
	Kind     Kind   // what the subject carries; KindUnknown for an aspect this version does not know
}

// ErrBadSubject is returned by ParseSubject for a subject outside the scheme.
var ErrBadSubject = errors.New("schemas: not an event subject")

// ParseSubject takes an event subject apart.
func ParseSubject(subject string) (ParsedSubject, error) {
	t := strings.Split(subject, ".")
	if len(t) < 5 || t[0] != "cec" || t[1] != "evt" {
		return ParsedSubject{}, fmt.Errorf("%w: %q", ErrBadSubject, subject)
	}
	p := ParsedSubject{Tenant: t[2], Entity: t[3]}
	switch {
	case t[3] == "agent" && len(t) == 6:
		n, err := strconv.Atoi(t[4])
		if err != nil {
			return ParsedSubject{}, fmt.Errorf("%w: %q", ErrBadSubject, subject)
		}
		p.WorkNo, p.Aspect = n, t[5]
	case t[3] == "phone" && len(t) == 6:
		num, err := UnescapeToken(t[4])
		if err != nil {
			return ParsedSubject{}, fmt.Errorf("%w: %q", ErrBadSubject, subject)
		}
		p.PhoneNum, p.Aspect = num, t[5]
	case t[3] == "bridge" && len(t) == 5:
		p.Aspect = t[4]
	default:
		return ParsedSubject{}, fmt.Errorf("%w: %q", ErrBadSubject, subject)
	}
	p.Kind = kindOf(p.Entity, p.Aspect)
	return p, nil
}

// UnescapeToken reverses EscapeToken.
func UnescapeToken(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("%w: bad escape in %q", ErrBadToken, s)
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("%w: bad escape in %q", ErrBadToken, s)
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), nil
}
