package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/cecbridge/cecbridge/configs"
)

const repoRoot = "../.."

func runCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(t.Context(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A bad file fails check-config with every problem named by its key path.
func TestCheckConfigRejectsBadFile(t *testing.T) {
	bad := writeFile(t, "bad.yaml", `
nats:
  ulrs: [nats://127.0.0.1:4222]
streams:
  max_age: forever
tenants:
  - name: "has space"
    fabric_url: ftp://x
    gateway_url: http://127.0.0.1:8090
    app_key: k
    app_secret: s
    monitors:
      - agent_id: 5
        password: p
`)
	out, _, err := runCmd(t, "check-config", bad)
	if err == nil {
		t.Fatalf("check-config accepted a bad file: %s", out)
	}
	if !errors.Is(err, configs.ErrConfig) {
		t.Fatalf("error %v is not configs.ErrConfig", err)
	}
	// Decoding problems are reported first, all of them.
	for _, key := range []string{"nats.ulrs", "streams.max_age"} {
		if !strings.Contains(err.Error(), key+":") {
			t.Errorf("error does not name %s:\n%v", key, err)
		}
	}

	semantic := writeFile(t, "semantic.yaml", `
tenants:
  - name: "has space"
    fabric_url: ftp://x
    gateway_url: http://127.0.0.1:8090
    app_key: k
    app_secret: s
    budget: 10
    burst: -1
    monitors:
      - agent_id: 5
        password: p
`)
	_, _, err = runCmd(t, "check-config", semantic, "--print")
	if err == nil {
		t.Fatal("check-config --print accepted a bad file")
	}
	for _, key := range []string{"tenants[0].name", "tenants[0].fabric_url", "tenants[0].burst", "tenants[0].monitors[0].agent_id"} {
		if !strings.Contains(err.Error(), key+":") {
			t.Errorf("error does not name %s:\n%v", key, err)
		}
	}

	if _, _, err := runCmd(t, "check-config", filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file: %v", err)
	}
	if _, stderr, err := runCmd(t, "check-config"); !errors.Is(err, errUsage) || !strings.Contains(stderr, "usage") {
		t.Fatalf("no file: %v %q", err, stderr)
	}
}

// --print shows the effective configuration (defaults, environment
// overrides, secrets from files) with every secret redacted.
func TestCheckConfigPrintRedacts(t *testing.T) {
	secretFile := writeFile(t, "app_secret", "FileAppSecret-91xq\n")
	file := writeFile(t, "c.yaml", fmt.Sprintf(`
nats:
  urls: [nats://127.0.0.1:4222]
  user: bridge
  password: InlineNatsPass-55kz
tenants:
  - name: acme-eu
    fabric_url: http://127.0.0.1:8090
    gateway_url: http://127.0.0.1:8090
    app_key: app-key
    app_secret_file: %s
    monitors:
      - agent_id: 1001
        password: InlineAgentPass-33jw
      - agent_id: 1002
        password: overridden
`, secretFile))
	t.Setenv("CECBRIDGE_ACME_EU_MONITOR_1002_PASSWORD", "EnvAgentPass-77hp")
	t.Setenv("CECBRIDGE_ACME_EU_GATEWAY_URL", "https://gw.example:8043")
	out, _, err := runCmd(t, "check-config", file, "--print")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"FileAppSecret-91xq", "InlineNatsPass-55kz", "InlineAgentPass-33jw", "EnvAgentPass-77hp", "overridden"} {
		if strings.Contains(out, s) {
			t.Errorf("--print shows the secret %q:\n%s", s, out)
		}
	}
	var printed struct {
		NATS struct {
			Password string `yaml:"password"`
		} `yaml:"nats"`
		Publisher struct {
			MaxInFlight int `yaml:"max_in_flight"`
		} `yaml:"publisher"`
		Streams struct {
			Events string `yaml:"events"`
			MaxAge string `yaml:"max_age"`
		} `yaml:"streams"`
		Tenants []struct {
			GatewayURL string `yaml:"gateway_url"`
			AppSecret  string `yaml:"app_secret"`
			Monitors   []struct {
				Password string `yaml:"password"`
			} `yaml:"monitors"`
			Intervals struct {
				Calls string `yaml:"calls"`
			} `yaml:"intervals"`
		} `yaml:"tenants"`
	}
	if err := yaml.Unmarshal([]byte(out), &printed); err != nil {
		t.Fatalf("--print is not YAML: %v\n%s", err, out)
	}
	tn := printed.Tenants
	if printed.NATS.Password != configs.Redacted || len(tn) != 1 || tn[0].AppSecret != configs.Redacted ||
		len(tn[0].Monitors) != 2 || tn[0].Monitors[0].Password != configs.Redacted || tn[0].Monitors[1].Password != configs.Redacted {
		t.Errorf("secrets not shown as %s:\n%s", configs.Redacted, out)
	}
	// Effective values: defaults and the environment override.
	if printed.Publisher.MaxInFlight != 1024 || printed.Streams.Events != "CEC_EVENTS" || printed.Streams.MaxAge != "168h0m0s" ||
		tn[0].Intervals.Calls != "1s" || tn[0].GatewayURL != "https://gw.example:8043" {
		t.Errorf("--print does not show the effective configuration:\n%s", out)
	}
}

// The example files pass check-config, given the environment that
// supplies their secrets.
func TestCheckConfigExampleFiles(t *testing.T) {
	cases := []struct {
		file    string
		env     map[string]string
		tenants int
	}{
		{"dev.yaml", nil, 1},
		{"production.yaml", map[string]string{
			"CECBRIDGE_ACME_APP_SECRET":            "ProdAppSecret-x1",
			"CECBRIDGE_ACME_MONITOR_1001_PASSWORD": "ProdMonitorPass-x2",
			"CECBRIDGE_ACME_CMS_AK":                "ProdCMSAccessKey-x5",
			"CECBRIDGE_ACME_CMS_SK":                "ProdCMSSecretKey-x6",
		}, 1},
		{"compose.yaml", map[string]string{
			"CECBRIDGE_DEMO_APP_SECRET":            "ComposeAppSecret-x3",
			"CECBRIDGE_DEMO_MONITOR_1001_PASSWORD": "ComposeMonitorPass-x4",
		}, 1},
		{"cluster.yaml", map[string]string{
			"CECBRIDGE_DEMO_APP_SECRET":            "ClusterAppSecret-x5",
			"CECBRIDGE_DEMO_MONITOR_1002_PASSWORD": "ClusterMonitorPass-x6",
		}, 1},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join(repoRoot, "configs", c.file)
			if len(c.env) > 0 {
				// Without its environment the file names what is missing.
				_, _, err := runCmd(t, "check-config", path)
				if err == nil || !strings.Contains(err.Error(), "tenants[0].") {
					t.Fatalf("%s without its environment: %v", c.file, err)
				}
			}
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			out, _, err := runCmd(t, "check-config", path)
			if err != nil {
				t.Fatalf("%s: %v", c.file, err)
			}
			if want := fmt.Sprintf("ok (%d tenant(s))", c.tenants); !strings.Contains(out, want) {
				t.Fatalf("%s: %q, want %q", c.file, out, want)
			}
			printed, _, err := runCmd(t, "check-config", path, "--print")
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range c.env {
				if strings.Contains(printed, v) {
					t.Errorf("%s --print shows %q", c.file, v)
				}
			}
		})
	}
}

// ---------------------------------------------------------------------------
// docker-compose.yml, Dockerfile and configs/compose.yaml agree

type composeFile struct {
	Services map[string]struct {
		Profiles    []string          `yaml:"profiles"`
		Image       string            `yaml:"image"`
		Build       string            `yaml:"build"`
		Hostname    string            `yaml:"hostname"`
		Entrypoint  []string          `yaml:"entrypoint"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Ports       []string          `yaml:"ports"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		DependsOn map[string]any `yaml:"depends_on"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

// containerPorts returns the container side of "host:container" mappings.
func containerPorts(ports []string) []string {
	var out []string
	for _, p := range ports {
		out = append(out, p[strings.LastIndex(p, ":")+1:])
	}
	return out
}

func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var dc composeFile
	if err := yaml.Unmarshal(raw, &dc); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return dc
}

func TestComposeDockerfileAndConfigAgree(t *testing.T) {
	dc := readCompose(t)
	nats, sim, bridge := dc.Services["nats"], dc.Services["cecsim"], dc.Services["cecbridge"]
	for _, name := range []string{"nats", "cecsim", "cecbridge"} {
		if _, ok := dc.Services[name]; !ok {
			t.Fatalf("docker-compose.yml has no service %q", name)
		}
	}

	// The config path in the command is the one mounted, from configs/.
	cfgPath := flagValue(bridge.Command, "--config")
	if bridge.Command[0] != "run" || cfgPath == "" {
		t.Fatalf("cecbridge command %v", bridge.Command)
	}
	var mountedFrom string
	for _, v := range bridge.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == cfgPath {
			mountedFrom = parts[0]
		}
	}
	if mountedFrom == "" {
		t.Fatalf("%s (the --config path) is not mounted: %v", cfgPath, bridge.Volumes)
	}
	if _, err := os.Stat(filepath.Join(repoRoot, mountedFrom)); err != nil {
		t.Fatalf("mounted config %s: %v", mountedFrom, err)
	}

	// The config loads with exactly the environment compose sets, and reads
	// every CECBRIDGE_ variable of it.
	cfgRaw, err := os.ReadFile(filepath.Join(repoRoot, mountedFrom))
	if err != nil {
		t.Fatal(err)
	}
	read := map[string]bool{}
	env := func(k string) (string, bool) {
		read[k] = true
		v, ok := bridge.Environment[k]
		return v, ok
	}
	cfg, err := configs.Load(bytes.NewReader(cfgRaw), env)
	if err != nil {
		t.Fatalf("%s with the compose environment: %v", mountedFrom, err)
	}
	if len(bridge.Environment) == 0 {
		t.Fatal("compose sets no environment for cecbridge")
	}
	for k := range bridge.Environment {
		if !strings.HasPrefix(k, "CECBRIDGE_") {
			continue
		}
		if !read[k] {
			t.Errorf("compose sets %s, which configs.Load never reads", k)
		}
	}
	if _, err := configs.Load(bytes.NewReader(cfgRaw), func(string) (string, bool) { return "", false }); err == nil {
		t.Error("compose.yaml loads without the environment: the variables compose sets are not needed")
	}

	// Hosts and ports in the config are services and ports of the compose file.
	hostPort := func(raw string) (string, string) {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("url %q: %v", raw, err)
		}
		return u.Hostname(), u.Port()
	}
	for _, u := range cfg.NATS.URLs {
		h, p := hostPort(u)
		if h != "nats" || p != "4222" || !slices.Contains(containerPorts(nats.Ports), "4222") {
			t.Errorf("nats url %s: want service nats on 4222 (compose ports %v)", u, nats.Ports)
		}
	}
	simAddr := flagValue(sim.Command, "-addr")
	_, simPort, err := net.SplitHostPort(simAddr)
	if err != nil || simPort != "8090" || !slices.Contains(containerPorts(sim.Ports), "8090") {
		t.Errorf("cecsim -addr %q / ports %v: want 8090", simAddr, sim.Ports)
	}
	for _, tn := range cfg.Tenants {
		for _, u := range []string{tn.FabricURL, tn.GatewayURL} {
			h, p := hostPort(u)
			if _, ok := dc.Services[h]; !ok || h != "cecsim" || p != simPort {
				t.Errorf("tenant %s url %s: want the cecsim service on %s", tn.Name, u, simPort)
			}
		}
	}
	_, listenPort, err := net.SplitHostPort(cfg.HTTP.Listen)
	if err != nil || listenPort != "9090" || !slices.Contains(containerPorts(bridge.Ports), "9090") {
		t.Errorf("http.listen %q / cecbridge ports %v: want 9090", cfg.HTTP.Listen, bridge.Ports)
	}
	// The spool directory is a volume.
	spoolMounted := false
	for _, v := range bridge.Volumes {
		if parts := strings.Split(v, ":"); len(parts) >= 2 && parts[1] == cfg.Publisher.SpoolDir {
			spoolMounted = true
			if _, ok := dc.Volumes[parts[0]]; !ok && !strings.HasPrefix(parts[0], ".") {
				t.Errorf("volume %s is not declared", parts[0])
			}
		}
	}
	if cfg.Publisher.SpoolDir != "" && !spoolMounted {
		t.Errorf("publisher.spool_dir %s is not a volume: %v", cfg.Publisher.SpoolDir, bridge.Volumes)
	}
	for dep := range bridge.DependsOn {
		if _, ok := dc.Services[dep]; !ok {
			t.Errorf("depends_on names unknown service %s", dep)
		}
	}

	// The Dockerfile builds both commands, ships configs/ where the CMD
	// looks, and exposes the metrics port.
	df, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := string(df)
	binDir := ""
	for _, cmd := range []string{"cecbridge", "cecsim"} {
		re := regexp.MustCompile(`go build [^\n]*-o (\S+)/` + cmd + ` \./cmd/` + cmd + `\b`)
		if !re.MatchString(dockerfile) {
			t.Errorf("the Dockerfile does not build ./cmd/%s", cmd)
		}
	}
	if m := regexp.MustCompile(`(?m)^COPY --from=build [^\n]* (\S+)/\s*$`).FindStringSubmatch(dockerfile); m != nil {
		binDir = m[1]
	} else {
		t.Error("the Dockerfile does not copy the binaries")
	}
	for _, name := range []string{"cecbridge", "cecsim"} {
		if !regexp.MustCompile(`(?m)^COPY --from=build [^\n]*/out/` + name + `\b`).MatchString(dockerfile) {
			t.Errorf("the Dockerfile does not copy %s into the image", name)
		}
	}
	// The spool directory exists in the image, owned by the nonroot user
	// the image runs as: made in the build stage, copied with --chown.
	if cfg.Publisher.SpoolDir != "" {
		made := regexp.MustCompile(`(?m)^RUN [^\n]*mkdir -p (\S+)`).FindStringSubmatch(dockerfile)
		copied := regexp.MustCompile(`(?m)^COPY --from=build --chown=nonroot:nonroot (\S+) (\S+)\s*$`).FindStringSubmatch(dockerfile)
		switch {
		case made == nil:
			t.Errorf("the Dockerfile does not create the spool directory %s", cfg.Publisher.SpoolDir)
		case copied == nil:
			t.Errorf("the Dockerfile does not copy the spool directory with --chown=nonroot:nonroot")
		default:
			src, dst := path.Clean(copied[1]), path.Clean(copied[2])
			rest, ok := strings.CutPrefix(path.Clean(made[1]), src)
			if !ok || path.Join(dst, rest) != path.Clean(cfg.Publisher.SpoolDir) {
				t.Errorf("the Dockerfile makes %s and copies %s to %s: the image has no nonroot-owned %s",
					made[1], copied[1], copied[2], cfg.Publisher.SpoolDir)
			}
		}
		if !regexp.MustCompile(`(?m)^USER nonroot(:nonroot)?\s*$`).MatchString(dockerfile) {
			t.Error("the image does not run as nonroot")
		}
	}
	m := regexp.MustCompile(`(?m)^COPY configs/ (\S+)/?\s*$`).FindStringSubmatch(dockerfile)
	if m == nil {
		t.Fatal("the Dockerfile does not copy configs/")
	}
	configsDir := strings.TrimSuffix(m[1], "/")
	cm := regexp.MustCompile(`(?m)^CMD \[(.*)\]\s*$`).FindStringSubmatch(dockerfile)
	if cm == nil {
		t.Fatal("no CMD in the Dockerfile")
	}
	var cmdArgs []string
	for _, a := range strings.Split(cm[1], ",") {
		s, err := strconv.Unquote(strings.TrimSpace(a))
		if err != nil {
			t.Fatalf("CMD %s: %v", cm[1], err)
		}
		cmdArgs = append(cmdArgs, s)
	}
	imageCfg := flagValue(cmdArgs, "--config")
	rel, ok := strings.CutPrefix(imageCfg, configsDir+"/")
	if !ok {
		t.Fatalf("CMD config %s is not under %s", imageCfg, configsDir)
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "configs", rel)); err != nil {
		t.Errorf("CMD config %s: configs/%s: %v", imageCfg, rel, err)
	}
	if imageCfg != cfgPath {
		t.Errorf("the image runs %s, compose runs %s", imageCfg, cfgPath)
	}
	if !regexp.MustCompile(`(?m)^ENTRYPOINT \["` + regexp.QuoteMeta(binDir) + `/cecbridge"\]`).MatchString(dockerfile) {
		t.Errorf("ENTRYPOINT is not %s/cecbridge", binDir)
	}
	if len(sim.Entrypoint) != 1 || sim.Entrypoint[0] != binDir+"/cecsim" {
		t.Errorf("cecsim entrypoint %v, want %s/cecsim", sim.Entrypoint, binDir)
	}
	if !regexp.MustCompile(`(?m)^EXPOSE 9090\b`).MatchString(dockerfile) {
		t.Error("the Dockerfile does not expose 9090")
	}

	// cmd/cecsim accepts the -addr flag compose passes.
	simMain, err := os.ReadFile(filepath.Join(repoRoot, "cmd", "cecsim", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range sim.Command {
		if name, ok := strings.CutPrefix(a, "-"); ok {
			if !strings.Contains(string(simMain), `fs.String("`+strings.TrimPrefix(name, "-")+`"`) {
				t.Errorf("cmd/cecsim has no flag %s", a)
			}
		}
	}

	// The health check runs this binary's health subcommand, whose flags it
	// accepts, against the bridge's readiness endpoint on the metrics port.
	hc := bridge.Healthcheck.Test
	if len(hc) < 3 || hc[0] != "CMD" || hc[1] != binDir+"/cecbridge" || hc[2] != "health" {
		t.Fatalf("cecbridge healthcheck %v", hc)
	}
	hcURL, err := url.Parse(flagValue(hc, "--url"))
	if err != nil || hcURL.Port() != listenPort || hcURL.Path != "/readyz" {
		t.Errorf("healthcheck url %v: want port %s and /readyz", hcURL, listenPort)
	}
	for _, status := range []int{http.StatusOK, http.StatusServiceUnavailable} {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != hcURL.Path {
				http.NotFound(w, r)
				return
			}
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"status":%q}`, http.StatusText(status))
		}))
		args := slices.Clone(hc[2:])
		for i := range args {
			if args[i] == hcURL.String() {
				args[i] = ts.URL + hcURL.Path
			}
		}
		out, _, err := runCmd(t, args...)
		ts.Close()
		if (status == http.StatusOK) != (err == nil) {
			t.Errorf("health against %d: err %v", status, err)
		}
		if !strings.Contains(out, http.StatusText(status)) {
			t.Errorf("health against %d printed %q", status, out)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := run(ctx, []string{"health", "--url", "http://127.0.0.1:1/readyz"}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Error("health succeeded against nothing")
	}
}
