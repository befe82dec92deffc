package cec

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// How a failed exchange becomes an [*Error]: no response (transportError),
// a status without a vendor code (httpError), a body that does not decode
// (badResponse). Each description comes from a fixed set, so no URL,
// address, certificate or body text reaches an error.

// transportError keeps the caller's own cancellation matchable with
// errors.Is(err, context.Canceled/DeadlineExceeded) and classifies anything
// else (network failure, our per-request timeout) as ErrUpstream, with a
// fixed description of the cause (transportCause). The underlying error
// text is dropped: net/url errors quote the full URL.
func (c *Client) transportError(ctx context.Context, endpoint string, err error, d time.Duration) error {
	if ctx.Err() != nil {
		return fmt.Errorf("cec: %s: %w", endpoint, ctx.Err())
	}
	msg := transportCause(err)
	timedOut := msg == "timeout"
	if timedOut {
		msg = "timeout after " + d.Round(time.Millisecond).String()
	}
	return &Error{Endpoint: endpoint, Message: msg, Err: ErrUpstream, timedOut: timedOut}
}

// transportCause names why a request got no response, from a fixed set of
// descriptions, so an operator can tell a wrong CA from a closed port
// without the error quoting URLs, addresses or certificate contents.
func transportCause(err error) string {
	var (
		unknownCA   x509.UnknownAuthorityError
		invalidCert x509.CertificateInvalidError
		hostname    x509.HostnameError
		record      tls.RecordHeaderError
		verify      *tls.CertificateVerificationError
		alert       tls.AlertError
		dnsErr      *net.DNSError
		ne          net.Error
		op          *net.OpError
	)
	switch {
	case errors.As(err, &hostname):
		return "tls: hostname mismatch"
	case errors.As(err, &unknownCA):
		return "tls: certificate not trusted (unknown authority)"
	case errors.As(err, &invalidCert):
		return "tls: certificate not trusted (" + certInvalidReason(invalidCert.Reason) + ")"
	case errors.As(err, &verify):
		return "tls: certificate not trusted"
	case errors.As(err, &record), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		// net/http replaces the RecordHeaderError of a plain-HTTP answer
		// with an unwrapped error carrying that fixed text.
		return "tls: not a TLS server"
	case errors.As(err, &alert):
		return "tls: handshake refused by server"
	case errors.As(err, &dnsErr):
		if dnsErr.IsTimeout {
			return "timeout (name resolution)"
		}
		return "name not resolved"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "connection closed mid-response"
	case errors.As(err, &op) && op.Op != "":
		return "network error (" + op.Op + ")"
	}
	return "network error"
}

func certInvalidReason(r x509.InvalidReason) string {
	switch r {
	case x509.Expired:
		return "expired or not yet valid"
	case x509.NotAuthorizedToSign, x509.CANotAuthorizedForThisName, x509.CANotAuthorizedForExtKeyUsage:
		return "issuer not authorized"
	case x509.IncompatibleUsage:
		return "incompatible key usage"
	}
	return "invalid"
}

// httpError classifies a non-2xx status that carried no usable vendor code.
func (c *Client) httpError(endpoint string, r *response) *Error {
	e := &Error{Endpoint: endpoint, HTTPStatus: r.status, Excerpt: c.excerpt(r.body)}
	switch {
	case r.status == http.StatusTooManyRequests:
		e.Err = ErrRateLimited
		e.RetryAfter = parseRetryAfter(r.header.Get("Retry-After"))
	case r.status >= 500:
		e.Err = ErrUpstream
	case r.status == http.StatusUnauthorized || r.status == http.StatusForbidden:
		e.Err = ErrUnauthorized
	case r.status == http.StatusNotFound:
		e.Err = ErrNotFound
	default:
		e.Err = ErrBadResponse
	}
	return e
}

func parseRetryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

func (c *Client) badResponse(endpoint string, r *response, err error) *Error {
	msg := "undecodable body"
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		msg = "malformed JSON at offset " + strconv.FormatInt(se.Offset, 10)
	case errors.As(err, &te):
		msg = "wrong JSON type for " + te.Field
	case errors.Is(err, errShape):
		msg = strings.TrimPrefix(err.Error(), errShape.Error()+": ")
		if msg == err.Error() {
			msg = "unexpected shape"
		}
	case err != nil && err.Error() == "unexpected end of JSON input":
		msg = "truncated JSON"
	}
	return &Error{Endpoint: endpoint, HTTPStatus: r.status, Message: msg, Excerpt: c.excerpt(r.body), Err: ErrBadResponse}
}
