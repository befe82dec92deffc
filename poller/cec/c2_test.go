package cec

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// The vector of reference/cec-cms.md, computed from the vendor demo's steps.
var (
	vectorTime = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	vectorHost = "cms.example.com:28443"
	vectorPath = "/rest/cmsapp/v1/openapi/agentgroup/queryagentcalls"
	vectorBody = []byte(`{"ccId":1,"vdn":170,"agentIds":[1031,1099]}`)
)

const (
	vectorSigningKey = "d0713f0ef988b76f0b0f898ee9976e16648d449811275c4cbf7c134da37ab748"
	vectorAuth       = "auth-v2/testAK/2025-01-02T03:04:05Z/host/94925e8a5e0bb2d4e4ffdd9af565e2209656f77e691e4153de92f025d0d540d2"
)

func TestC2SignatureMatchesTheReferenceVector(t *testing.T) {
	s, err := NewC2Signer("testAK", "testSK", nil, TimestampSeconds)
	if err != nil {
		t.Fatal(err)
	}
	prefix := s.prefix(s.Timestamp(vectorTime))
	if got := s.signingKey(prefix); got != vectorSigningKey {
		t.Errorf("signingKey = %s, want %s", got, vectorSigningKey)
	}
	got := s.Sign("POST", vectorPath, "", map[string]string{"host": vectorHost}, vectorBody, vectorTime)
	if got != vectorAuth {
		t.Errorf("Authorization =\n %s\nwant\n %s", got, vectorAuth)
	}
	// The demo's defaults are what an empty configuration gives.
	if s.signed != "host" || s.Timestamp(vectorTime.Add(678*time.Millisecond)) != "2025-01-02T03:04:05Z" {
		t.Errorf("defaults: signed %q, timestamp %q", s.signed, s.Timestamp(vectorTime))
	}
}

func TestC2SignatureSpellsOptionsInItsPrefix(t *testing.T) {
	s, err := NewC2Signer("testAK", "testSK", []string{"Host", "content-type", "CONTENT-LENGTH", "host"}, TimestampMillis)
	if err != nil {
		t.Fatal(err)
	}
	at := vectorTime.Add(678 * time.Millisecond)
	got := s.Sign("POST", vectorPath, "", map[string]string{"host": vectorHost}, vectorBody, at)
	want := "auth-v2/testAK/2025-01-02T03:04:05.678Z/content-length;content-type;host/"
	if !strings.HasPrefix(got, want) || len(got) != len(want)+64 {
		t.Errorf("Authorization %q, want prefix %q and a 64-digit signature", got, want)
	}
	for _, bad := range [][]string{{"host", "x-custom"}, {"authorization"}, {"content-type"}} {
		if _, err := NewC2Signer("ak", "sk", bad, TimestampSeconds); err == nil {
			t.Errorf("signing %v accepted", bad)
		}
	}
	if _, err := NewC2Signer("a/k", "sk", nil, TimestampSeconds); err == nil {
		t.Error("an AK with '/' accepted: it would split the Authorization value")
	}
	if _, err := NewC2Signer("ak", "", nil, TimestampSeconds); err == nil {
		t.Error("an empty SK accepted")
	}
}

type signInput struct {
	method, path, query string
	host, ctype, length string
	body                []byte
	at                  time.Time
}

func (in signInput) sign(s *C2Signer) string {
	return s.Sign(in.method, in.path, in.query, map[string]string{
		"host": in.host, "content-type": in.ctype, "content-length": in.length,
	}, in.body, in.at)
}

func randText(r *rand.Rand, n int) string {
	const alphabet = "abcXYZ019-._~ /%:;,{}\"é\n"
	var b strings.Builder
	for range n {
		b.WriteString(string([]rune(alphabet)[r.IntN(len([]rune(alphabet)))]))
	}
	return b.String()
}

// Any change to what is signed changes the signature; a header outside the
// signed set does not.
func TestC2SignatureChangesWithEverySignedInputAndNothingElse(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 7))
	hostOnly, _ := NewC2Signer("ak-1", "sk-1", nil, TimestampSeconds)
	all, _ := NewC2Signer("ak-1", "sk-1", []string{"host", "content-type", "content-length"}, TimestampSeconds)
	for i := range 300 {
		in := signInput{
			method: []string{"POST", "GET", "PUT"}[r.IntN(3)], path: "/rest/" + randText(r, 1+r.IntN(20)),
			host: randText(r, 1+r.IntN(12)), ctype: randText(r, r.IntN(8)), length: randText(r, r.IntN(4)),
			body: []byte(randText(r, r.IntN(3000))), at: vectorTime.Add(time.Duration(r.IntN(1e6)) * time.Second),
		}
		if r.IntN(3) == 0 {
			in.query = "a=" + randText(r, 3) + "&b=2"
		}
		for _, s := range []*C2Signer{hostOnly, all} {
			base := in.sign(s)
			if again := in.sign(s); again != base {
				t.Fatalf("case %d: signing is not deterministic", i)
			}
			mutations := map[string]func(signInput) signInput{
				"method": func(x signInput) signInput { x.method += "X"; return x },
				"path":   func(x signInput) signInput { x.path += "/x"; return x },
				"query":  func(x signInput) signInput { x.query += "&c=3"; return x },
				"host":   func(x signInput) signInput { x.host += "1"; return x },
				"time":   func(x signInput) signInput { x.at = x.at.Add(time.Second); return x },
				"body": func(x signInput) signInput {
					b := append([]byte(nil), x.body...)
					if len(b) == 0 {
						b = []byte{'x'}
					} else {
						b[r.IntN(len(b))] ^= 0x01
					}
					x.body = b
					return x
				},
			}
			for name, mut := range mutations {
				if in.sign(s) == mut(in).sign(s) {
					t.Fatalf("case %d (%s): changing the %s left the signature unchanged", i, s.signed, name)
				}
			}
			ctype := func(x signInput) signInput { x.ctype += "y"; return x }
			length := func(x signInput) signInput { x.length += "9"; return x }
			changed := in.sign(s) != ctype(in).sign(s) || in.sign(s) != length(in).sign(s)
			if changed != (s == all) {
				t.Fatalf("case %d (%s): content headers changed the signature: %v", i, s.signed, changed)
			}
		}
		other, _ := NewC2Signer("ak-1", "sk-2", nil, TimestampSeconds)
		if in.sign(hostOnly) == in.sign(other) {
			t.Fatalf("case %d: a different SK gave the same signature", i)
		}
	}
}

func TestC2EncodingKeepsOnlyUnreservedBytes(t *testing.T) {
	got := string(appendEnc(nil, "aZ09-._~ /:é%"))
	if want := "aZ09-._~%20%2F%3A%C3%A9%25"; got != want {
		t.Errorf("enc = %q, want %q", got, want)
	}
	if got := canonicalQuery("b=2&a=z&a=y&a-b=1"); got != "a=y&a=z&a-b=1&b=2" {
		t.Errorf("canonical query %q", got)
	}
}

func BenchmarkC2Sign3000Agents(b *testing.B) {
	s, _ := NewC2Signer("ak", "sk", nil, TimestampSeconds)
	body := []byte(`{"ccId":1,"vdn":1,"agentIds":[` + strings.Repeat("123456,", 2999) + `123456]}`)
	hdr := map[string]string{"host": vectorHost}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		s.Sign("POST", vectorPath, "", hdr, body, vectorTime)
	}
}
