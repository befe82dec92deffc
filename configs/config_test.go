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
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.yaml, nil)
			if !errors.Is(err, configs.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
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
	b, err := load(t, minimal+"nats:\n  user: u\n  password: s3cret-nats\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := b.Print(&out); err != nil {
		t.Fatal(err)
	}
	text := out.String() + fmt.Sprintf("%v %+v %#v %s", b, b, b, b.Tenants[0].AppSecret)
	for _, s := range []string{"s3cret-app", "s3cret-agent", "s3cret-nats"} {
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
