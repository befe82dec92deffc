package main

import (
	"flag"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// clientFlags are the connection flags of a client command (audit).
type clientFlags struct {
	server *string
	creds  *string
}

func addClientFlags(fs *flag.FlagSet) clientFlags {
	return clientFlags{
		server: fs.String("server", defaultServer, "NATS server URL (several separated by commas)"),
		creds:  fs.String("creds", "", "NATS credentials file"),
	}
}

// connect opens a connection for a short-lived command. Errors name the
// server with any password or token in its URL redacted.
func (c clientFlags) connect(name string) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name(name), nats.Timeout(5 * time.Second)}
	if *c.creds != "" {
		opts = append(opts, nats.UserCredentials(*c.creds))
	}
	nc, err := nats.Connect(*c.server, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", redactURLs(*c.server), err)
	}
	return nc, nil
}

// redactURLs hides the password, or a token given as the user, in each of
// a comma-separated list of server URLs.
func redactURLs(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "[unparsable URL]"
			continue
		}
		if u.User != nil {
			if _, hasPassword := u.User.Password(); hasPassword {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			} else {
				u.User = url.User("xxxxx")
			}
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
