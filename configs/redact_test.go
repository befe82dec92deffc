package configs_test

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/cecbridge/cecbridge/configs"
)

func TestRedactURL(t *testing.T) {
	cases := map[string]string{
		"nats://bridge:pw@nats1:4222":            "nats://[redacted]@nats1:4222",
		"nats://s3cret-token@nats1:4222":         "nats://[redacted]@nats1:4222",
		"tls://bridge:p@ss@nats1":                "tls://[redacted]@nats1",    // an unescaped '@' in the password
		"bridge:pw@127.0.0.1:4222":               "[redacted]@127.0.0.1:4222", // NATS accepts a URL without scheme
		"nats://a:pw1@h1:4222,nats://tok2@h2:42": "nats://[redacted]@h1:4222,nats://[redacted]@h2:42",
		"nats://bridge:pw@h:port":                "nats://[redacted]@h:port", // does not parse, still redacted
		"nats://nats1:4222":                      "nats://nats1:4222",
		"https://fabric.example/path":            "https://fabric.example/path",
		"":                                       "",
	}
	for in, want := range cases {
		if got := configs.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// A URL parse error quotes the URL; the redacted error hides its user
// info, escaped or decoded, and still unwraps to the original.
func TestRedactURLError(t *testing.T) {
	raw := "nats://bridge:p%40ss-77x@nats1:port"
	_, parseErr := url.Parse(raw) //nolint:staticcheck // SA1007: invalid on purpose, for the parse error
	err := fmt.Errorf("connect: %w", parseErr)
	decoded := fmt.Errorf("%w (password p@ss-77x)", err)
	for _, e := range []error{err, decoded} {
		red := configs.RedactURLError(e, "nats://other@h", raw)
		if strings.Contains(red.Error(), "ss-77x") || !strings.Contains(red.Error(), "[redacted]@nats1:port") {
			t.Errorf("not redacted: %v", red)
		}
		var ue *url.Error
		if !errors.Is(red, parseErr) || !errors.As(red, &ue) {
			t.Errorf("redaction lost the error chain: %v", red)
		}
	}
	plain := errors.New("no servers available")
	if configs.RedactURLError(plain, raw) != plain || configs.RedactURLError(nil, raw) != nil { //nolint:errorlint // the very same error value
		t.Error("an error without secrets must come back as it is")
	}
}
