package configs_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cecbridge/cecbridge/configs"
)

const minimal = `
tenants:
  - name: acme
    fabric_url: https://fabric.example
    gateway_url: https://gw.example:8043
    app_key: key
    app_secret: s3cret-app
    monitors:
      - agent_id: 1001
        password: s3cret-agent
`

func load(t *testing.T, yaml string, env map[string]string) (configs.Bridge, error) {
	t.Helper()
	return configs.Load(strings.NewReader(yaml), func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
}

func TestMinimalGetsDefaults(t *testing.T) {
	b, err := load(t, minimal, nil)
	if err != nil {
		t.Fatal(err)
	}
	tn := b.Tenants[0]
	if tn.Intervals.Calls != time.Second || tn.Intervals.Idle != 15*time.Second || tn.TokenLifetime != 10*time.Minute {
		t.Errorf("defaults not applied: %+v", tn.Intervals)
	}
	if b.Streams.Events != "CEC_EVENTS" || b.Streams.State != "CEC_STATE" || b.NATS.URLs[0] != "nats://127.0.0.1:4222" {
		t.Errorf("defaults not applied: %+v %+v", b.Streams, b.NATS.URLs)
	}
}

// The lease bucket is replicated like the streams unless told otherwise:
// leases must survive whatever the streams survive.
func TestLeaseReplicasFollowTheStreams(t *testing.T) {
	b, err := load(t, minimal+"streams:\n  replicas: 3\n  placement:\n    cluster: east\n    tags: [ssd]\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.Lease.Replicas != 3 || b.Streams.Placement.Cluster != "east" || !slices.Equal(b.Streams.Placement.Tags, []string{"ssd"}) {
		t.Errorf("lease.replicas %d, placement %+v; want 3 and east/[ssd]", b.Lease.Replicas, b.Streams.Placement)
	}
	b, err = load(t, minimal+"streams:\n  replicas: 3\nlease:\n  replicas: 1\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.Lease.Replicas != 1 {
		t.Errorf("lease.replicas %d, want the 1 given", b.Lease.Replicas)
	}
}

// Every class of configuration error is reported with the path of the key
// at fault, and all problems of a file come back together.
func TestErrorsNameTheirKey(t *testing.T) {
	cases := []struct {
		name, yaml, path string
	}{
		{"unknown top-level key", minimal + "bogus: 1\n", "bogus"},
		{"unknown nested key", minimal + "nats:\n  urlz: [x]\n", "nats.urlz"},
		{"wrong type", minimal + "publisher:\n  max_in_flight: lots\n", "publisher.max_in_flight"},
		{"bad duration", minimal + "streams:\n  max_age: forever\n", "streams.max_age"},
		{"negative interval", strings.Replace(minimal, "    monitors:", "    intervals:\n      calls: -1s\n    monitors:", 1), "tenants[0].intervals.calls"},
		{"bad url", strings.Replace(minimal, "https://fabric.example", "fabric.example", 1), "tenants[0].fabric_url"},
		{"bad nats url", minimal + "nats:\n  urls: [\"http://x\"]\n", "nats.urls[0]"},
		{"work number out of range", strings.Replace(minimal, "agent_id: 1001", "agent_id: 7", 1), "tenants[0].monitors[0].agent_id"},
		{"bad tenant name", strings.Replace(minimal, "name: acme", "name: ac.me", 1), "tenants[0].name"},
		{"missing secret", strings.Replace(minimal, "    app_secret: s3cret-app\n", "", 1), "tenants[0].app_secret"},
		{"bad ranges", strings.Replace(minimal, "password: s3cret-agent", "password: s3cret-agent\n        work_nos: 10-x", 1), "tenants[0].monitors[0].work_nos"},
		{"list where a map belongs", minimal + "http: [1]\n", "http"},
		{"replicas", minimal + "streams:\n  replicas: 9\n", "streams.replicas"},
		{"update_existing not a boolean", minimal + "streams:\n  update_existing: sometimes\n", "streams.update_existing"},
		{"lease replicas", minimal + "lease:\n  replicas: 6\n", "lease.replicas"},
		{"unknown placement key", minimal + "streams:\n  placement:\n    zone: a\n", "streams.placement.zone"},
		{"placement cluster", minimal + "streams:\n  placement:\n    cluster: \"east 1\"\n", "streams.placement.cluster"},
		{"placement tag", minimal + "streams:\n  placement:\n    tags: [ssd, \"\"]\n", "streams.placement.tags[1]"},
		{"placement tag twice", minimal + "streams:\n  placement:\n    tags: [ssd, SSD]\n", "streams.placement.tags[1]"},
		{"placement tags not a list", minimal + "streams:\n  placement:\n    tags: ssd\n", "streams.placement.tags"},
		{"token lifetime", strings.Replace(minimal, "app_key: key", "app_key: key\n    token_lifetime: 2h", 1), "tenants[0].token_lifetime"},
		{"log level", minimal + "log:\n  level: loud\n", "log.level"},
		{"no tenants", "nats:\n  name: x\n", "tenants"},
		{"duplicate tenant", minimal + strings.Replace(minimal, "tenants:\n", "", 1), "tenants[1].name"},
		{"unknown cms key", withCMS("    bogus: 1\n"), "tenants[0].cms.bogus"},
		{"cms url", strings.Replace(withCMS(""), "https://cms.example:28443", "cms.example", 1), "tenants[0].cms.url"},
		{"cms secret missing", strings.Replace(withCMS(""), "      sk: s3cret-sk\n", "", 1), "tenants[0].cms.sk"},
		{"cms secret twice", withCMS("    ak_file: /x\n"), "tenants[0].cms.ak"},
		{"cms cc id", strings.Replace(withCMS(""), "cc_id: 1", "cc_id: 70000", 1), "tenants[0].cms.cc_id"},
		{"cms no vdn", strings.Replace(withCMS(""), "      - vdn: 1\n", "", 1), "tenants[0].cms.vdns"},
		{"cms vdn range", strings.Replace(withCMS(""), "vdn: 1\n", "vdn: 6000\n", 1), "tenants[0].cms.vdns[0].vdn"},
		{"cms vdn twice", withCMS("") + "      - vdn: 1\n        work_nos: 1-2\n", "tenants[0].cms.vdns[1].vdn"},
		{"cms two catch-alls", withCMS("") + "      - vdn: 2\n", "tenants[0].cms.vdns[1].work_nos"},
		{"cms bad ranges", withCMS("") + "      - vdn: 2\n        work_nos: x-1\n", "tenants[0].cms.vdns[1].work_nos"},
		{"cms unknown header", withCMS("    signed_headers: [host, date]\n"), "tenants[0].cms.signed_headers[1]"},
		{"cms header without host", withCMS("    signed_headers: [content-type]\n"), "tenants[0].cms.signed_headers"},
		{"cms timestamp", withCMS("    timestamp: nanos\n"), "tenants[0].cms.timestamp"},
		{"cms as a list", minimal + "    cms: [1]\n", "tenants[0].cms"},
		{"sweep interval", strings.Replace(minimal, "    monitors:", "    intervals:\n      sweep: -1s\n    monitors:", 1), "tenants[0].intervals.sweep"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.yaml, nil)
			if !errors.Is(err, configs.ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			var ps configs.Problems
			if !errors.As(err, &ps) {
				t.Fatalf("err %T is not Problems", err)
			}
			for _, p := range ps {
				if p.Path == tc.path {
					return
				}
			}
			t.Errorf("no problem at %q in:\n%v", tc.path, err)
		})
	}
}

// withCMS is minimal with a valid cms block; extra is added to the block
// before its vdns list, which comes last so tests can append VDNs.
func withCMS(extra string) string {
	return minimal + "    cms:\n      url: https://cms.example:28443\n      ak: s3cret-ak\n      sk: s3cret-sk\n      cc_id: 1\n" +
		indent(extra) + "      vdns:\n      - vdn: 1\n"
}

// indent moves lines written at the tenant's key level into the cms block.
func indent(s string) string {
	if s == "" {
		return ""
	}
	return "  " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n  ") + "\n"
}

func TestCMSBlockIsOptionalAndGetsDefaults(t *testing.T) {
	b, err := load(t, minimal, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.Tenants[0].CMS != nil || b.Tenants[0].Intervals.Sweep != time.Second {
		t.Fatalf("without a cms block: %+v, sweep %s", b.Tenants[0].CMS, b.Tenants[0].Intervals.Sweep)
	}
	b, err = load(t, withCMS("")+"      - vdn: 2\n        work_nos: 2001-3000, 4000\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	c := b.Tenants[0].CMS
	if c == nil || len(c.SignedHeaders) != 1 || c.SignedHeaders[0] != "host" || c.Timestamp != configs.CMSTimestampSeconds ||
		c.Concurrency != 8 || c.Confirm || len(c.VDNs) != 2 {
		t.Fatalf("cms defaults: %+v", c)
	}
	covers, err := c.VDNs[1].Covers()
	if err != nil || !covers(2500) || !covers(4000) || covers(3001) {
		t.Errorf("VDN 2 covers: %v", err)
	}
	if covers, _ := c.VDNs[0].Covers(); covers != nil {
		t.Error("a VDN without work_nos takes every other agent")
	}
}

func TestCMSSecretsComeFromFilesOrTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	skFile := filepath.Join(dir, "sk")
	if err := os.WriteFile(skFile, []byte("sk-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(withCMS(""), "      ak: s3cret-ak\n      sk: s3cret-sk\n", "      sk_file: "+skFile+"\n", 1)
	b, err := load(t, y, map[string]string{"CECBRIDGE_ACME_CMS_AK": "ak-from-env", "CECBRIDGE_ACME_CMS_URL": "https://other.example:28443"})
	if err != nil {
		t.Fatal(err)
	}
	c := b.Tenants[0].CMS
	if c.AK.Reveal() != "ak-from-env" || c.SK.Reveal() != "sk-from-file" || c.URL != "https://other.example:28443" {
		t.Errorf("ak %q sk %q url %q", c.AK.Reveal(), c.SK.Reveal(), c.URL)
	}
	// The environment does not invent a block the file does not have.
	b, err = load(t, minimal, map[string]string{"CECBRIDGE_ACME_CMS_AK": "ak-from-env"})
	if err != nil || b.Tenants[0].CMS != nil {
		t.Errorf("environment alone made a cms block: %v", err)
	}
}

func TestSeveralProblemsReportedTogether(t *testing.T) {
	y := strings.Replace(minimal, "agent_id: 1001", "agent_id: 7", 1) + "log:\n  level: loud\n"
	_, err := load(t, y, nil)
	var ps configs.Problems
	if !errors.As(err, &ps) || len(ps) < 2 {
		t.Fatalf("want at least two problems, got %v", err)
	}
}

func TestEnvironmentAndFilesSupplySecrets(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(minimal, "    app_secret: s3cret-app\n", "", 1)
	y = strings.Replace(y, "password: s3cret-agent", "password_file: "+pwFile, 1)
	b, err := load(t, y, map[string]string{
		"CECBRIDGE_ACME_APP_SECRET":  "from-env",
		"CECBRIDGE_ACME_GATEWAY_URL": "https://other.example:8043",
		"CECBRIDGE_NATS_URLS":        "nats://a:4222,nats://b:4222",
	})
	if err != nil {
		t.Fatal(err)
	}
	tn := b.Tenants[0]
	if tn.AppSecret.Reveal() != "from-env" || tn.Monitors[0].Password.Reveal() != "from-file" {
		t.Errorf("secrets not supplied: env=%q file=%q", tn.AppSecret.Reveal(), tn.Monitors[0].Password.Reveal())
	}
	if tn.GatewayURL != "https://other.example:8043" || len(b.NATS.URLs) != 2 {
		t.Errorf("endpoint overrides not applied: %q %v", tn.GatewayURL, b.NATS.URLs)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	b, err := load(t, withCMS("")+"nats:\n  user: u\n  password: s3cret-nats\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := b.Print(&out); err != nil {
		t.Fatal(err)
	}
	text := out.String() + fmt.Sprintf("%v %+v %#v %s", b, b, b, b.Tenants[0].AppSecret)
	text += fmt.Sprintf("%v %+v %#v", *b.Tenants[0].CMS, *b.Tenants[0].CMS, *b.Tenants[0].CMS)
	for _, s := range []string{"s3cret-app", "s3cret-agent", "s3cret-nats", "s3cret-ak", "s3cret-sk"} {
		if strings.Contains(text, s) {
			t.Errorf("secret %q printed:\n%s", s, text)
		}
	}
	if !strings.Contains(out.String(), configs.Redacted) || !strings.Contains(out.String(), "calls: 1s") {
		t.Errorf("print lacks placeholder or readable durations:\n%s", out.String())
	}
}

// The example files shipped in configs/ must load as they are (secrets that
// come from files or the environment in deployment are given here).
func TestExampleFilesLoad(t *testing.T) {
	env := map[string]string{
		"CECBRIDGE_DEMO_APP_SECRET":            "x",
		"CECBRIDGE_DEMO_MONITOR_1001_PASSWORD": "x",
		"CECBRIDGE_ACME_APP_SECRET":            "x",
		"CECBRIDGE_ACME_MONITOR_1001_PASSWORD": "x",
		"CECBRIDGE_ACME_CMS_AK":                "x",
		"CECBRIDGE_ACME_CMS_SK":                "x",
		"CECBRIDGE_DEMO_MONITOR_1002_PASSWORD": "x",
	}
	for _, name := range []string{"dev.yaml", "production.yaml", "compose.yaml", "cluster.yaml"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := load(t, string(data), env); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		})
	}
}

func FuzzLoad(f *testing.F) {
	for _, name := range []string{"dev.yaml", "production.yaml", "compose.yaml", "cluster.yaml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Add(minimal)
	f.Fuzz(func(t *testing.T, y string) {
		b, err := configs.Load(strings.NewReader(y), nil)
		if err == nil && len(b.Tenants) == 0 {
			t.Fatal("a configuration without tenants was accepted")
		}
	})
}

// A password or token written into a NATS URL (in the file or in
// CECBRIDGE_NATS_URLS), or user info in a vendor URL, never shows in the
// printed configuration or in a validation error.
func TestURLUserInfoNeverPrinted(t *testing.T) {
	secrets := []string{"UrlPass-1x", "EnvToken-2y", "EnvPass-3z", "FabricPass-6u"}
	y := strings.Replace(minimal, "https://fabric.example", "https://ops:FabricPass-6u@fabric.example", 1) +
		"nats:\n  urls: [\"nats://bridge:UrlPass-1x@nats1:4222\"]\n"
	b, err := load(t, y, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := b.Print(&out); err != nil {
		t.Fatal(err)
	}
	printed := out.String()
	b, err = load(t, y, map[string]string{"CECBRIDGE_NATS_URLS": "nats://EnvToken-2y@nats2:4222,nats://u:EnvPass-3z@nats3:4222"})
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := b.Print(&out); err != nil {
		t.Fatal(err)
	}
	printed += out.String()
	for _, host := range []string{"@nats1:4222", "@nats2:4222", "@nats3:4222", "@fabric.example"} {
		if !strings.Contains(printed, host) {
			t.Errorf("print lost the host %q:\n%s", host, printed)
		}
	}

	// Invalid URLs are reported with their key path, without the secret:
	// a wrong scheme, a port that does not parse, a vendor URL without
	// http(s).
	bad := strings.Replace(minimal, "https://fabric.example", "ftp://ops:FabricPass-6u@fabric.example", 1) +
		"nats:\n  urls: [\"http://bridge:UrlPass-1x@nats1:4222\", \"nats://bridge:UrlPass-1x@nats1:port\"]\n"
	_, err = load(t, bad, map[string]string{})
	var ps configs.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("bad URLs accepted: %v", err)
	}
	paths := map[string]bool{}
	for _, p := range ps {
		paths[p.Path] = true
	}
	for _, want := range []string{"nats.urls[0]", "nats.urls[1]", "tenants[0].fabric_url"} {
		if !paths[want] {
			t.Errorf("no problem at %s in:\n%v", want, err)
		}
	}
	_, envErr := load(t, minimal, map[string]string{"CECBRIDGE_NATS_URLS": "http://EnvToken-2y@nats2:4222"})
	if envErr == nil {
		t.Fatal("an http NATS URL from the environment was accepted")
	}
	for _, s := range secrets {
		for what, text := range map[string]string{"print": printed, "error": err.Error(), "env error": envErr.Error()} {
			if strings.Contains(text, s) {
				t.Errorf("%s shows the secret %q:\n%s", what, s, text)
			}
		}
	}
}

// Credentials in a NATS URL and in nats.user or nats.token at once are
// ambiguous (the client would silently take the URL's): an error.
func TestURLCredentialsGivenTwiceIsAnError(t *testing.T) {
	for _, auth := range []string{"  user: u\n  password: p\n", "  token: t\n"} {
		_, err := load(t, minimal+"nats:\n  urls: [\"nats://bridge:pw@nats1:4222\"]\n"+auth, nil)
		var ps configs.Problems
		if !errors.As(err, &ps) || len(ps) != 1 || ps[0].Path != "nats.urls[0]" {
			t.Errorf("%q: %v, want one problem at nats.urls[0]", auth, err)
		}
	}
}
