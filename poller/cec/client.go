package cec

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Limiter is the request budget shared by every query request.
// *rate.Limiter from golang.org/x/time/rate satisfies it.
type Limiter interface {
	Wait(ctx context.Context) error
}

// Observer receives one measurement per HTTP request. endpoint is the
// interface name (e.g. "allcallinfoEx", "queryagentcalls") and outcome a
// small fixed set: ok, unauthorized, session_lost, not_ready, rate_limited,
// bad_response, not_found, page_drift, not_supported, invalid_request,
// vendor, upstream, canceled.
type Observer interface {
	ObserveRequest(endpoint, outcome string, d time.Duration)
}

// Config configures a Client. Zero values take the documented defaults.
type Config struct {
	FabricURL  string // API Fabric base, e.g. https://service.example.com
	TokenURL   string // base for tokenByAkSk; "" means FabricURL
	GatewayURL string // CC-Gateway base, e.g. https://10.0.0.5:8043

	AppKey    string
	AppSecret Secret

	TokenLifetime   time.Duration // requested via X-Token-Expire; default 10m, max 1h
	RequestTimeout  time.Duration // per request; default 10s
	LongPollTimeout time.Duration // event poll; default 30s
	MaxBodyBytes    int64         // default 8 MiB; larger bodies are ErrBadResponse

	CAFile             string
	InsecureSkipVerify bool

	HTTPClient *http.Client // optional; otherwise one tuned for connection reuse
	// WrapTransport, if set, wraps the transport of the client built when
	// HTTPClient is nil (TLS settings included), e.g. to record exchanges.
	WrapTransport func(http.RoundTripper) http.RoundTripper
	Limiter       Limiter  // optional; applied to query requests only
	Observer      Observer // optional

	// NoCallCodes are allcallinfoEx return codes that mean "agent has no
	// call" on this deployment. Default: none.
	NoCallCodes []string

	Logger *slog.Logger
}

// Client talks to the API Fabric and the CC-Gateway. It is safe for
// concurrent use.
type Client struct {
	cfg      Config
	hc       *http.Client
	log      *slog.Logger
	tokens   *tokenSource
	noCall   map[string]bool
	secrets  *secretSet
	fabric   string
	tokenURL string
	gateway  string
}

const (
	defaultTokenLifetime = 10 * time.Minute
	maxTokenLifetime     = time.Hour
	defaultRequestTO     = 10 * time.Second
	defaultLongPollTO    = 30 * time.Second
	defaultMaxBody       = 8 << 20
	excerptBytes         = 200
	contentTypeJSON      = "application/json; charset=UTF-8" // the vendor's spelling; CMS signatures may cover it
)

// New validates cfg and builds a Client. It does no I/O.
func New(cfg Config) (*Client, error) {
	if cfg.FabricURL == "" && cfg.GatewayURL == "" {
		return nil, errors.New("cec: config: FabricURL or GatewayURL is required")
	}
	for _, u := range []string{cfg.FabricURL, cfg.TokenURL, cfg.GatewayURL} {
		if u == "" {
			continue
		}
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return nil, fmt.Errorf("cec: config: invalid base URL %q", u)
		}
	}
	if cfg.FabricURL != "" && (cfg.AppKey == "" || cfg.AppSecret == "") {
		return nil, errors.New("cec: config: AppKey and AppSecret are required with FabricURL")
	}
	if cfg.TokenLifetime <= 0 {
		cfg.TokenLifetime = defaultTokenLifetime
	}
	if cfg.TokenLifetime > maxTokenLifetime {
		cfg.TokenLifetime = maxTokenLifetime
	}
	if cfg.TokenLifetime < time.Second {
		cfg.TokenLifetime = time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = defaultRequestTO
	}
	if cfg.LongPollTimeout <= 0 {
		cfg.LongPollTimeout = defaultLongPollTO
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = defaultMaxBody
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		cfg:      cfg,
		log:      cfg.Logger,
		noCall:   make(map[string]bool, len(cfg.NoCallCodes)),
		secrets:  newSecretSet(),
		fabric:   strings.TrimRight(cfg.FabricURL, "/"),
		tokenURL: strings.TrimRight(cfg.TokenURL, "/"),
		gateway:  strings.TrimRight(cfg.GatewayURL, "/"),
	}
	if c.tokenURL == "" {
		c.tokenURL = c.fabric
	}
	for _, code := range cfg.NoCallCodes {
		c.noCall[code] = true
	}
	c.secrets.add(cfg.AppSecret.Reveal())
	if cfg.HTTPClient != nil {
		c.hc = cfg.HTTPClient
	} else {
		hc, err := buildHTTPClient(cfg)
		if err != nil {
			return nil, err
		}
		c.hc = hc
	}
	c.tokens = newTokenSource(c)
	return c, nil
}

func buildHTTPClient(cfg Config) (*http.Client, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cec: config: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("cec: config: CA file holds no PEM certificate")
		}
		tlsCfg.RootCAs = pool
	}
	// Gateways on private addresses often carry self-signed certificates;
	// turning verification off is an explicit operator choice.
	tlsCfg.InsecureSkipVerify = cfg.InsecureSkipVerify //nolint:gosec
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       tlsCfg,
	}
	if cfg.WrapTransport != nil {
		return &http.Client{Transport: cfg.WrapTransport(tr)}, nil
	}
	return &http.Client{Transport: tr}, nil
}

// TokenExpiry is when the current API Fabric token expires (zero if none).
func (c *Client) TokenExpiry() time.Time { return c.tokens.expiry() }

// response is one HTTP exchange that produced a full body.
type response struct {
	status  int
	header  http.Header
	body    []byte
	elapsed time.Duration
}

type request struct {
	endpoint string
	method   string
	url      string
	header   map[string]string
	body     []byte
	timeout  time.Duration
}

// do performs one HTTP request and reads the whole (bounded) body. Errors are
// already classified: context errors from the caller are returned wrapped
// as-is, everything else is an *Error.
func (c *Client) do(ctx context.Context, r request) (*response, error) {
	if r.timeout <= 0 {
		r.timeout = c.cfg.RequestTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(rctx, r.method, r.url, body)
	if err != nil {
		return nil, &Error{Endpoint: r.endpoint, Message: "cannot build request", Err: ErrBadResponse}
	}
	req.Header.Set("Content-Type", contentTypeJSON)
	req.Header.Set("Accept", "application/json")
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, r.endpoint, err, time.Since(start))
	}
	defer resp.Body.Close()
	buf, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxBodyBytes+1))
	elapsed := time.Since(start)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, io.ErrUnexpectedEOF) {
			// The status line arrived but the body stopped short of its
			// Content-Length: what we hold is a truncated document.
			return nil, &Error{Endpoint: r.endpoint, HTTPStatus: resp.StatusCode, Message: "truncated body", Err: ErrBadResponse}
		}
		return nil, c.transportError(ctx, r.endpoint, err, elapsed)
	}
	if int64(len(buf)) > c.cfg.MaxBodyBytes {
		return nil, &Error{Endpoint: r.endpoint, HTTPStatus: resp.StatusCode,
			Message: "body exceeds " + strconv.FormatInt(c.cfg.MaxBodyBytes, 10) + " bytes", Err: ErrBadResponse}
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: buf, elapsed: elapsed}, nil
}

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
	if msg == "timeout" {
		msg = "timeout after " + d.Round(time.Millisecond).String()
	}
	return &Error{Endpoint: endpoint, Message: msg, Err: ErrUpstream}
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

// CloseIdleConnections closes the client's idle connections to the vendor,
// including any the transport dialed for a request that was cancelled or
// served by another connection meanwhile. Sessions call it when Run ends.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// waitBudget waits for the request budget (Limiter), if any. A refusal says
// it came from the budget and still matches the context error behind it:
// a limiter that refuses because the wait would outlast the deadline
// reports context.DeadlineExceeded even before the deadline passes.
func (c *Client) waitBudget(ctx context.Context, ep string) error {
	if c.cfg.Limiter == nil {
		return nil
	}
	err := c.cfg.Limiter.Wait(ctx)
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(err, cerr) {
			return fmt.Errorf("cec: %s: request budget: %w", ep, err)
		}
		return fmt.Errorf("cec: %s: request budget: %w (%w)", ep, cerr, err)
	}
	if _, ok := ctx.Deadline(); ok && !errors.Is(err, context.DeadlineExceeded) && strings.Contains(err.Error(), "deadline") {
		// golang.org/x/time/rate: "Wait(n=1) would exceed context deadline".
		return fmt.Errorf("cec: %s: request budget: no slot before the deadline: %w", ep, context.DeadlineExceeded)
	}
	return fmt.Errorf("cec: %s: request budget: %w", ep, err)
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

// account reports one finished request, answered (resp) or not, to the
// Observer and the debug log.
func (c *Client) account(ctx context.Context, endpoint string, resp *response, err error) {
	var d time.Duration
	status := 0
	if resp != nil {
		d, status = resp.elapsed, resp.status
	}
	c.observe(endpoint, err, d)
	c.logResult(ctx, endpoint, status, d, err)
}

func (c *Client) observe(endpoint string, err error, d time.Duration) {
	if c.cfg.Observer != nil {
		c.cfg.Observer.ObserveRequest(endpoint, outcome(err), d)
		c.observeCode(endpoint, err)
	}
}

func (c *Client) logResult(ctx context.Context, endpoint string, status int, d time.Duration, err error) {
	if err == nil {
		c.log.LogAttrs(ctx, slog.LevelDebug, "cec request", slog.String("endpoint", endpoint),
			slog.Int("status", status), slog.Duration("elapsed", d))
		return
	}
	// err.Error() is built from scrubbed parts only.
	c.log.LogAttrs(ctx, slog.LevelDebug, "cec request failed", slog.String("endpoint", endpoint),
		slog.Int("status", status), slog.Duration("elapsed", d), slog.String("error", err.Error()))
}
