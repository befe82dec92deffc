package cecsim

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The simulator's verifier, written apart from the client's signer,
// accepts the reference's test vector and refuses anything changed.
func TestC2VerifierAcceptsTheReferenceVector(t *testing.T) {
	s, err := New(Config{Agents: 1, CMS: CMS{AK: "testAK", SK: "testSK", ClockSkew: 5 * time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	const (
		path = "/rest/cmsapp/v1/openapi/agentgroup/queryagentcalls"
		body = `{"ccId":1,"vdn":170,"agentIds":[1031,1099]}`
		auth = "auth-v2/testAK/2025-01-02T03:04:05Z/host/94925e8a5e0bb2d4e4ffdd9af565e2209656f77e691e4153de92f025d0d540d2"
	)
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	check := func(host, authz, b string, now time.Time) error {
		r := httptest.NewRequest("POST", "http://"+host+path, strings.NewReader(b))
		r.Header.Set("Authorization", authz)
		return s.verifyC2(r, []byte(b), now)
	}
	if err := check("cms.example.com:28443", auth, body, at.Add(time.Minute)); err != nil {
		t.Fatalf("vector refused: %v", err)
	}
	for name, tc := range map[string]struct {
		host, auth, body string
		now              time.Time
		want             error
	}{
		"body":      {"cms.example.com:28443", auth, strings.Replace(body, "1099", "1098", 1), at, errC2Signature},
		"host":      {"cms.example.com:28444", auth, body, at, errC2Signature},
		"signature": {"cms.example.com:28443", auth[:len(auth)-1] + "3", body, at, errC2Signature},
		"ak":        {"cms.example.com:28443", strings.Replace(auth, "testAK", "testAX", 1), body, at, errC2AK},
		"skew":      {"cms.example.com:28443", auth, body, at.Add(6 * time.Minute), errC2Skew},
		"skew back": {"cms.example.com:28443", auth, body, at.Add(-6 * time.Minute), errC2Skew},
		"scheme":    {"cms.example.com:28443", "Bearer x", body, at, errC2Malformed},
		"no host":   {"cms.example.com:28443", strings.Replace(auth, "/host/", "/content-type/", 1), body, at, errC2Malformed},
	} {
		if err := check(tc.host, tc.auth, tc.body, tc.now); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
}
