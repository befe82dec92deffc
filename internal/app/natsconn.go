package app

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/cecbridge/cecbridge/configs"
)

// natsOptions turns the configuration into connection options: every
// authentication method NATS offers, TLS, and reconnecting forever so a
// NATS outage never ends the process.
//
// The client buffers nothing while disconnected: the publisher keeps its
// own outage buffer and sends only while its lease term is confirmed, and
// a lease renewal or campaign replayed from a client buffer after the
// outage would act on a stale view of who holds what.
func natsOptions(c configs.NATS, log *slog.Logger) ([]nats.Option, error) {
	failing := &lastErr{}
	opts := []nats.Option{
		nats.Name(c.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(c.ReconnectWait),
		nats.ReconnectBufSize(-1),
		nats.Timeout(c.ConnectTimeout),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", configs.RedactURLError(err, c.URLs...))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			failing.reset()
			log.Info("nats reconnected", "server", configs.RedactURL(nc.ConnectedUrl()))
		}),
		nats.ConnectHandler(func(nc *nats.Conn) {
			failing.reset()
			log.Info("nats connected", "server", configs.RedactURL(nc.ConnectedUrl()))
		}),
		// Failed (re)connect attempts, the first connect included: a wrong
		// password or an unverifiable certificate would otherwise retry
		// forever without a word. Logged when the reason changes.
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil && failing.changed(err.Error()) {
				log.Error("nats connect attempt failed; retrying", "err", configs.RedactURLError(err, c.URLs...))
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Warn("nats async error", "subject", subject, "err", configs.RedactURLError(err, c.URLs...))
		}),
	}
	switch {
	case c.CredsFile != "":
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	case c.NKeySeedFile != "":
		opt, err := nats.NkeyOptionFromSeed(c.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nats nkey seed: %w", err)
		}
		opts = append(opts, opt)
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token.Reveal()))
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password.Reveal()))
	}
	if t := c.TLS; t.CAFile != "" || t.CertFile != "" || t.InsecureSkipVerify {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // explicit opt-out, warned below
		if t.InsecureSkipVerify {
			log.Warn("NATS TLS certificate verification is OFF (nats.tls.insecure_skip_verify)")
		}
		if t.CAFile != "" {
			pem, err := os.ReadFile(t.CAFile)
			if err != nil {
				return nil, fmt.Errorf("nats tls ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("nats tls ca_file %s: no certificates found", t.CAFile)
			}
			tc.RootCAs = pool
		}
		if t.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("nats tls client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, nats.Secure(tc))
	}
	return opts, nil
}

// ConnectNATS connects (or starts reconnecting in the background, if no
// server answers yet) to the configured servers.
func ConnectNATS(c configs.NATS, log *slog.Logger) (*nats.Conn, error) {
	opts, err := natsOptions(c, log)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(strings.Join(c.URLs, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("nats connect: %w", configs.RedactURLError(err, c.URLs...))
	}
	return nc, nil
}

// lastErr remembers the last connect error logged, so a retry loop logs
// each distinct reason once instead of every attempt.
type lastErr struct {
	mu  sync.Mutex
	msg string
}

func (l *lastErr) changed(msg string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if msg == l.msg {
		return false
	}
	l.msg = msg
	return true
}

func (l *lastErr) reset() {
	l.mu.Lock()
	l.msg = ""
	l.mu.Unlock()
}
