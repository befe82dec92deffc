package cec

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
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
	if err := cfg.validate(); err != nil {
		return nil, err
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

// validate reports every problem of cfg at once, wrapping ErrConfig.
func (cfg *Config) validate() error {
	var errs []error
	if cfg.FabricURL == "" && cfg.GatewayURL == "" {
		errs = append(errs, errors.New("FabricURL or GatewayURL is required"))
	}
	for _, u := range []string{cfg.FabricURL, cfg.TokenURL, cfg.GatewayURL} {
		if u == "" {
			continue
		}
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			errs = append(errs, fmt.Errorf("invalid base URL %q", u))
		}
	}
	if cfg.FabricURL != "" && (cfg.AppKey == "" || cfg.AppSecret == "") {
		errs = append(errs, errors.New("AppKey and AppSecret are required with FabricURL"))
	}
	return configError(errs)
}

// configError joins configuration problems under ErrConfig; nil if none.
func configError(errs []error) error {
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

func buildHTTPClient(cfg Config) (*http.Client, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: read CA file: %w", ErrConfig, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: CA file holds no PEM certificate", ErrConfig)
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
		slog.Int("status", status), slog.Duration("elapsed", d), slog.String("err", err.Error()))
}
