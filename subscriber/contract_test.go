package subscriber

import (
	"slices"
	"testing"

	"github.com/cecbridge/cecbridge/schemas"
)

// The service registers exactly the endpoints the contract lists
// (schemas.LookupEndpoints, which asyncapi.yaml is checked against), each
// naming its schema files.
func TestServiceRegistersTheContractsEndpoints(t *testing.T) {
	e := newEnv(t, nil, Config{})
	var got, want []string
	for _, ep := range e.svc.Micro().Info().Endpoints {
		got = append(got, ep.Subject)
		if ep.Metadata["request_schema"] == "" || ep.Metadata["response_schema"] == "" {
			t.Errorf("%s: no schema files in its metadata", ep.Subject)
		}
	}
	for _, ep := range schemas.LookupEndpoints {
		want = append(want, schemas.LookupSubject("dev", ep))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("endpoints %v, contract %v", got, want)
	}
}
