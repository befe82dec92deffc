package cec

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Error classes. Every error the client returns for a vendor interaction is
// an *Error whose Unwrap yields exactly one of these.
var (
	// ErrUnauthorized: the API Fabric refused the token (HTTP 401/403) even
	// after one renewal, or tokenByAkSk refused the app credentials.
	ErrUnauthorized = errors.New("cec: unauthorized")
	// ErrSessionLost: the CC-Gateway no longer recognises the session (GUID
	// expired or superseded, agent signed out, DR switchover). The session
	// signs in again by itself; the failed query must not be read as an answer.
	ErrSessionLost = errors.New("cec: gateway session lost")
	// ErrRateLimited: HTTP 429 from the API Fabric or retcode 000-007 from the
	// CC-Gateway. Error.RetryAfter carries the server's hint when it gave one.
	ErrRateLimited = errors.New("cec: rate limited")
	// ErrBadResponse: the body was garbled, truncated, oversized or not the
	// expected shape.
	ErrBadResponse = errors.New("cec: bad response")
	// ErrUpstream: HTTP 5xx, a network failure or a per-request timeout.
	ErrUpstream = errors.New("cec: upstream failure")
	// ErrNotFound: the vendor answered that the requested entity does not exist.
	ErrNotFound = errors.New("cec: not found")
	// ErrPageDrift: a paginated walk saw the data set change under it, so
	// the pages do not add up to one consistent snapshot.
	ErrPageDrift = errors.New("cec: pagination drift")
	// ErrVendor: any other vendor return code.
	ErrVendor = errors.New("cec: vendor error")
	// ErrSignedInElsewhere: the monitoring agent is signed in by someone
	// else and the session was told not to force it out (see
	// SessionConfig.MayForce). It is retried.
	ErrSignedInElsewhere = errors.New("cec: agent signed in elsewhere")
	// ErrSessionNotReady: the gateway session is not signed in at the
	// moment. It also matches ErrSessionLost, since callers handle both
	// alike.
	ErrSessionNotReady error = &aliasError{msg: "cec: gateway session not ready", alias: ErrSessionLost}
	// ErrNotSupported: the interface is not available to this tenant. CMS
	// answered 0100003 (the CTI version is too old, or CMS is not licensed)
	// or HTTP 404 (this CTI version lacks the interface, as CTI 3.6 lacks
	// totalagentstate). Asking again will not help.
	ErrNotSupported = errors.New("cec: not supported")
	// ErrInvalidRequest: the request's parameters were refused, by CMS
	// (0100002: an ID out of range, too many IDs) or by the client before
	// sending (a chunk over the interface's limit). A bug or a configuration
	// error; repeating it unchanged fails again.
	ErrInvalidRequest = errors.New("cec: invalid request")
	// ErrSignatureRefused: CMS answered HTTP 401 to a C2-signed request. The
	// usual causes are a wrong AK/SK or a clock that is off. It also
	// matches ErrUnauthorized.
	ErrSignatureRefused error = &aliasError{msg: "cec: CMS refused the signature: check AK/SK and this host's clock", alias: ErrUnauthorized}
)

// ErrConfig is wrapped by every configuration error of this package: what
// New, NewCMS and NewC2Signer refuse, all problems at once.
var ErrConfig = errors.New("cec: invalid configuration")

// aliasError is a sentinel that also reports itself as another sentinel.
type aliasError struct {
	msg   string
	alias error
}

func (e *aliasError) Error() string        { return e.msg }
func (e *aliasError) Is(target error) bool { return target == e.alias }

// Error describes one failed vendor interaction. Its text never contains
// credentials, tokens or GUIDs; Excerpt is scrubbed of them too.
type Error struct {
	Endpoint   string        // interface name, e.g. "allcallinfoEx"
	HTTPStatus int           // 0 when no response arrived
	Code       string        // vendor return code (retCode, returnCode or retcode)
	Message    string        // vendor message, scrubbed
	Excerpt    string        // at most 200 bytes of the body, scrubbed
	RetryAfter time.Duration // server hint on throttling, 0 if none
	Err        error         // the class sentinel

	timedOut bool // no answer within the request timeout (an ErrUpstream)
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("cec: ")
	b.WriteString(e.Endpoint)
	if e.HTTPStatus != 0 {
		b.WriteString(": HTTP ")
		b.WriteString(strconv.Itoa(e.HTTPStatus))
	}
	if e.Code != "" {
		b.WriteString(": code ")
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(" (")
		b.WriteString(strings.TrimPrefix(e.Err.Error(), "cec: "))
		b.WriteString(")")
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " retry after %s", e.RetryAfter)
	}
	return b.String()
}

// Unwrap returns the class sentinel.
func (e *Error) Unwrap() error { return e.Err }

// retryableCodes are vendor codes that describe a transient condition
// (gateway failover, internal exception, DR recovery in progress; CMS
// "unknown error").
var retryableCodes = map[string]bool{
	"000-004": true, "100-003": true, "100-007": true,
	"105-001": true, "105-002": true, "105-003": true, "105-004": true,
	cmsUnknownError: true,
}

// Retryable reports whether repeating the same request later may succeed
// without anyone changing configuration. Context cancellation is not
// retryable; neither are not-found answers or refused credentials.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrNotFound) {
		return false
	}
	switch {
	case errors.Is(err, ErrRateLimited), errors.Is(err, ErrUpstream),
		errors.Is(err, ErrSessionLost), errors.Is(err, ErrPageDrift),
		errors.Is(err, ErrBadResponse), errors.Is(err, ErrSignedInElsewhere):
		return true
	}
	var e *Error
	if errors.As(err, &e) && errors.Is(e.Err, ErrVendor) {
		return retryableCodes[e.Code]
	}
	return false
}

// sessionLostCodes are the gateway codes after which the only way forward is
// a fresh sign-in.
func sessionLostCode(code string) bool {
	switch code {
	case "000-003", "100-006", "100-008", "105-005", "105-006", "105-007":
		return true
	}
	return false
}

// outcome maps an error to the small fixed label set given to Observer.
func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrSessionNotReady):
		return "not_ready"
	case errors.Is(err, ErrSessionLost):
		return "session_lost"
	case errors.Is(err, ErrSignedInElsewhere):
		return "signed_in_elsewhere"
	case errors.Is(err, ErrUnauthorized):
		return "unauthorized"
	case errors.Is(err, ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, ErrBadResponse):
		return "bad_response"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrPageDrift):
		return "page_drift"
	case errors.Is(err, ErrNotSupported):
		return "not_supported"
	case errors.Is(err, ErrInvalidRequest):
		return "invalid_request"
	case errors.Is(err, ErrVendor):
		return "vendor"
	case errors.Is(err, ErrUpstream):
		return "upstream"
	default:
		return "canceled"
	}
}

// Reason names why err happened, for an event or a log field, from a short
// fixed vocabulary: the outcome labels of [Observer] (with "not_ready" as
// "session_not_ready" and "vendor" as "vendor_code:<code>" when the vendor
// gave a well-formed code), "timeout" for a request that got no answer in
// time, "signature_refused", and "error" for anything else. It never
// carries vendor text, URLs or secrets. nil is "".
func Reason(err error) string {
	var e *Error
	var timeout interface{ Timeout() bool }
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e) && e.timedOut,
		errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &timeout) && timeout.Timeout():
		return "timeout"
	case errors.Is(err, ErrSessionNotReady):
		return "session_not_ready"
	case errors.Is(err, ErrSignatureRefused):
		return "signature_refused"
	case errors.Is(err, ErrVendor):
		if e != nil && vendorCode(e.Code) {
			return "vendor_code:" + e.Code
		}
		return "vendor"
	}
	if o := outcome(err); o != "canceled" || errors.Is(err, context.Canceled) {
		return o
	}
	return "error"
}

// vendorCode says whether a vendor return code is short and made of
// letters, digits and dashes only, so it can stand in a Reason.
func vendorCode(code string) bool {
	if code == "" || len(code) > 16 {
		return false
	}
	for _, r := range code {
		if (r < '0' || r > '9') && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && r != '-' {
			return false
		}
	}
	return true
}
