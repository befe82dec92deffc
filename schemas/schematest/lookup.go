package schematest

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/cecbridge/cecbridge/schemas"
)

// Lookup sends one lookup request to a tenant's endpoint and waits up to
// within for the answer. req is marshalled to JSON, unless it is already a
// []byte or a string. It returns the answer's body, validated against the
// endpoint's response schema, or the error code the service answered with
// ("" if none); an error reply must have an empty body.
func Lookup(tb testing.TB, nc *nats.Conn, tenant, endpoint string, req any, within time.Duration) (body []byte, code string) {
	tb.Helper()
	var data []byte
	switch r := req.(type) {
	case []byte:
		data = r
	case string:
		data = []byte(r)
	default:
		var err error
		if data, err = json.Marshal(req); err != nil {
			tb.Fatal(err)
		}
	}
	msg, err := nc.Request(schemas.LookupSubject(tenant, endpoint), data, within)
	if err != nil {
		tb.Fatalf("lookup %s %s: %v", endpoint, data, err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		if len(msg.Data) != 0 {
			tb.Errorf("lookup %s: error reply %s with a body", endpoint, code)
		}
		return nil, code
	}
	ValidateJSON(tb, schemas.LookupSchemaFile(endpoint, "response"), msg.Data)
	return msg.Data, ""
}

// LookupOK is Lookup for a request that must succeed: it decodes the answer
// into resp (a pointer, zeroed first so that omitted fields keep no old
// value).
func LookupOK(tb testing.TB, nc *nats.Conn, tenant, endpoint string, req, resp any, within time.Duration) {
	tb.Helper()
	body, code := Lookup(tb, nc, tenant, endpoint, req, within)
	if code != "" {
		tb.Fatalf("lookup %s %v: error code %s", endpoint, req, code)
	}
	reflect.ValueOf(resp).Elem().SetZero()
	if err := json.Unmarshal(body, resp); err != nil {
		tb.Fatal(err)
	}
}
